// A git repository as the desired state (--source URL[#REF]): a clone cached under
// <root>/var/lib/srvctl/source, fetched and checked out (detached) at the pinned branch, tag or
// commit; the checkout is the datastore dir. A failed fetch falls back to the last good revision.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ScError, UserError } from '../errors.js';
import { withDatastoreLock } from './datastore-lock.js';
import { gitErrorText, gitIn } from './git-client.js';

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
}

export const sourceCacheDir = (root: string): string => join(root, 'var/lib/srvctl/source');

/** The source as the operator writes it, for messages and records. */
export const sourceLabel = (spec: GitSourceSpec): string => (spec.ref === undefined ? spec.url : `${spec.url}#${spec.ref}`);

/** `URL[#REF]` → spec. Neither part may look like an option, and REF must be a plain ref name or commit id. */
export function parseGitSource(text: string): GitSourceSpec {
  const hash = text.lastIndexOf('#');
  const rawUrl = hash >= 0 ? text.slice(0, hash) : text;
  const ref = hash >= 0 ? text.slice(hash + 1) : undefined;
  if (rawUrl === '' || rawUrl.startsWith('-')) throw new UserError(`--source ${JSON.stringify(text)}: expected a git URL or path, optionally followed by #REF`);
  if (ref !== undefined && (!/^[A-Za-z0-9._/-]+$/.test(ref) || ref.startsWith('-') || ref.includes('..') || ref.startsWith('/') || ref.endsWith('/'))) {
    throw new UserError(`--source ${JSON.stringify(text)}: REF ${JSON.stringify(ref)} is not a branch, tag or commit name`);
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
      await gitIn(dirname(dir)).raw(['clone', '--no-checkout', '--quiet', '--', spec.url, dir]);
    } catch (error) {
      throw new UserError(`cannot fetch the source ${sourceLabel(spec)} (${gitErrorText(error)}), and there is no cached copy in ${dir}; nothing applied`);
    }
  } else {
    fetchError = await fetchInto(dir, spec.url);
  }
  let revision: string;
  if (fetchError !== undefined && options.lastGoodRevision !== undefined && (await commitOf(dir, options.lastGoodRevision)) !== undefined) {
    revision = options.lastGoodRevision;
  } else {
    revision = await resolveRef(dir, spec);
  }
  if (options.verify) await verifyRevision(options.root, spec, revision);
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

/** `git verify-commit`: refuses a revision without a good signature. */
export async function verifyRevision(root: string, spec: GitSourceSpec, revision: string): Promise<void> {
  try {
    await gitIn(sourceCacheDir(root)).raw(['verify-commit', '--', revision]);
  } catch (error) {
    throw new UserError(`the source ${sourceLabel(spec)} at ${revision.slice(0, 12)} has no good signature (signature check asked for): ${gitErrorText(error)}; nothing applied`);
  }
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
      ? `the source ${spec.url} has no default branch; name one with ${spec.url}#BRANCH`
      : `the source ${spec.url} has no branch, tag or commit "${spec.ref}"`,
  );
}
