// The shared sandbox of integration tests (sandbox.md §1, §9): a uniquely named network namespace
// and --root directory per test, the processes the test started, and a teardown that removes them
// all, also when the test failed. Nothing here touches the machine's root namespace.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SC_MAIN = path.join(REPO_ROOT, 'dist/cli/main.js');

export interface ScResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunScOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
}

function requireBuiltCli(): void {
  if (!existsSync(SC_MAIN)) throw new Error(`${SC_MAIN} is missing: run \`npm run build\` before the integration tests`);
}

/** Starts `node dist/cli/main.js ARGS` without waiting for it. */
export function spawnSc(args: readonly string[], options: RunScOptions = {}) {
  requireBuiltCli();
  return execa(process.execPath, [SC_MAIN, ...args], {
    reject: false,
    env: { NO_COLOR: '1', ...options.env },
    timeout: options.timeoutMs ?? 120_000,
    // execa's default SIGKILL 5 s after kill() would cut short the graceful stop that tests of
    // `sc reconcile` check (a pass in progress finishes first; under load that can take > 5 s).
    forceKillAfterDelay: 30_000,
    stdin: 'ignore',
  });
}
export type ScProcess = ReturnType<typeof spawnSc>;

/** Runs `node dist/cli/main.js ARGS` and returns its exit code and output (never throws on exit ≠ 0). */
export async function runSc(args: readonly string[], options: RunScOptions = {}): Promise<ScResult> {
  const result = await spawnSc(args, options);
  return {
    exitCode: result.exitCode ?? -1,
    stdout: typeof result.stdout === 'string' ? result.stdout : '',
    stderr: typeof result.stderr === 'string' ? result.stderr : '',
  };
}

/** `ip -n NS -json ARGS`, parsed: the test's own view of the namespace, independent of sc's drivers. */
export async function ipJson<T = unknown>(netns: string, ...args: string[]): Promise<T> {
  const { stdout } = await execa('ip', ['-n', netns, '-json', ...args]);
  return JSON.parse(stdout === '' ? '[]' : stdout) as T;
}

/** `ip -n NS ARGS` for the test's own changes inside its namespace. */
export async function ipIn(netns: string, ...args: string[]): Promise<void> {
  await execa('ip', ['-n', netns, ...args]);
}

/** Whether a command line runs something inside `netns` (ip -n, ip netns exec, nsenter --net). */
function runsIn(argv: string[], netns: string): boolean {
  return argv.some(
    (arg, i) =>
      (arg === '-n' && argv[i + 1] === netns) ||
      (arg === 'exec' && argv[i - 1] === 'netns' && argv[i + 1] === netns) ||
      arg === `--net=/run/netns/${netns}`,
  );
}

/**
 * Waits until no process works inside `netns` — e.g. the `ip -batch` child of an sc that was
 * SIGKILLed, which runs on by itself. Only reads /proc; kills nothing.
 */
export async function waitUntilNoProcessIn(netns: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      if (cmdline !== '' && runsIn(cmdline.split('\0'), netns)) busy.push(Number(entry));
    }
    if (busy.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes still working in ${netns}: ${busy.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Pids of processes that work for this sandbox: inside its namespace, or on paths under its root
 * (e.g. an image build or a container an `sc apply` left behind when the test killed it).
 */
async function processesOf(netns: string, root: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (runsIn(argv, netns) || argv.some((arg) => arg === root || arg.includes(`${root}/`))) found.push(Number(entry));
  }
  return found;
}

/** Mount points at or under `dir` (e.g. the /proc of an interrupted debootstrap), deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  return mounts
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

export interface Sandbox {
  /** `sct` + 4 random hex characters: every name this sandbox creates starts with it. */
  readonly prefix: string;
  /** The simulated host's network namespace. */
  readonly netns: string;
  /** A fresh temporary directory for --root. */
  readonly root: string;
  ipJson<T = unknown>(...args: string[]): Promise<T>;
  ip(...args: string[]): Promise<void>;
  /** `sc` with `--root` and `--netns` of this sandbox in front of ARGS. */
  runSc(args: readonly string[], options?: RunScOptions): Promise<ScResult>;
  /** Starts `sc` in the background (for kill and concurrency tests); the process is tracked. */
  startSc(args: readonly string[], options?: RunScOptions): ScProcess;
  /** Remembers a pid to kill at teardown. */
  track(pid: number): void;
  /** Kills tracked processes, deletes the namespace and the root directory. Safe to call twice. */
  destroy(): Promise<void>;
}

export async function createSandbox(): Promise<Sandbox> {
  if (process.getuid?.() !== 0) throw new Error('integration tests need root (network namespaces)');
  const prefix = `sct${randomBytes(2).toString('hex')}`;
  const netns = `${prefix}-h1`;
  // Each tracked process with a way to tell it is still ours: a pid of a child that already exited
  // may belong to someone else by now.
  const tracked = new Map<number, () => boolean>();
  let root: string | undefined;
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // Processes first: a namespace with a live process in it survives its deletion, invisibly.
    for (const [pid, running] of tracked) {
      if (!running()) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (root) {
      // Containers an `sc apply` of this test started live in the cgroups of this --root.
      await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(root)).catch((error: unknown) => {
        process.stderr.write(`sandbox ${prefix}: ${String(error)}\n`);
      });
      for (const pid of await processesOf(netns, root)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await execa('ip', ['netns', 'del', netns], { reject: false });
    if (root) {
      // Never let a recursive delete walk into a mount (a /proc, a bind mount of a host path).
      for (const mount of await mountsUnder(root)) await execa('umount', ['-l', mount], { reject: false });
      await rm(root, { recursive: true, force: true });
    }
  };

  try {
    await execa('ip', ['netns', 'add', netns]);
    await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    root = await mkdtemp(path.join(tmpdir(), `${prefix}-root-`));
  } catch (error) {
    await destroy();
    throw error;
  }
  const rootDir = root;
  const scArgs = (args: readonly string[]) => ['--root', rootDir, '--netns', netns, ...args];

  return {
    prefix,
    netns,
    root: rootDir,
    ipJson: <T>(...args: string[]) => ipJson<T>(netns, ...args),
    ip: (...args: string[]) => ipIn(netns, ...args),
    runSc: (args, options) => runSc(scArgs(args), options),
    startSc(args, options) {
      const child = spawnSc(scArgs(args), options);
      let exited = false;
      void child.finally(() => {
        exited = true;
      });
      if (child.pid !== undefined) tracked.set(child.pid, () => !exited);
      return child;
    },
    track: (pid) => void tracked.set(pid, () => true),
    destroy,
  };
}

/** Runs `fn` in a fresh sandbox and always tears it down. */
export async function withSandbox<T>(fn: (sandbox: Sandbox) => Promise<T>): Promise<T> {
  const sandbox = await createSandbox();
  try {
    return await fn(sandbox);
  } finally {
    await sandbox.destroy();
  }
}
