// Runs one program to completion and collects what it printed: node's own spawn, without a shell.
// (execa did this before; loading it cost sc ~30 ms of CPU and 10 MiB on every run that touches
// the host, for features sc does not use.)
import { spawn, type ChildProcess } from 'node:child_process';

export interface SpawnOptions {
  /** Written to stdin, which is closed after it; without it stdin is /dev/null. */
  input?: string;
  /** SIGKILL after this many ms. */
  timeoutMs: number;
  /** Added to sc's own environment (which reaches the program without NOTIFY_SOCKET: childEnv). */
  env?: Record<string, string>;
  cwd?: string;
}

export interface SpawnOutcome {
  /** Undefined when the program did not start or was killed by a signal. */
  exitCode?: number;
  signal?: NodeJS.Signals;
  /** Why it did not start (ENOENT, EACCES, …). */
  errorCode?: string;
  errorMessage?: string;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Variables of sc's own caller that must not reach the programs sc starts. NOTIFY_SOCKET is the
 * service manager's socket of whoever started sc (systemd for a Type=notify unit, systemd-nspawn
 * for every program in a container): a program that inherits it reports to that manager as if it
 * were the service, and `openvpn --daemon` does not fork at all while it can (sd_notify succeeds),
 * so sc would wait for it until the timeout and kill it (found running sc in a Debian 13 container).
 */
const CALLER_ONLY_ENV = ['NOTIFY_SOCKET'] as const;

/** The environment of a program sc starts: sc's own without CALLER_ONLY_ENV, plus `extra`. */
export function childEnv(extra: Readonly<Record<string, string>> = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of CALLER_ONLY_ENV) delete env[name];
  return { ...env, ...extra };
}

/** Programs still running when sc exits are killed, like execa's cleanup did. */
const running = new Set<ChildProcess>();
let exitHook = false;

export function spawnCollect(file: string, args: readonly string[], options: SpawnOptions): Promise<SpawnOutcome> {
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const child of running) child.kill('SIGKILL');
    });
  }
  return new Promise((resolve) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let settled = false;
    const child = spawn(file, [...args], {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: childEnv(options.env),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    running.add(child);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      spawnError ??= error;
      // A program that never started emits no 'close'.
      if (child.pid === undefined) finish(null, null);
    });
    child.on('close', (code, signal) => finish(code, signal));
    if (options.input !== undefined && child.stdin) {
      // A program that exits without reading all of its input closes the pipe: not sc's error.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }

    function finish(code: number | null, signal: NodeJS.Signals | null): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.delete(child);
      resolve({
        ...(code !== null && spawnError === undefined ? { exitCode: code } : {}),
        ...(signal !== null ? { signal } : {}),
        ...(spawnError !== undefined ? { errorCode: spawnError.code ?? 'could not start', errorMessage: spawnError.message } : {}),
        timedOut,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    }
  });
}
