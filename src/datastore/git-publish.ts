// Publishing files into a git source (--source URL#BRANCH) from the source cache: a commit on top
// of the branch's newest fetched tip, built in a private index (the cache's detached checkout is not
// moved), pushed to the branch; a push that lost a race is fetched, rebuilt and pushed again. Used by
// the cluster PKI, whose public files (requests, certificates) must reach the other hosts.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeNoFollow } from '../drivers/no-follow-fs.js';
import { HOST_SIGNERS_FILE, HOST_SIGNING_KEY, hostSignersLine, listsHostKey } from './source-signers.js';
import { verifyRequiredInForce } from './source-verify.js';
import { gitErrorText, gitIdentity, gitIn, gitWithInput } from '../drivers/git.js';
import { sourceCacheDir, sourceLabel, withSourceLock, type GitSourceSpec } from './git-source.js';
import { ScError, UserError } from '../errors.js';
import { spawnCollect } from '../drivers/spawn-collect.js';

export interface SourcePublishRequest {
  readonly root: string;
  readonly spec: GitSourceSpec;
  /** Datastore-relative path → text. */
  readonly files: Readonly<Record<string, string>>;
  readonly message: string;
  /** Author and committer name, e.g. `sc on web2.example.net`. */
  readonly actor: string;
  /** The publishing host (FQDN): its commits are signed with its own SSH key (source-signers.ts). */
  readonly host: string;
}

export interface SourcePublishResult {
  /** The commit pushed; undefined when the branch already held these files as they are. */
  readonly revision?: string;
}

/**
 * Hosts of a farm publish at the same time (every host's first request, the CA's signatures): each
 * lost race is fetched, rebuilt and pushed again after a random pause, so racing hosts spread out
 * instead of colliding again; enough attempts that 15 hosts racing all get their commit in.
 */
const ATTEMPTS = 12;
const RETRY_PAUSE_MS = 150;

/**
 * Writes the files into the cache's work tree (so the rest of this pass sees them) and pushes a
 * commit with exactly these files changed to the source's branch. A source pinned to a tag or a
 * commit cannot take new commits: UserError.
 */
export async function publishToGitSource(request: SourcePublishRequest): Promise<SourcePublishResult> {
  const dir = sourceCacheDir(request.root);
  return withSourceLock(request.root, request.message, async () => {
    const branch = await sourceBranch(dir, request.spec);
    const signingKey = await ensureSigningKey(request.root, request.host);
    const verifying = await verifyRequiredInForce(request.root);
    // Relative to the opened checkout, no link followed (a commit making `pki` a link cannot
    // redirect the write out of the checkout).
    for (const [rel, text] of Object.entries(request.files)) await writeNoFollow(dir, rel, text);
    const { name, email } = gitIdentity(request.actor);
    const identity = { GIT_AUTHOR_NAME: name, GIT_AUTHOR_EMAIL: email, GIT_COMMITTER_NAME: name, GIT_COMMITTER_EMAIL: email };
    let lastError = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const git = gitIn(dir, identity);
      if (attempt > 1) {
        await sleep(Math.round(Math.random() * RETRY_PAUSE_MS * Math.min(attempt, 6)));
        try {
          await git.raw(['fetch', '--quiet', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
        } catch (error) {
          throw new ScError(
            `cannot publish ${list(request.files)} to ${sourceLabel(request.spec)}: fetching ${branch} failed: ${gitErrorText(error)}`,
          );
        }
      }
      const commit = await commitOnTip(dir, branch, request, identity, { key: signingKey, mustBeListed: verifying });
      if (commit === undefined) return {};
      try {
        await git.raw(['push', '--quiet', 'origin', `${commit}:refs/heads/${branch}`]);
        await git.raw(['update-ref', `refs/remotes/origin/${branch}`, commit]);
        return { revision: commit };
      } catch (error) {
        lastError = gitErrorText(error);
        // Someone pushed in between (another host publishing, an operator commit): rebuild on the new tip.
        if (!/\b(rejected|non-fast-forward|fetch first|stale info|cannot lock ref)\b/i.test(lastError)) break;
      }
    }
    throw new ScError(
      `cannot publish ${list(request.files)} to ${sourceLabel(request.spec)}: git push failed: ${lastError}. ` +
        'This host needs push access to the source branch for the cluster PKI (the files are public: requests and certificates); ' +
        'grant it, or commit the files by hand from ' +
        dir,
    );
  });
}

const list = (files: Readonly<Record<string, string>>): string => Object.keys(files).join(', ');

/**
 * A file as the source branch holds it now (fetched; the checkout is not moved): what another host
 * published after this pass fetched. Undefined when the branch has no such file, it is larger than
 * `maxBytes`, or the fetch fails (the next pass fetches anyway). The caller judges the text: it
 * comes from a revision no pass has validated (or verified) yet.
 */
export async function readFromSourceTip(root: string, spec: GitSourceSpec, rel: string, maxBytes: number): Promise<string | undefined> {
  const dir = sourceCacheDir(root);
  return withSourceLock(root, 'sc (cluster PKI: watch the source branch)', async () => {
    const git = gitIn(dir);
    try {
      const branch = await sourceBranch(dir, spec);
      await git.raw(['fetch', '--quiet', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
      const object = `refs/remotes/origin/${branch}:${rel}`;
      if ((await git.raw(['cat-file', '-t', object])).trim() !== 'blob') return undefined;
      if (Number((await git.raw(['cat-file', '-s', object])).trim()) > maxBytes) return undefined;
      return await git.raw(['cat-file', 'blob', object]);
    } catch {
      return undefined;
    }
  });
}

/** The branch to publish to: the pinned one, or the remote's default branch. */
async function sourceBranch(dir: string, spec: GitSourceSpec): Promise<string> {
  const git = gitIn(dir);
  // A failing lookup (no such ref) reads as an empty answer.
  const resolve = async (args: string[]) => (await git.raw(args).catch(() => '')).trim();
  if (spec.ref === undefined) {
    const head = await resolve(['symbolic-ref', '--quiet', 'refs/remotes/origin/HEAD']);
    if (head === '')
      throw new UserError(`the source ${sourceLabel(spec)} has no default branch to publish to; pin one with ${sourceLabel(spec)}#BRANCH`);
    return head.replace(/^refs\/remotes\/origin\//, '');
  }
  if ((await resolve(['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${spec.ref}^{commit}`])) !== '') return spec.ref;
  throw new UserError(
    `the source ${sourceLabel(spec)} is pinned to a tag or commit, which cannot take the cluster PKI's files; ` +
      'pin a branch (URL#BRANCH), or commit the pki/ files to the repository by hand',
  );
}

/**
 * A commit on the branch's fetched tip whose tree is the tip's plus `files`, made in a private
 * index; undefined when the tip already has exactly these contents.
 */
async function commitOnTip(
  dir: string,
  branch: string,
  request: SourcePublishRequest,
  identity: Record<string, string>,
  signing: { key: string; mustBeListed: boolean },
): Promise<string | undefined> {
  const index = join(dir, '.git', `srvctl-publish-${process.pid}.index`);
  const git = gitIn(dir, { ...identity, GIT_INDEX_FILE: index });
  let tip: string;
  try {
    tip = (await git.raw(['rev-parse', '--verify', `refs/remotes/origin/${branch}^{commit}`])).trim();
  } catch (error) {
    throw new ScError(`cannot commit ${list(request.files)} in ${dir}: ${gitErrorText(error)}`);
  }
  if (signing.mustBeListed) {
    // Verifying hosts accept this commit only when the tip's pki/host-signers lists our key.
    const signers = await git.raw(['cat-file', 'blob', `${tip}:${HOST_SIGNERS_FILE}`]).catch(() => undefined);
    const publicKey = await readFile(`${signing.key}.pub`, 'utf8');
    if (!listsHostKey(signers, request.host, publicKey)) {
      throw new UserError(
        `cannot publish ${list(request.files)}: the source requires signatures (source.verify) and ${HOST_SIGNERS_FILE} does not list ` +
          `this host's signing key, so the other hosts would refuse its commit. Add this line to ${HOST_SIGNERS_FILE} in an operator-signed commit: ` +
          `${hostSignersLine(request.host, publicKey)}`,
      );
    }
  }
  try {
    await git.raw(['read-tree', tip]);
    for (const [rel, text] of Object.entries(request.files)) {
      // The blob from the text itself, not from the work tree file (which a link could redirect).
      const blob = (await gitWithInput(dir, ['hash-object', '-w', '--stdin'], text)).trim();
      await git.raw(['update-index', '--add', '--cacheinfo', `100644,${blob},${rel}`]);
    }
    const tree = (await git.raw(['write-tree'])).trim();
    const tipTree = (await git.raw(['rev-parse', `${tip}^{tree}`])).trim();
    if (tree === tipTree) return undefined;
    // Signed with this host's own SSH key (source-signers.ts says what such a commit may change).
    const sign = ['-c', 'gpg.format=ssh', '-c', `user.signingKey=${signing.key}`];
    return (await git.raw([...sign, 'commit-tree', '-S', tree, '-p', tip, '-m', request.message])).trim();
  } catch (error) {
    throw new ScError(`cannot commit ${list(request.files)} in ${dir}: ${gitErrorText(error)}`);
  } finally {
    await rm(index, { force: true });
  }
}

/** This host's SSH signing key for its PKI commits, made (ed25519, 0600) when missing; its path. */
async function ensureSigningKey(root: string, host: string): Promise<string> {
  const key = join(root, HOST_SIGNING_KEY);
  if (existsSync(key) && existsSync(`${key}.pub`)) return key;
  await mkdir(dirname(key), { recursive: true, mode: 0o755 });
  await rm(key, { force: true });
  await rm(`${key}.pub`, { force: true });
  const made = await spawnCollect('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `srvctl host ${host}`, '-f', key], { timeoutMs: 60_000 });
  if (made.exitCode !== 0)
    throw new ScError(
      `cannot make this host's git signing key ${key}: ${made.stderr.trim() || `ssh-keygen exited with ${String(made.exitCode ?? made.signal ?? made.errorCode)}`}`,
    );
  return key;
}
