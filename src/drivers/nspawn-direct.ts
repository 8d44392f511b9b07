// The direct runtime (no systemd as PID 1, e.g. CI): sc starts `systemd-nspawn --register=no
// --keep-unit` detached (setsid) in a cgroup of its own per machine, records it under
// <root>/run/srvctl, stops it with SIGTERM (nspawn forwards --kill-signal to init) and, if that
// is not enough, cgroup.kill. sandbox.md §4 is the verified recipe.
import { closeSync, existsSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import { HostCommandError, UserError } from '../errors.js';
import { killAndRemoveCgroup, machineCgroup, pidsUnder, prepareMachineCgroup, removeEmptyParent, type CgroupLayout } from './cgroups.js';
import { commandInNetns } from './exec.js';
import {
  findInitPid,
  liveRecord,
  processRuns,
  readStateFileOf,
  readStateFiles,
  removeStateFile,
  STATE_DIR,
  STATE_MARK,
  writeStateFile,
  type MachineLaunch,
  type MachineRecord,
  type MachineRuntime,
} from './runtime.js';
import { childEnv, spawnCollect } from './spawn-collect.js';
import type { FilesDriver } from './types.js';

export interface DirectRuntimeOptions {
  readonly root: string;
  readonly files: FilesDriver;
  readonly netns?: string;
  readonly cgroups: CgroupLayout;
  readonly logger?: Logger;
  /** How long a start may take until init runs, and a graceful stop until nspawn exits. */
  readonly startTimeoutMs?: number;
  readonly stopTimeoutMs?: number;
}

/**
 * Joins the cgroup.procs files given before `--`, then execs the rest: the pid that joined is the
 * pid that becomes nsenter and then systemd-nspawn. A fixed script; every input is an argument.
 */
export const LAUNCH_SCRIPT = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

/** Where a machine's files are under the host root (the container kind writes them). */
export function machinePaths(files: FilesDriver, name: string) {
  const dir = files.hostPath(`/srv/${name}`);
  return {
    rootfs: path.join(dir, 'rootfs'),
    /** The container kind's file: nspawn reads it itself only when the root is the real `/`. */
    settings: files.hostPath(`/etc/systemd/nspawn/${name}.nspawn`),
    /** nspawn also looks next to the tree, for `<machine>.nspawn` (trusted with --settings=trusted). */
    settingsBesideTree: path.join(dir, `${name}.nspawn`),
    stateDir: files.hostPath(STATE_DIR),
    console: path.join(files.hostPath(STATE_DIR), `${name}.console.log`),
  };
}

/** The nspawn arguments of a direct start (without the netns wrapper). */
export function directNspawnArgs(launch: MachineLaunch, rootfs: string): string[] {
  return [
    '--register=no',
    '--keep-unit',
    '--quiet',
    `--directory=${rootfs}`,
    `--machine=${launch.name}`,
    '--settings=trusted',
    `--kill-signal=${launch.killSignal}`,
    '--console=read-only',
    ...Object.entries(launch.env)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => `--setenv=${key}=${value}`),
  ];
}

/** The full command line of a direct start: launcher script, cgroup files, netns wrapper, nspawn. */
export function directLaunchCommand(launch: MachineLaunch, rootfs: string, procsFiles: readonly string[], netns?: string): [string, string[]] {
  const nspawn = directNspawnArgs(launch, rootfs);
  const [file, args] = netns === undefined ? ['systemd-nspawn', nspawn] : commandInNetns(netns, 'systemd-nspawn', nspawn);
  return ['sh', ['-c', LAUNCH_SCRIPT, 'srvctl-launch', ...procsFiles, '--', file, ...args]];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function consoleTail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

/**
 * systemd-nspawn ≥ 256 mounts /run/systemd/nspawn/unix-export/NAME for the machine's lifetime and
 * refuses to start a machine whose mount point is still there — which a SIGKILLed nspawn leaves
 * behind, so the container would never start again. Called after halt(): no machine of that name
 * runs, so what is there is stale (a lazy unmount, then the empty directory goes).
 */
async function clearStaleUnixExport(name: string): Promise<void> {
  const dir = `/run/systemd/nspawn/unix-export/${name}`;
  if (name.includes('/') || !existsSync(dir)) return;
  await spawnCollect('umount', ['-l', dir], { timeoutMs: 10_000 }).catch(() => undefined);
  await rmdir(dir).catch(() => undefined);
}

export function createDirectRuntime(options: DirectRuntimeOptions): MachineRuntime {
  const { files, netns, cgroups, logger, root } = options;
  const startTimeout = options.startTimeoutMs ?? 30_000;
  const stopTimeout = options.stopTimeoutMs ?? 15_000;
  const stateDir = files.hostPath(STATE_DIR);

  const list = async (): Promise<MachineRecord[]> => Promise.all((await readStateFiles(stateDir)).map(liveRecord));
  // One record, not all of them: starting N machines would otherwise read N² records.
  const find = async (name: string): Promise<MachineRecord | undefined> => {
    const file = await readStateFileOf(stateDir, name);
    return file ? liveRecord(file) : undefined;
  };

  /** SIGTERM to nspawn (it forwards the kill signal to init), wait, then kill what is left. */
  const halt = async (name: string): Promise<void> => {
    const record = await find(name);
    if (record?.state === 'running' && record.pid !== undefined) {
      try {
        process.kill(record.pid, 'SIGTERM');
      } catch {
        // gone meanwhile
      }
      const deadline = Date.now() + stopTimeout;
      while ((await processRuns(record.pid, 'systemd-nspawn')) && Date.now() < deadline) await sleep(50);
    }
    // Whatever survived (or a payload orphaned by a killed nspawn) goes with the cgroup.
    await killAndRemoveCgroup(cgroups, machineCgroup(root, name));
  };
  /** A stop for good: also the parent cgroup goes once the last machine of this --root is gone. */
  const haltAndTidy = async (name: string): Promise<void> => {
    await halt(name);
    await removeEmptyParent(cgroups, machineCgroup(root, name));
  };

  const start = async (launch: MachineLaunch): Promise<MachineRecord> => {
    const paths = machinePaths(files, launch.name);
    // A dead run may have left its init (holding the old veth) or an empty cgroup behind.
    await halt(launch.name);
    await clearStaleUnixExport(launch.name);
    try {
      await copyFile(paths.settings, paths.settingsBesideTree);
    } catch {
      throw new UserError(`cannot start ${launch.name}: its settings file ${paths.settings} is missing (the container kind writes it; run sc apply)`);
    }
    const cgroup = machineCgroup(root, launch.name);
    const procsFiles = await prepareMachineCgroup(cgroups, cgroup);
    await mkdir(paths.stateDir, { recursive: true });
    // Recorded as running before it is launched (no pids yet: read back, such a record is a stale
    // one): an sc killed between the launch and the final record leaves a record that says a dead
    // run may have left something, not a `stopped` one under which a live nspawn would be ignored.
    await writeStateFile(stateDir, { srvctl: STATE_MARK, name: launch.name, runtime: 'direct', state: 'running', config: launch.config });
    const [file, args] = directLaunchCommand(launch, paths.rootfs, procsFiles, netns);
    logger?.debug({ command: [file, ...args] }, 'exec detached');
    const log = openSync(paths.console, 'w');
    let exited: { code?: number; signal?: string } | undefined;
    let pid: number | undefined;
    try {
      // Not execa: the machine must outlive this sc (own session, no cleanup on exit), with its
      // console going straight to a file rather than through a pipe sc would have to drain.
      const child = spawn(file, args, { detached: true, stdio: ['ignore', log, log], env: childEnv() });
      pid = child.pid;
      child.on('exit', (code, signal) => {
        exited = { ...(code !== null ? { code } : {}), ...(signal !== null ? { signal } : {}) };
      });
      child.on('error', () => {
        exited = {};
      });
      child.unref();
    } finally {
      closeSync(log);
    }
    if (pid === undefined) throw new HostCommandError([file, ...args], undefined, 'could not start', '');

    const deadline = Date.now() + startTimeout;
    let initPid: number | undefined;
    for (;;) {
      initPid = await findInitPid(await pidsUnder(cgroups, `${cgroup}/payload`));
      if (initPid !== undefined) break;
      if (exited !== undefined || Date.now() > deadline) {
        const why = exited
          ? `exited${exited.code !== undefined ? ` with ${exited.code}` : ` on ${exited.signal}`}`
          : `no init after ${startTimeout} ms`;
        await killAndRemoveCgroup(cgroups, cgroup);
        throw new HostCommandError([file, ...args], exited?.code, await consoleTail(paths.console), '', { reason: why });
      }
      await sleep(25);
    }
    const started = new Date().toISOString();
    await writeStateFile(stateDir, {
      srvctl: STATE_MARK,
      name: launch.name,
      runtime: 'direct',
      state: 'running',
      config: launch.config,
      pid,
      init_pid: initPid,
      started,
      ...(netns !== undefined ? { netns } : {}),
    });
    return {
      name: launch.name,
      runtime: 'direct',
      state: 'running',
      config: launch.config,
      pid,
      initPid,
      started,
      ...(netns !== undefined ? { netns } : {}),
    };
  };

  const markStopped = async (name: string, config: string): Promise<void> => {
    await writeStateFile(stateDir, { srvctl: STATE_MARK, name, runtime: 'direct', state: 'stopped', config });
  };

  return {
    kind: 'direct',
    list,
    find,
    start,
    async stop(name, config) {
      await haltAndTidy(name);
      await markStopped(name, config);
    },
    markStopped,
    async remove(name) {
      await haltAndTidy(name);
      const paths = machinePaths(files, name);
      await removeStateFile(stateDir, name);
      await Promise.all([paths.settingsBesideTree, paths.console].map((p) => rm(p, { force: true })));
    },
  };
}
