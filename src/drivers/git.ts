// One way to run git for sc: through the exec layer (argument arrays, never a shell; logged like
// every other command, with URL credentials redacted), no terminal prompts, a timeout. git is not
// network-namespace work: it runs in sc's own namespace, never via --netns.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createExec } from './exec.js';
import type { Exec } from './types.js';
import { redactSecrets } from './url-credentials.js';

/** A fetch or clone that takes longer than this is stopped (a hung fetch must not stall a reconcile pass for ever). */
const GIT_TIMEOUT_MS = 600_000;

export interface GitRepo {
  /** Runs `git ARGS` in the repository; its stdout, or an Error carrying git's stderr. */
  raw(args: readonly string[], options?: { input?: string }): Promise<string>;
}

let sharedExec: Exec | undefined;

/** The exec git runs through (never in --netns); replaceable in tests. */
export function gitExec(): Exec {
  sharedExec ??= createExec({ timeoutMs: GIT_TIMEOUT_MS });
  return sharedExec;
}

export function useGitExec(exec: Exec | undefined): void {
  sharedExec = exec;
}

/** git's commands are logged with the run's logger (set once by the CLI). */
export function useGitLogger(logger: Logger): void {
  sharedExec = createExec({ timeoutMs: GIT_TIMEOUT_MS, logger });
}

/** git in `dir`, with extra environment (identity, GIT_INDEX_FILE, …). */
export function gitIn(dir: string, env: Record<string, string> = {}): GitRepo {
  return {
    async raw(args, options = {}) {
      const result = await gitExec().run('git', args, {
        cwd: dir,
        // Never wait for a password on a terminal: a reconcile runs unattended.
        env: { GIT_TERMINAL_PROMPT: '0', ...env },
        inNetns: false,
        allowFailure: true,
        ...(options.input !== undefined ? { input: options.input } : {}),
      });
      // Every non-zero exit is a failure (`verify-commit` of an unsigned commit, `rev-parse --quiet` of a
      // missing ref print nothing on stderr). Only stderr is quoted: stdout may hold file contents.
      if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `git exited with status ${result.exitCode}`);
      return result.stdout;
    },
  };
}

/** Who sc's own commits are by: `actor` (e.g. `sc on web2.example.net`, or the operator) at this machine. */
export function gitIdentity(actor: string): { name: string; email: string } {
  return { name: actor, email: `${actor.replace(/[^A-Za-z0-9._-]+/g, '.')}@${hostname()}` };
}

/** The text of a git failure, for messages: its first lines, URL credentials redacted. */
export function gitErrorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactSecrets(text.trim().split('\n').filter(Boolean).slice(0, 4).join('; ')).slice(0, 1000);
}

/** Runs git in `dir` with `input` on stdin (e.g. `hash-object -w --stdin`); its stdout. */
export async function gitWithInput(dir: string, args: readonly string[], input: string, env: Record<string, string> = {}): Promise<string> {
  return gitIn(dir, env).raw(args, { input });
}
