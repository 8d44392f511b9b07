// Runs one program to completion and collects what it printed: node's own spawn, without a shell.
// (execa did this before; loading it cost sc ~30 ms of CPU and 10 MiB on every run that touches
// the host, for features sc does not use.)
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readSync, rmdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SpawnOptions {
  /** Written to stdin, which is closed after it; without it stdin is /dev/null. */
  input?: string;
  /** SIGKILL after this many ms. */
  timeoutMs: number;
  /** Added to sc's own environment (which reaches the program without NOTIFY_SOCKET: childEnv). */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Collect stdout through an unlinked temporary file instead of a pipe: for big dumps (`ip -json
   * -details link show` prints megabytes on a host with thousands of bridges). A pipe holds 64 KiB:
   * the program stops at every full pipe until sc's event loop reads it, which it does not while it
   * is busy (loading the datastore while the dump runs), so the dump took several times its own
   * time. A file never blocks the writer. Falls back to a pipe when no temporary file can be made.
   */
  stdoutToFile?: boolean;
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
  const stdoutFd = options.stdoutToFile ? unlinkedTemporaryFile() : undefined;
  return new Promise((resolve) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let settled = false;
    let child: ChildProcess;
    try {
      child = spawn(file, [...args], {
        stdio: [options.input === undefined ? 'ignore' : 'pipe', stdoutFd ?? 'pipe', 'pipe'],
        env: childEnv(options.env),
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      });
    } catch (error) {
      if (stdoutFd !== undefined) closeSync(stdoutFd);
      throw error;
    }
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
      const out = stdoutFd === undefined ? Buffer.concat(stdout) : readAndClose(stdoutFd);
      resolve({
        ...(code !== null && spawnError === undefined ? { exitCode: code } : {}),
        ...(signal !== null ? { signal } : {}),
        ...(spawnError !== undefined ? { errorCode: spawnError.code ?? 'could not start', errorMessage: spawnError.message } : {}),
        timedOut,
        stdout: out.toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    }
  });
}

/** A new file only this process can reach: made in a private directory, both removed at once. Undefined if that fails. */
function unlinkedTemporaryFile(): number | undefined {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(path.join(tmpdir(), 'sc-out-'));
    const file = path.join(dir, 'stdout');
    const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    unlinkSync(file);
    return fd;
  } catch {
    return undefined;
  } finally {
    if (dir !== undefined) {
      try {
        rmdirSync(dir);
      } catch {
        // Left behind empty (it holds nothing): not worth failing the command for.
      }
    }
  }
}

/** Everything written to the file, from its start; the descriptor is closed. */
function readAndClose(fd: number): Buffer {
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const n = readSync(fd, buffer, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return buffer.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}
