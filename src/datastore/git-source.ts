// A git repository as the desired state (--source URL[#REF]): a clone cached under
// <root>/var/lib/srvctl/source, fetched and checked out (detached) at the pinned branch, tag or
// commit; the checkout is the datastore dir. A failed fetch falls back to the last good revision.
import { existsSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ScError, UserError } from '../errors.js';
import { withDatastoreLock } from './datastore-lock.js';
import { gitErrorText, gitIn } from '../drivers/git.js';
import { LIMITS } from './limits.js';
import { requireAcceptedRevision } from './source-signers.js';
import { redactUrl } from '../drivers/url-credentials.js';

export { redactUrl } from '../drivers/url-credentials.js';

export interface GitSourceSpec {
  /** Anything git accepts: https://…, ssh://…, user@host:path, file://…, or a local path (made absolute). */
  readonly url: string;
  /** A branch, tag or commit; undefined = the remote's default branch. */
  readonly ref?: string;
}

export interface SourceCheckout {
  readonly spec: GitSourceSpec;
  /** The work tree of the cache, checked out at `revision`: use it as the datastore dir. */
  readonly dir: string;
  /** The full commit id checked out. */
  readonly revision: string;
  /** Why the fetch failed; the checkout is then the last good (or the cached) revision. */
  readonly fetchError?: string;
}

export interface SyncOptions {
  readonly root: string;
  /** The revision the last successful pass applied: used when the fetch fails. */
  readonly lastGoodRevision?: string;
  /** Require a good signature on the commit (`git verify-commit`). */
  readonly verify?: boolean;
  /**
   * Read only (`sc status`): leave the cache's checkout (HEAD, index, files) as it is and give a
   * private copy of the revision's tree instead (exportRevision), removed when sc exits.
   */
  readonly view?: boolean;
}

export const sourceCacheDir = (root: string): string => join(root, 'var/lib/srvctl/source');

/** The source as the operator writes it, for messages and records. */
export const sourceLabel = (spec: GitSourceSpec): string => (spec.ref === undefined ? redactUrl(spec.url) : `${redactUrl(spec.url)}#${spec.ref}`);

/** `URL[#REF]` → spec. Neither part may look like an option, and REF must be a plain ref name or commit id. */
export function parseGitSource(text: string): GitSourceSpec {
  const hash = text.lastIndexOf('#');
  const rawUrl = hash >= 0 ? text.slice(0, hash) : text;
  const ref = hash >= 0 ? text.slice(hash + 1) : undefined;
  const shown = JSON.stringify(redactUrl(text).slice(0, 300));
  if (rawUrl === '' || rawUrl.startsWith('-')) throw new UserError(`--source ${shown}: expected a git URL or path, optionally followed by #REF`);
  if (/[\0\n\r]/.test(text)) throw new UserError(`--source ${shown}: a git URL has no NUL or line break`);
  if (
    ref !== undefined &&
    (!/^[A-Za-z0-9._/-]+$/.test(ref) || ref.startsWith('-') || ref.includes('..') || ref.startsWith('/') || ref.endsWith('/'))
  ) {
    throw new UserError(`--source ${shown}: REF ${JSON.stringify(ref.slice(0, 100))} is not a branch, tag or commit name`);
  }
  // `host:path` (scp-like) and `scheme://` are URLs; anything else is a local path, made absolute
  // so the cached clone keeps working from any working directory.
  const isUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(rawUrl) || /^[^/]+:/.test(rawUrl);
  return { url: isUrl ? rawUrl : resolve(rawUrl), ref: ref === '' ? undefined : ref };
}

/**
 * Brings the cache up to date and checks out the wanted revision. Throws UserError when nothing
 * usable is there (no clone possible, unknown ref, bad signature).
 */
export async function syncGitSource(spec: GitSourceSpec, options: SyncOptions): Promise<SourceCheckout> {
  const dir = sourceCacheDir(options.root);
  let fetchError: string | undefined;
  if (!existsSync(join(dir, '.git'))) {
    await mkdir(dirname(dir), { recursive: true });
    try {
      // Symlinks in the repository are checked out as plain files holding the link text, never as links.
      await gitIn(dirname(dir)).raw(['clone', '--no-checkout', '--quiet', '--config', 'core.symlinks=false', '--', spec.url, dir]);
    } catch (error) {
      throw new UserError(
        `cannot fetch the source ${sourceLabel(spec)} (${gitErrorText(error)}), and there is no cached copy in ${dir}; nothing applied`,
      );
    }
  } else {
    await gitIn(dir).raw(['config', 'core.symlinks', 'false']);
    fetchError = await fetchInto(dir, spec.url);
  }
  // The cache's config holds the URL as given (with any credentials in it): root only.
  await chmod(dir, 0o700);
  await checkRepositorySize(dir, spec);
  let revision: string;
  if (fetchError !== undefined && options.lastGoodRevision !== undefined && (await commitOf(dir, options.lastGoodRevision)) !== undefined) {
    revision = options.lastGoodRevision;
  } else {
    revision = await resolveRef(dir, spec);
  }
  await checkRevisionTree(dir, spec, revision);
  if (options.verify) await verifyRevision(options.root, spec, revision);
  if (options.view) return { spec, dir: await exportRevision(options.root, revision), revision, ...(fetchError !== undefined ? { fetchError } : {}) };
  await checkoutRevision(options.root, revision);
  return { spec, dir, revision, ...(fetchError !== undefined ? { fetchError } : {}) };
}

/**
 * Serializes the users of the source cache (a reconcile loop and an `sc diff --source` started by
 * hand must not check out two revisions at once): the datastore lock on <root>/var/lib/srvctl.
 */
export async function withSourceLock<T>(root: string, command: string, fn: () => Promise<T>): Promise<T> {
  const dir = dirname(sourceCacheDir(root));
  await mkdir(dir, { recursive: true });
  return withDatastoreLock(dir, command, fn, { timeoutMs: 120_000 });
}

/**
 * Refuses a revision without a good signature: an operator's (`git verify-commit` with this host's
 * git trust), or a chain of hosts' own PKI commits on top of one (source-signers.ts).
 */
export async function verifyRevision(root: string, spec: GitSourceSpec, revision: string): Promise<void> {
  await requireAcceptedRevision(sourceCacheDir(root), revision, sourceLabel(spec));
}

const views: string[] = [];
let viewsSwept = false;

/**
 * A private copy of `revision`'s tree (a temp dir, removed when sc exits): written by git from the
 * cache's objects through a private index, so the cache's HEAD, index and work tree stay as they
 * are. Links come out as plain files (core.symlinks=false), and checkRevisionTree refused them first.
 */
export async function exportRevision(root: string, revision: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sc-source-view-'));
  views.push(dir);
  if (!viewsSwept) {
    viewsSwept = true;
    process.once('exit', () => {
      for (const view of views) rmSync(view, { recursive: true, force: true });
    });
  }
  try {
    await gitIn(sourceCacheDir(root), { GIT_INDEX_FILE: `${dir}/.sc-view-index` }).raw([
      '-c',
      'core.symlinks=false',
      '--work-tree',
      dir,
      'checkout',
      '--quiet',
      revision,
      '--',
      '.',
    ]);
    await rm(`${dir}/.sc-view-index`, { force: true });
  } catch (error) {
    throw new ScError(`cannot read revision ${revision} from ${sourceCacheDir(root)}: ${gitErrorText(error)}`);
  }
  return dir;
}

/** Checks the cache out at `revision` (detached), removing anything else in the work tree. */
export async function checkoutRevision(root: string, revision: string): Promise<void> {
  const git = gitIn(sourceCacheDir(root));
  try {
    await git.raw(['checkout', '--quiet', '--force', '--detach', revision, '--']);
    await git.raw(['clean', '-ffdxq']);
  } catch (error) {
    throw new ScError(`cannot check out ${revision} in ${sourceCacheDir(root)}: ${gitErrorText(error)}`);
  }
}

/**
 * The commit the remote's ref points at now, resolved like `syncGitSource` (branch, then tag);
 * cheap (`git ls-remote`, no objects transferred). Undefined when the remote cannot be reached or
 * the ref is a commit id (which never moves).
 */
export async function remoteRevision(spec: GitSourceSpec, workDir: string): Promise<string | undefined> {
  let listing: string;
  try {
    listing = await gitIn(workDir).raw(['ls-remote', '--', spec.url, spec.ref ?? 'HEAD']);
  } catch {
    return undefined;
  }
  const refs = new Map<string, string>();
  for (const line of listing.split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name) refs.set(name, sha);
  }
  const names = spec.ref === undefined ? ['HEAD'] : [`refs/heads/${spec.ref}`, `refs/tags/${spec.ref}^{}`, `refs/tags/${spec.ref}`];
  for (const name of names) {
    const sha = refs.get(name);
    if (sha !== undefined) return sha;
  }
  return undefined;
}

async function fetchInto(dir: string, url: string): Promise<string | undefined> {
  const git = gitIn(dir);
  try {
    const current = (await git.raw(['remote', 'get-url', 'origin'])).trim();
    if (current !== url) await git.raw(['remote', 'set-url', 'origin', url]);
    await git.raw(['fetch', '--quiet', '--prune', '--force', '--tags', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
    return undefined;
  } catch (error) {
    return gitErrorText(error);
  }
}

async function commitOf(dir: string, name: string): Promise<string | undefined> {
  try {
    const out = await gitIn(dir).raw(['rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`]);
    return out.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Branch (as fetched), then tag, then commit id; the default branch when no ref is given. */
async function resolveRef(dir: string, spec: GitSourceSpec): Promise<string> {
  const candidates = spec.ref === undefined ? ['refs/remotes/origin/HEAD'] : [`refs/remotes/origin/${spec.ref}`, `refs/tags/${spec.ref}`, spec.ref];
  for (const candidate of candidates) {
    const commit = await commitOf(dir, candidate);
    if (commit !== undefined) return commit;
  }
  throw new UserError(
    spec.ref === undefined
      ? `the source ${redactUrl(spec.url)} has no default branch; name one with ${redactUrl(spec.url)}#BRANCH`
      : `the source ${redactUrl(spec.url)} has no branch, tag or commit "${spec.ref}"`,
  );
}

/** The datastore files sc reads from a checkout: the four kinds in any format, and the PKI exchange. */
const READ_FILE = /^(clusters|users|containers|settings)\.(json|ya?ml)$/;
const isReadPath = (p: string): boolean => READ_FILE.test(p) || p === 'pki' || p.startsWith('pki/');

/**
 * Refuses a revision sc must not check out: a symlink (mode 120000) or submodule (160000) among
 * the files sc reads (or on their way: `pki` itself), more entries or bytes than the limits.
 * Read from the object store (`git ls-tree -r -t -l`), before anything is checked out.
 */
export async function checkRevisionTree(dir: string, spec: GitSourceSpec, revision: string): Promise<void> {
  let listing: string;
  try {
    listing = await gitIn(dir).raw(['ls-tree', '-r', '-t', '-l', '-z', '--full-tree', revision]);
  } catch (error) {
    throw new ScError(`cannot list the files of ${revision.slice(0, 12)} in ${dir}: ${gitErrorText(error)}`);
  }
  const at = `the source ${sourceLabel(spec)} at ${revision.slice(0, 12)}`;
  let entries = 0;
  let bytes = 0;
  for (const record of listing.split('\0')) {
    if (record === '') continue;
    entries += 1;
    const tab = record.indexOf('\t');
    const [mode, , , size] = record.slice(0, tab).split(/\s+/);
    const path = record.slice(tab + 1);
    if (size !== undefined && size !== '-') bytes += Number(size);
    if ((mode === '120000' || mode === '160000') && isReadPath(path)) {
      const what = mode === '120000' ? 'a symbolic link' : 'a submodule';
      throw new UserError(
        `${at} has ${what} at ${JSON.stringify(path.slice(0, 200))}, where sc reads plain files; sc never follows links in a source: make it a plain file (or directory) in a new commit; nothing applied`,
      );
    }
  }
  if (entries > LIMITS.sourceTreeEntries) {
    throw new UserError(`${at} has ${entries} files and directories, more than the limit of ${LIMITS.sourceTreeEntries}; nothing applied`);
  }
  if (bytes > LIMITS.sourceTreeBytes) {
    throw new UserError(`${at} holds ${bytes} bytes of files, more than the limit of ${LIMITS.sourceTreeBytes}; nothing applied`);
  }
}

/** Refuses to go on with a cache whose object store grew past the limit (a fetch that brought a huge repository). */
async function checkRepositorySize(dir: string, spec: GitSourceSpec): Promise<void> {
  let text: string;
  try {
    text = await gitIn(dir).raw(['count-objects', '-v']);
  } catch {
    return;
  }
  const kib = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const bytes = (kib('size') + kib('size-pack') + kib('size-garbage')) * 1024;
  if (bytes > LIMITS.sourceRepositoryBytes) {
    throw new UserError(
      `the source ${sourceLabel(spec)} takes ${bytes} bytes in ${dir}, more than the limit of ${LIMITS.sourceRepositoryBytes}; nothing applied ` +
        `(remove ${dir} once the repository is smaller)`,
    );
  }
}
