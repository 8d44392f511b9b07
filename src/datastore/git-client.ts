// One way to run git for sc: simple-git with argument arrays (no shell), no terminal prompts and a
// stall timeout. git is not network-namespace work: it runs in sc's own namespace, never via --netns.
import { hostname } from 'node:os';
import { execa } from 'execa';
import { simpleGit, type SimpleGit } from 'simple-git';
import { redactSecrets } from './url-credentials.js';

/** Stop a git command that prints nothing for this long (a hung fetch must not stall a reconcile pass). */
const STALL_TIMEOUT_MS = 120_000;

/** Interactive-only settings: sc never opens an editor or a pager, so they are not passed on. */
const INTERACTIVE_ENV = new Set(['EDITOR', 'VISUAL', 'GIT_EDITOR', 'GIT_SEQUENCE_EDITOR', 'PAGER', 'GIT_PAGER']);

export function gitIn(dir: string, env: Record<string, string> = {}): SimpleGit {
  const inherited: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined && !INTERACTIVE_ENV.has(name)) inherited[name] = value;
  return simpleGit({
    baseDir: dir,
    maxConcurrentProcesses: 1,
    timeout: { block: STALL_TIMEOUT_MS },
    // simple-git's default accepts a non-zero exit that printed nothing on stderr (`git verify-commit`
    // of an unsigned commit, `rev-parse --quiet` of a missing ref): sc treats every non-zero exit as failure.
    errors(error, result) {
      if (error) return error;
      if (result.exitCode === 0) return undefined;
      const text = Buffer.concat([...result.stdErr, ...result.stdOut]).toString('utf8').trim();
      return new Error(text === '' ? `git exited with status ${result.exitCode}` : text);
    },
    // simple-git guards against hostile arguments and environments; sc never passes -c options, and
    // the operator's own transport settings (GIT_SSH_COMMAND, askpass, config files) must keep working.
    unsafe: { allowUnsafeSshCommand: true, allowUnsafeAskPass: true, allowUnsafeConfigPaths: true, allowUnsafeGitProxy: true, allowUnsafeConfigEnvCount: true },
  }).env({
    ...inherited,
    // Never wait for a password on a terminal: a reconcile runs unattended.
    GIT_TERMINAL_PROMPT: '0',
    ...env,
  });
}

/** Who sc's own commits are by: `actor` (e.g. `sc on web2.example.net`, or the operator) at this machine. */
export function gitIdentity(actor: string): { name: string; email: string } {
  return { name: actor, email: `${actor.replace(/[^A-Za-z0-9._-]+/g, '.')}@${hostname()}` };
}

/** The text of a git failure without simple-git's decoration, for messages. */
export function gitErrorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactSecrets(text.trim().split('\n').filter(Boolean).slice(0, 4).join('; ')).slice(0, 1000);
}

/** Runs git in `dir` with `input` on stdin (e.g. `hash-object -w --stdin`); its stdout, or an Error with its stderr. */
export async function gitWithInput(dir: string, args: readonly string[], input: string, env: Record<string, string> = {}): Promise<string> {
  const result = await execa('git', [...args], { cwd: dir, input, reject: false, env: { GIT_TERMINAL_PROMPT: '0', ...env }, timeout: STALL_TIMEOUT_MS });
  if (result.exitCode !== 0) throw new Error(String(result.stderr).trim() || `git exited with status ${String(result.exitCode)}`);
  return String(result.stdout);
}
