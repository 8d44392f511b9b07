// The haproxy driver: sc's reverse proxy process and its config file (sandbox.md §8). sc starts and
// owns an HAProxy master (master-worker, `-W -D`) in --netns; a config is checked with
// `haproxy -c` before it replaces the old one, and a reload is the master's SIGUSR2: new workers
// take the listening sockets over from the old ones (the admin socket's `expose-fd listeners`),
// so no connection is refused. Observed from sc's files, /proc and one `ss` of ports 80/443.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostCommandError, ScError } from '../errors.js';
import type { Exec, FilesDriver } from './types.js';

export const HAPROXY_CONFIG_PATH = '/etc/haproxy/srvctl.cfg';
/** The map files the config reads (host → backend, host → redirect), named by their content. */
export const HAPROXY_MAP_DIR = '/etc/haproxy/srvctl-maps';
export const HAPROXY_RUN_DIR = '/run/srvctl/haproxy';
export const haproxyRunFiles = {
  pid: `${HAPROXY_RUN_DIR}/haproxy.pid`,
  adminSocket: `${HAPROXY_RUN_DIR}/admin.sock`,
  /** The digest of the config the running master last loaded (written after a start or reload). */
  loaded: `${HAPROXY_RUN_DIR}/loaded`,
  /** A candidate config is checked here before it replaces the real one. */
  candidate: `${HAPROXY_RUN_DIR}/candidate.cfg`,
} as const;

/** A TCP listener on a port the proxy serves, and the processes holding it. */
export interface PortListener {
  readonly port: number;
  readonly processes: readonly { readonly name: string; readonly pid: number }[];
}

export interface HaproxyState {
  /** The config file's text; undefined when there is none. */
  readonly configText?: string;
  /** The master's pid when sc's HAProxy runs (alive, an haproxy, started on sc's config). */
  readonly masterPid?: number;
  /** Its worker pids. */
  readonly workers: readonly number[];
  /** What the loaded record says the master last loaded. */
  readonly loaded?: string;
  /** Listeners on 80/443 in the namespace, to tell a foreign proxy from sc's. */
  readonly listeners: readonly PortListener[];
}

export interface HaproxyDriver {
  observe(): Promise<HaproxyState>;
  /** `haproxy -c` on a candidate text; throws HostCommandError with HAProxy's own words when it fails. */
  check(text: string): Promise<void>;
  /** Writes the (checked) config; false when it already was exactly that. */
  install(text: string): Promise<boolean>;
  /** Starts the master when none runs, else reloads it; records `digest` as loaded. */
  startOrReload(digest: string): Promise<'started' | 'reloaded'>;
  /** Stops sc's HAProxy and removes its config and runtime files. */
  remove(): Promise<void>;
}

/** `ss -Hltnp` lines → listeners on the given ports. */
export function parseListeners(ssOutput: string, ports: readonly number[]): PortListener[] {
  const byPort = new Map<number, { name: string; pid: number }[]>();
  for (const line of ssOutput.split('\n')) {
    const fields = line.trim().split(/\s+/);
    // State Recv-Q Send-Q Local:Port Peer:Port Process (ss -H omits the header; state may be absent with -l)
    const local = fields.find((f) => /:\d+$/.test(f));
    if (!local) continue;
    const port = Number(local.slice(local.lastIndexOf(':') + 1));
    if (!ports.includes(port)) continue;
    const procs = [...line.matchAll(/\("([^"]+)",pid=(\d+)/g)].map((m) => ({ name: m[1] as string, pid: Number(m[2]) }));
    const list = byPort.get(port) ?? [];
    for (const p of procs) if (!list.some((q) => q.pid === p.pid)) list.push(p);
    byPort.set(port, list);
  }
  return [...byPort].sort(([a], [b]) => a - b).map(([port, processes]) => ({ port, processes: processes.sort((a, b) => a.pid - b.pid) }));
}

async function procText(pid: number, file: string): Promise<string | undefined> {
  return readFile(`/proc/${pid}/${file}`, 'utf8').catch(() => undefined);
}

/** Alive, not a zombie, an haproxy, and started on this config: a recycled pid does not count. */
async function isHaproxyOn(pid: number, configPath: string): Promise<boolean> {
  const stat = await procText(pid, 'stat');
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return false;
  const argv = ((await procText(pid, 'cmdline')) ?? '').split('\0');
  return path.basename(argv[0] ?? '') === 'haproxy' && argv.includes(configPath);
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await procText(pid, `task/${pid}/children`);
  return (text ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
}

export interface CreateHaproxyOptions {
  exec: Exec;
  files: FilesDriver;
  /** How long a start or reload may take before it is reported failed. */
  readyTimeoutMs?: number;
}

export function createHaproxyDriver(options: CreateHaproxyOptions): HaproxyDriver {
  const { exec, files } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const configPath = files.hostPath(HAPROXY_CONFIG_PATH);
  const pidPath = files.hostPath(haproxyRunFiles.pid);

  const masterPid = async (): Promise<number | undefined> => {
    const pid = Number((await files.read(haproxyRunFiles.pid))?.trim());
    return Number.isInteger(pid) && pid > 0 && (await isHaproxyOn(pid, configPath)) ? pid : undefined;
  };

  const workersOf = async (master: number): Promise<number[]> => {
    const children = await childrenOf(master);
    const alive = await Promise.all(children.map((pid) => isHaproxyOn(pid, configPath)));
    return children.filter((_, i) => alive[i]);
  };

  const listeners = async (): Promise<PortListener[]> => {
    const result = await exec.run('ss', ['-Hltnp'], { allowFailure: true });
    return result.exitCode === 0 ? parseListeners(result.stdout, [80, 443]) : [];
  };

  const waitFor = async (what: string, ready: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + readyTimeoutMs;
    while (!(await ready())) {
      if (Date.now() > deadline) throw new ScError(`haproxy: ${what} did not happen within ${readyTimeoutMs / 1000} s`);
      await sleep(50);
    }
  };

  const stop = async (): Promise<void> => {
    const pid = await masterPid();
    if (pid === undefined) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while ((await isHaproxyOn(pid, configPath)) && Date.now() < deadline) await sleep(50);
    if (await isHaproxyOn(pid, configPath)) process.kill(pid, 'SIGKILL');
  };

  return {
    async observe() {
      const [configText, pid, loaded, found] = await Promise.all([
        files.read(HAPROXY_CONFIG_PATH),
        masterPid(),
        files.read(haproxyRunFiles.loaded),
        listeners(),
      ]);
      const workers = pid !== undefined ? await workersOf(pid) : [];
      return {
        ...(configText !== undefined ? { configText } : {}),
        ...(pid !== undefined ? { masterPid: pid } : {}),
        workers,
        ...(loaded !== undefined && pid !== undefined ? { loaded: loaded.trim() } : {}),
        listeners: found,
      };
    },

    async check(text) {
      await files.write(haproxyRunFiles.candidate, text, { mode: 0o600 });
      try {
        const result = await exec.run('haproxy', ['-c', '-f', files.hostPath(haproxyRunFiles.candidate)], { allowFailure: true, inNetns: false });
        if (result.exitCode !== 0) {
          const why = `${result.stderr}\n${result.stdout}`
            .split('\n')
            .filter((l) => /ALERT|error/i.test(l))
            .map((l) => l.replace(/^\[ALERT\]\s*\(\d+\)\s*:\s*/, '').trim())
            .join('; ');
          throw new HostCommandError(result.command, result.exitCode, why || result.stderr, result.stdout, {
            reason: 'the rendered HAProxy config fails the check; the running proxy and its config are left as they were',
          });
        }
      } finally {
        await files.remove(haproxyRunFiles.candidate);
      }
    },

    install: (text) => files.write(HAPROXY_CONFIG_PATH, text, { mode: 0o644 }),

    async startOrReload(digest) {
      const pid = await masterPid();
      let outcome: 'started' | 'reloaded';
      if (pid === undefined) {
        await files.mkdir(HAPROXY_RUN_DIR, { mode: 0o700 });
        await files.remove(haproxyRunFiles.loaded);
        // A stale admin socket of a dead master would be taken for the listeners' handover.
        await files.remove(haproxyRunFiles.adminSocket);
        await exec.run('haproxy', ['-W', '-D', '-p', pidPath, '-f', configPath]);
        await waitFor('the start of the master and its worker', async () => {
          const master = await masterPid();
          return master !== undefined && (await workersOf(master)).length > 0;
        });
        outcome = 'started';
      } else {
        const before = new Set(await workersOf(pid));
        process.kill(pid, 'SIGUSR2');
        // The master re-executes itself and forks a worker on the new config; the old ones finish
        // their connections and leave.
        await waitFor('the reload (a worker on the new config)', async () => (await workersOf(pid)).some((w) => !before.has(w)));
        outcome = 'reloaded';
      }
      await files.write(haproxyRunFiles.loaded, `${digest}\n`, { mode: 0o600 });
      return outcome;
    },

    async remove() {
      await stop();
      for (const f of [HAPROXY_CONFIG_PATH, haproxyRunFiles.pid, haproxyRunFiles.loaded, haproxyRunFiles.adminSocket, haproxyRunFiles.candidate])
        await files.remove(f);
      for (const entry of (await files.list(HAPROXY_MAP_DIR)) ?? [])
        if (entry.type === 'file' && entry.name.endsWith('.map')) await files.remove(`${HAPROXY_MAP_DIR}/${entry.name}`);
    },
  };
}
