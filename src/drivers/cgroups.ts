// The cgroups the direct runtime gives each container (sandbox.md §4): one per machine, in every
// hierarchy nspawn cares about, so `--keep-unit` puts each machine's payload/supervisor apart and
// a hard stop is one write to cgroup.kill. Pure /proc and /sys reads and writes, no commands.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, rmdir, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';

export const CGROUP_FS = '/sys/fs/cgroup';

/** Where the cgroup trees are mounted: the unified (v2) one and, on hybrid hosts, name=systemd. */
export interface CgroupLayout {
  /** The cgroup2 mount: cgroup.kill and cgroup.procs of the machine's subtree are read here. */
  readonly unified: string;
  /** Every tree a launcher joins (the unified one first). */
  readonly trees: readonly string[];
}

/** Pure unified (`/sys/fs/cgroup` is cgroup2) or hybrid (`unified/` + `systemd/`, like this CI). */
export function detectCgroupLayout(mount = CGROUP_FS, exists: (p: string) => boolean = existsSync): CgroupLayout {
  if (exists(path.join(mount, 'cgroup.controllers'))) return { unified: mount, trees: [mount] };
  const unified = path.join(mount, 'unified');
  const systemd = path.join(mount, 'systemd');
  return { unified, trees: [unified, ...(exists(systemd) ? [systemd] : [])] };
}

/**
 * The parent cgroup of all machines sc starts under one --root: `srvctl` on a real host, and
 * `srvctl.<8 hex of the root>` under a test root, so two simulated hosts never share machines.
 */
export function machinesCgroupBase(root: string): string {
  const resolved = path.resolve(root);
  if (resolved === '/') return 'srvctl';
  return `srvctl.${createHash('sha256').update(resolved).digest('hex').slice(0, 8)}`;
}

export const machineCgroup = (root: string, name: string): string => `${machinesCgroupBase(root)}/${name}`;

async function readPids(file: string): Promise<number[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map(Number);
}

/** Every pid anywhere under a cgroup of the unified tree (recursive). */
export async function pidsUnder(layout: CgroupLayout, cgroup: string): Promise<number[]> {
  const dir = path.join(layout.unified, cgroup);
  const pids = await readPids(path.join(dir, 'cgroup.procs'));
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isDirectory()) pids.push(...(await pidsUnder(layout, path.join(cgroup, entry.name))));
  }
  return pids;
}

/** Creates the machine's cgroup in every tree; returns the cgroup.procs files a launcher writes its pid to. */
export async function prepareMachineCgroup(layout: CgroupLayout, cgroup: string): Promise<string[]> {
  const files: string[] = [];
  for (const tree of layout.trees) {
    const dir = path.join(tree, cgroup);
    // A parallel stop may remove the (then empty) parent between the two levels: try again.
    await mkdir(dir, { recursive: true }).catch(() => mkdir(dir, { recursive: true }));
    files.push(path.join(tree, cgroup, 'cgroup.procs'));
  }
  return files;
}

/** Removes the parent of a removed machine's cgroup when no machine is left in it (best effort). */
export async function removeEmptyParent(layout: CgroupLayout, cgroup: string): Promise<void> {
  const parent = path.dirname(cgroup);
  if (parent === '.' || parent === '/') return;
  for (const tree of layout.trees) await rmdir(path.join(tree, parent)).catch(() => undefined);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Kills everything left in a machine's cgroup (cgroup.kill: one write, the whole subtree) and
 * removes the cgroup from every tree once it is empty. Safe on a cgroup that does not exist.
 */
export async function killAndRemoveCgroup(layout: CgroupLayout, cgroup: string, timeoutMs = 10_000): Promise<void> {
  const dir = path.join(layout.unified, cgroup);
  if (existsSync(dir) && (await pidsUnder(layout, cgroup)).length > 0) {
    await writeFile(path.join(dir, 'cgroup.kill'), '1');
    const deadline = Date.now() + timeoutMs;
    while ((await pidsUnder(layout, cgroup)).length > 0) {
      if (Date.now() > deadline) throw new Error(`processes in cgroup ${cgroup} survived cgroup.kill for ${timeoutMs} ms`);
      await sleep(20);
    }
  }
  for (const tree of layout.trees) await removeTree(path.join(tree, cgroup));
}

/** rmdir depth-first: cgroup directories are removed with rmdir, never with rm -r. */
async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (entries === undefined) return;
  for (const entry of entries) if (entry.isDirectory()) await removeTree(path.join(dir, entry.name));
  await rmdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
