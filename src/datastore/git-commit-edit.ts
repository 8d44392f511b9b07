// Datastore edits in a git working tree: commit exactly the files the edit wrote, with the sc
// command line as the message and the actor as author; push when asked and an upstream exists.
import { lstat, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ScError } from '../errors.js';
import { gitErrorText, gitIdentity, gitIn } from '../drivers/git.js';

export interface EditCommitRequest {
  /** The datastore dir; a commit is made only when it is the top level of a git work tree. */
  readonly dir: string;
  /** Absolute paths of the files the edit wrote: the only paths staged and committed. */
  readonly files: readonly string[];
  /** e.g. `sc add-ve shop.example.com --user alice` */
  readonly message: string;
  readonly actor?: string;
  readonly push: boolean;
}

export interface EditCommit {
  readonly revision: string;
  readonly pushed: boolean;
  /** Why a push that was asked for did not happen (no upstream, or the push failed). */
  readonly pushProblem?: string;
}

/**
 * The work tree's top level when `dir` is exactly that (a datastore that is a repository of its
 * own). A datastore dir somewhere inside another repository (e.g. examples/ in a source tree) is
 * not committed to: that repository belongs to someone else.
 */
export async function datastoreWorkTree(dir: string): Promise<string | undefined> {
  // The top of a work tree holds `.git` (a directory, or a file in a linked work tree); without it
  // (and without GIT_DIR / GIT_WORK_TREE pointing elsewhere) there is no need to start git at all.
  const gitEnv = process.env.GIT_DIR !== undefined || process.env.GIT_WORK_TREE !== undefined;
  if (
    !gitEnv &&
    !(await lstat(join(dir, '.git')).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  try {
    const top = (await gitIn(dir).raw(['rev-parse', '--show-toplevel'])).trim();
    if (top === '') return undefined;
    return (await realpath(top)) === (await realpath(dir)) ? top : undefined;
  } catch {
    return undefined;
  }
}

/** HEAD of the datastore's own repository, when it is one. */
export async function datastoreRevision(dir: string): Promise<string | undefined> {
  if ((await datastoreWorkTree(dir)) === undefined) return undefined;
  try {
    return (await gitIn(dir).raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Commits the edit; undefined when the datastore is not a work tree of its own. */
export async function commitEdit(request: EditCommitRequest): Promise<EditCommit | undefined> {
  if (request.files.length === 0 || (await datastoreWorkTree(request.dir)) === undefined) return undefined;
  const actor = request.actor && /^[^<>\n]+$/.test(request.actor) ? request.actor : 'sc';
  const identity = gitIdentity(actor);
  const git = gitIn(request.dir, await committerFallback(request.dir, identity));
  try {
    await git.raw(['add', '--', ...request.files]);
    // `--only` with paths: other staged or dirty changes of the operator stay out of this commit.
    await git.raw([
      'commit',
      '--quiet',
      '--only',
      '--no-verify',
      `--author=${identity.name} <${identity.email}>`,
      '-m',
      request.message,
      '--',
      ...request.files,
    ]);
  } catch (error) {
    throw new ScError(`the datastore files were written but not committed to git in ${request.dir}: ${gitErrorText(error)}; commit them by hand`);
  }
  const revision = (await git.raw(['rev-parse', 'HEAD'])).trim();
  if (!request.push) return { revision, pushed: false };
  let upstream: string;
  try {
    upstream = (await git.raw(['rev-parse', '--abbrev-ref', '--symbolic-full-name', '@{upstream}'])).trim();
  } catch {
    return { revision, pushed: false, pushProblem: 'the current branch has no upstream to push to (git branch --set-upstream-to)' };
  }
  try {
    await git.raw(['push', '--quiet']);
    return { revision, pushed: true };
  } catch (error) {
    return { revision, pushed: false, pushProblem: `git push to ${upstream} failed: ${gitErrorText(error)}; the commit is kept locally` };
  }
}

/** Without user.name/user.email configured git refuses to commit: let the actor be the committer too. */
async function committerFallback(dir: string, identity: { name: string; email: string }): Promise<Record<string, string>> {
  const configured = async (key: string) => {
    try {
      return (await gitIn(dir).raw(['config', '--get', key])).trim() !== '';
    } catch {
      return false;
    }
  };
  const env: Record<string, string> = {};
  if (!process.env.GIT_COMMITTER_NAME && !(await configured('user.name'))) env.GIT_COMMITTER_NAME = identity.name;
  if (!process.env.GIT_COMMITTER_EMAIL && !(await configured('user.email'))) env.GIT_COMMITTER_EMAIL = identity.email;
  return env;
}
