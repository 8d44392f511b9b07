// The TEST-NET underlay shared by the cluster VPN tests (sandbox.md §2): a bridge in a switch
// namespace of its own, one veth per sandbox with eth0 = 192.0.2.1N/24 (N = 1, 2, …) inside the
// sandbox's namespace; and the teardown of such a farm (tunnels, sandboxes, switch). Every link is
// created inside the test's namespaces; nothing here touches the machine's root namespace.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Sandbox } from './sandbox.js';

/** The underlay address of the N-th host (1-based): its `host_ip` in clusters.json. */
export const underlayIp = (n: number): string => `192.0.2.1${n}`;

export interface Underlay {
  /** The switch namespace, `<first sandbox's prefix>-ul`. */
  readonly netns: string;
  /** Deletes the switch namespace (and with it every veth pair). Safe to call twice. */
  destroy(): Promise<void>;
}

/** Connects `boxes` (at most 9) on 192.0.2.0/24: boxes[i] gets eth0 = underlayIp(i + 1). */
export async function createUnderlay(boxes: readonly Sandbox[]): Promise<Underlay> {
  const first = boxes[0];
  if (!first || boxes.length > 9) throw new Error(`createUnderlay: expected 1 to 9 sandboxes, got ${boxes.length}`);
  const netns = `${first.prefix}-ul`;
  const destroy = async (): Promise<void> => {
    await execa('ip', ['netns', 'del', netns], { reject: false });
  };
  try {
    await execa('ip', ['netns', 'add', netns]);
    await execa('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['-n', netns, 'link', 'add', 'ul0', 'type', 'bridge']);
    await execa('ip', ['-n', netns, 'link', 'set', 'ul0', 'up']);
    for (const [i, box] of boxes.entries()) {
      const port = `${first.prefix}-u${i + 1}`;
      // Created in the switch namespace, its peer straight in the host's: never in the root namespace.
      await execa('ip', ['-n', netns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', box.netns]);
      await execa('ip', ['-n', netns, 'link', 'set', port, 'master', 'ul0', 'up']);
      await box.ip('addr', 'add', `${underlayIp(i + 1)}/24`, 'dev', 'eth0');
      await box.ip('link', 'set', 'eth0', 'up');
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return { netns, destroy };
}

/** Every openvpn pid recorded under a test root (the tunnels sc started). */
export async function openvpnPids(root: string): Promise<number[]> {
  const dir = path.join(root, 'run/srvctl/openvpn');
  const names = await readdir(dir).catch(() => [] as string[]);
  const pids: number[] = [];
  for (const n of names.filter((f) => f.endsWith('.pid'))) {
    const pid = Number((await readFile(path.join(dir, n), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/** SIGTERMs the tunnels sc started under `root` (pids whose cmdline is still openvpn's); returns them. */
export async function killOpenvpn(root: string): Promise<number[]> {
  const signalled: number[] = [];
  for (const pid of await openvpnPids(root)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.startsWith('openvpn')) continue; // not ours any more
    try {
      process.kill(pid, 'SIGTERM');
      signalled.push(pid);
    } catch {
      // already gone
    }
  }
  return signalled;
}

/**
 * Tears a VPN farm down, also after a failed setup or test: tunnels first (SIGTERM, then up to 5 s
 * for them to exit), then the sandboxes (whose destroy() kills containers and whatever else still
 * works for them), then the switch namespace. Every step runs even when an earlier one failed.
 */
export async function destroyVpnFarm(boxes: readonly Sandbox[], underlay: Underlay | undefined): Promise<void> {
  const errors: unknown[] = [];
  const signalled: number[] = [];
  for (const box of boxes) signalled.push(...(await killOpenvpn(box.root).catch(() => [] as number[])));
  const deadline = Date.now() + 5_000;
  while (signalled.some((pid) => existsSync(`/proc/${pid}`)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const box of boxes) await box.destroy().catch((error: unknown) => void errors.push(error));
  if (underlay) await underlay.destroy().catch((error: unknown) => void errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, `tearing down the VPN farm: ${errors.map(String).join('; ')}`);
}

/**
 * Rounds of `apply(i)` on every host at the same time (as timers on real servers would run them:
 * their pushes race) until every host exits 0 in one round; returns that round. After `rounds`
 * rounds without it, fails with the tail of the last four entries of `transcript` (every sc run).
 */
export async function concurrentRounds(
  hosts: number,
  apply: (i: number) => Promise<{ exitCode?: number }>,
  rounds: number,
  transcript: readonly string[],
): Promise<number> {
  for (let round = 1; round <= rounds; round++) {
    const results = await Promise.all(Array.from({ length: hosts }, (_, i) => apply(i)));
    if (results.every((r) => r.exitCode === 0)) return round;
  }
  const last = transcript.slice(-4).map((t) => (t.length > 3_000 ? `…${t.slice(-3_000)}` : t));
  throw new Error(`the cluster did not converge in ${rounds} rounds; the last runs:\n${last.join('\n')}`);
}
