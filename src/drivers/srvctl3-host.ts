// What sc reads and writes of the containers srvctl 3 left on a host (for `sc adopt` and for the
// container kind, which must see them as foreign): their layout under /srv, whether they run
// (srvctl 3's unit in the systemd runtime, a systemd-nspawn process in the direct one), and the
// marks that make them sc's — the state record and the .nspawn header. Every path under --root.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MACHINE_NAME, processRuns, readStateFiles, STATE_DIR, STATE_MARK, writeStateFile, type RuntimeKind, type StateFile } from './runtime.js';
import { parseSystemctlShow, SHOW_PROPERTIES, unitOf } from './nspawn-systemd.js';
import { rootfsDriver, type ObservedFile } from './rootfs.js';
import type { Drivers, FilesDriver } from './types.js';

const isNotFound = (error: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException | undefined)?.code ?? '');

export interface BesideTreeSettings {
  readonly name: string;
  /** Host path (under --root) of the file. */
  readonly path: string;
  readonly text: string;
}

/**
 * `.nspawn` files next to container trees (`/srv/NAME/NAME.nspawn`, where srvctl 3.2 kept them) of
 * the directories under /srv not in `skip`: one readdir and one read per such directory.
 */
export async function listBesideTreeSettings(drivers: Pick<Drivers, 'exec' | 'files'>, skip: ReadonlySet<string>): Promise<BesideTreeSettings[]> {
  const { files } = drivers;
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(files.hostPath('/srv'), { withFileTypes: true });
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
  const rootfs = rootfsDriver(drivers);
  const found = await Promise.all(
    entries
      .filter((e) => e.isDirectory() && MACHINE_NAME.test(e.name) && !skip.has(e.name))
      .map(async (e) => {
        const hostPath = `/srv/${e.name}/${e.name}.nspawn`;
        const file = await rootfs.readFile(files.hostPath(hostPath));
        return file.kind === 'file' ? { name: e.name, path: hostPath, text: file.text } : undefined;
      }),
  );
  return found.filter((f): f is BesideTreeSettings => f !== undefined).sort((a, b) => (a.name < b.name ? -1 : 1));
}

export interface ContainerLayoutFiles {
  /** /etc/systemd/nspawn/NAME.nspawn */
  readonly etcSettings: ObservedFile;
  /** /srv/NAME/NAME.nspawn */
  readonly besideSettings: ObservedFile;
  readonly rootfs: 'dir' | 'symlink' | 'other' | 'missing';
  /** Texts of /srv/NAME/network/*.network. */
  readonly networkFiles: string[];
  /** /srv/NAME/ctype, trimmed. */
  readonly ctype?: string;
}

/** Reads what srvctl 3 (or sc) left for one container, without following links. */
export async function readContainerLayout(drivers: Pick<Drivers, 'exec' | 'files'>, name: string): Promise<ContainerLayoutFiles> {
  const { files } = drivers;
  const rootfs = rootfsDriver(drivers);
  const read = (p: string) => rootfs.readFile(files.hostPath(p));
  const [etcSettings, besideSettings, ctype] = await Promise.all([
    read(`/etc/systemd/nspawn/${name}.nspawn`),
    read(`/srv/${name}/${name}.nspawn`),
    read(`/srv/${name}/ctype`),
  ]);
  let tree: ContainerLayoutFiles['rootfs'] = 'missing';
  try {
    const info = await fs.lstat(files.hostPath(`/srv/${name}/rootfs`));
    tree = info.isSymbolicLink() ? 'symlink' : info.isDirectory() ? 'dir' : 'other';
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const networkDir = files.hostPath(`/srv/${name}/network`);
  const networkNames = (await rootfs.listFiles(networkDir).catch(() => [] as string[])).filter((f) => f.endsWith('.network'));
  const networkFiles: string[] = [];
  for (const file of networkNames) {
    const observed = await rootfs.readFile(path.join(networkDir, file));
    if (observed.kind === 'file') networkFiles.push(observed.text);
  }
  return { etcSettings, besideSettings, rootfs: tree, networkFiles, ...(ctype.kind === 'file' ? { ctype: ctype.text.trim() } : {}) };
}

export interface RunningMachine {
  readonly name: string;
  /** systemd-nspawn's pid (the unit's main pid on a systemd host). */
  readonly pid?: number;
  /** The container's init (direct runtime). */
  readonly initPid?: number;
}

/** `-M NAME`, `-MNAME`, `--machine=NAME`, `--machine NAME`; the same for -D/--directory. */
function nspawnArgument(argv: readonly string[], short: string, long: string): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === short || arg === long) return argv[i + 1];
    if (arg.startsWith(`${long}=`)) return arg.slice(long.length + 1);
    if (arg.startsWith(short) && !arg.startsWith('--') && arg.length > short.length) return arg.slice(short.length);
  }
  return undefined;
}

async function realpathOr(p: string): Promise<string> {
  return fs.realpath(p).catch(() => path.resolve(p));
}

/**
 * The direct runtime's view: systemd-nspawn processes (any, not only sc's) running one of
 * `names` on its tree under this --root, with the init they started. One pass over /proc.
 */
async function runningNspawnProcesses(files: FilesDriver, names: ReadonlySet<string>): Promise<RunningMachine[]> {
  const parents = new Map<number, number[]>();
  const candidates: { pid: number; name: string }[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const status = await fs.readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const ppid = Number(/^PPid:\s*(\d+)/m.exec(status)?.[1] ?? '0');
    const nspid = /^NSpid:\s*(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') parents.set(ppid, [...(parents.get(ppid) ?? []), pid]);
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (path.basename(argv[0] ?? '') !== 'systemd-nspawn') continue;
    const name = nspawnArgument(argv, '-M', '--machine');
    const directory = nspawnArgument(argv, '-D', '--directory');
    if (name === undefined || directory === undefined || !names.has(name)) continue;
    // Another --root's machine of the same name is not this one.
    if ((await realpathOr(directory)) !== (await realpathOr(files.hostPath(`/srv/${name}/rootfs`)))) continue;
    candidates.push({ pid, name });
  }
  const running: RunningMachine[] = [];
  for (const { pid, name } of candidates) {
    if (!(await processRuns(pid, 'systemd-nspawn'))) continue;
    const initPid = parents.get(pid)?.[0];
    running.push({ name, pid, ...(initPid !== undefined ? { initPid } : {}) });
  }
  return running;
}

/** Which of `names` run now: srvctl-nspawn@NAME.service (srvctl 3 used that unit name too) or an nspawn process. */
export async function findRunningMachines(
  drivers: Pick<Drivers, 'exec' | 'files'>,
  runtime: RuntimeKind,
  names: readonly string[],
): Promise<RunningMachine[]> {
  if (names.length === 0) return [];
  if (runtime === 'direct') return runningNspawnProcesses(drivers.files, new Set(names));
  const shown = await drivers.exec.run('systemctl', ['show', `--property=${SHOW_PROPERTIES.join(',')}`, '--', ...names.map(unitOf)], {
    inNetns: false,
  });
  const byUnit = new Map(parseSystemctlShow(shown.stdout).map((u) => [u.unit, u]));
  return names.flatMap((name) => {
    const unit = byUnit.get(unitOf(name));
    return unit?.activeState === 'active' || unit?.activeState === 'reloading'
      ? [{ name, ...(unit.mainPid !== undefined ? { pid: unit.mainPid } : {}) }]
      : [];
  });
}

/** The config a state record of an adopted machine carries: it matches no desired config, so the next apply restarts it. */
export const ADOPTED_CONFIG = 'srvctl3:adopted';

/** The machines sc already has a state record of. */
export async function recordedMachines(files: FilesDriver): Promise<Set<string>> {
  return new Set((await readStateFiles(files.hostPath(STATE_DIR))).map((s) => s.name));
}

/** sc's state record for an adopted machine, running (with the processes it found) or stopped. */
export async function recordAdoptedMachine(
  files: FilesDriver,
  options: { name: string; runtime: RuntimeKind; running?: RunningMachine; netns?: string },
): Promise<void> {
  const { name, runtime, running, netns } = options;
  const state: StateFile = {
    srvctl: STATE_MARK,
    name,
    runtime,
    state: running ? 'running' : 'stopped',
    config: ADOPTED_CONFIG,
    ...(running?.pid !== undefined && runtime === 'direct' ? { pid: running.pid } : {}),
    ...(running?.initPid !== undefined && runtime === 'direct' ? { init_pid: running.initPid } : {}),
    ...(running && runtime === 'direct' && netns !== undefined ? { netns } : {}),
  };
  await writeStateFile(files.hostPath(STATE_DIR), state);
}

/** Writes the container's .nspawn (its mark) under --root; returns whether it changed. */
export async function writeSettingsMark(drivers: Pick<Drivers, 'exec' | 'files'>, hostPath: string, text: string): Promise<boolean> {
  return rootfsDriver(drivers).writeFileIfChanged(drivers.files.hostPath(hostPath), text);
}
