// The kill test (issue 12): `sc apply` SIGKILLed at random moments, round after round, with
// network drift injected between rounds (a bridge deleted, a container's nspawn killed, a veth
// detached or deleted, host0 flushed, the port map deleted, forwarding off) and a datastore edit
// turning one container off and on every few rounds. Then ONE apply converges: diff is clean,
// every enabled container runs exactly once (one nspawn) and answers, the disabled one does not,
// no lock is left, and foreign objects were not touched.
// Replay a failure with SC_KILL_SEED=<the seed it prints>; SC_KILL_ROUNDS sets the rounds (20 by default);
// SC_KILL_VERBOSE=1 prints what each round did also when the test passes.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { createSandbox, waitUntilNoProcessIn, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const SEED = Number(process.env.SC_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ROUNDS = Number(process.env.SC_KILL_ROUNDS ?? 20);
/** A kill lands this long (at most) after the apply started: covers start-up, observe and execute. */
const MAX_KILL_DELAY_MS = 5_000;
const FLIPPED = 'ub2.test';

/** mulberry32: a small seeded PRNG, so a failing run can be replayed exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const users = {
  res1: { name: 'Reseller', reseller: 'root', reseller_id: 1, user_id: 1, uid: 33000 },
  ua: { name: 'User A', reseller: 'res1', user_id: 1, uid: 33001 },
  ub: { name: 'User B', reseller: 'res1', user_id: 2, uid: 33002 },
};
type Doc = {
  user: string;
  host: string;
  type: string;
  ip: string;
  enabled?: boolean;
  mapped_ports?: { proto: 'tcp'; host_port: number; container_port: number }[];
};
const containers: Record<string, Doc> = {
  'ua1.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.20' },
  'ua2.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.21' },
  'ub1.test': { user: 'ub', host: HOST, type: 'busybox', ip: '10.17.2.20', mapped_ports: [{ proto: 'tcp', host_port: 8080, container_port: 80 }] },
  [FLIPPED]: { user: 'ub', host: HOST, type: 'busybox', ip: '10.17.2.21' },
};
const NAMES = Object.keys(containers).sort();

let sandbox: Sandbox;
let datastore: string;

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 300_000 });

async function writeContainers(flippedEnabled: boolean): Promise<void> {
  const docs = { ...containers, [FLIPPED]: { ...(containers[FLIPPED] as Doc), enabled: flippedEnabled } };
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(docs));
}

async function record(name: string): Promise<{ state?: string; pid?: number; init_pid?: number } | undefined> {
  const text = await readFile(path.join(sandbox.root, 'run/srvctl', `${name}.json`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as { state?: string; pid?: number; init_pid?: number });
}

/** The nspawn processes running each machine of this --root (read from /proc, not from sc). */
async function nspawnCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = Object.fromEntries(NAMES.map((n) => [n, 0]));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (!argv[0]?.endsWith('systemd-nspawn')) continue;
    const stateField = (await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => ') Z')).split(') ')[1]?.[0];
    if (stateField === 'Z') continue;
    const machine = argv.find((a) => a.startsWith('--machine='))?.slice('--machine='.length);
    const dir = argv.find((a) => a.startsWith('--directory='))?.slice('--directory='.length) ?? '';
    if (machine && dir.startsWith(`${sandbox.root}/`) && machine in counts) counts[machine] = (counts[machine] ?? 0) + 1;
  }
  return counts;
}

const hostNs = (command: string, ...args: string[]) => execa('ip', ['netns', 'exec', sandbox.netns, command, ...args], { reject: false });

async function answers(name: string, attempts = 60): Promise<boolean> {
  const ip = (containers[name] as Doc).ip;
  for (let i = 0; i < attempts; i++) {
    const page = await hostNs('curl', '-s', '--max-time', '2', `http://${ip}/`);
    const ping = await hostNs('ping', '-n', '-q', '-c', '1', '-W', '1', ip);
    if (ping.exitCode === 0 && page.exitCode === 0 && page.stdout.includes(`hello from ${name}`)) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

/** Foreign objects in the namespace and under --root that sc must never touch. */
const FOREIGN_BRIDGE = () => `${sandbox.prefix}fb`;
const FOREIGN_FILE = () => path.join(sandbox.root, 'etc/systemd/nspawn/foreign.nspawn');
async function foreignPicture(): Promise<string> {
  const [link] = await sandbox.ipJson<{ flags: string[]; ifalias?: string }[]>('link', 'show', 'dev', FOREIGN_BRIDGE());
  const [addr] = await sandbox.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>('addr', 'show', 'dev', FOREIGN_BRIDGE());
  const table = await hostNs('nft', 'list', 'table', 'inet', 'foreign');
  const file = await readFile(FOREIGN_FILE(), 'utf8');
  const mtime = (await stat(FOREIGN_FILE())).mtimeMs;
  return JSON.stringify({
    up: link?.flags.includes('UP'),
    alias: link?.ifalias ?? null,
    addr: addr?.addr_info.map((a) => `${a.local}/${a.prefixlen}`),
    table: table.stdout,
    file,
    mtime,
  });
}

/** One drift, picked by the PRNG; each one tolerates a host an interrupted apply left half-done. */
async function injectDrift(random: () => number): Promise<string> {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const name = pick(NAMES);
  const r = await record(name);
  const inside = (...argv: string[]) => execa('nsenter', ['-t', String(r?.init_pid), '-n', ...argv], { reject: false });
  const vethOf = async (): Promise<string | undefined> => {
    const host0 = await inside('ip', '-j', 'link', 'show', 'dev', 'host0');
    if (host0.exitCode !== 0) return undefined;
    const peer = (JSON.parse(host0.stdout) as { link_index?: number }[])[0]?.link_index;
    return (await sandbox.ipJson<{ ifindex: number; ifname: string }[]>('link', 'show')).find((l) => l.ifindex === peer)?.ifname;
  };
  const kind = pick(['bridge-del', 'nspawn-kill', 'veth-nomaster', 'veth-del', 'host0-flush', 'nft-del', 'forward-off'] as const);
  switch (kind) {
    case 'bridge-del': {
      const bridge = pick(['sc-17-1', 'sc-17-2']);
      await execa('ip', ['-n', sandbox.netns, 'link', 'del', bridge], { reject: false });
      return `${kind} ${bridge}`;
    }
    case 'nspawn-kill':
      if (r?.pid !== undefined) {
        try {
          process.kill(r.pid, 'SIGKILL');
        } catch {
          // not running (stopped or never started by an interrupted apply)
        }
      }
      return `${kind} ${name}`;
    case 'veth-nomaster':
    case 'veth-del': {
      const veth = r?.init_pid !== undefined ? await vethOf() : undefined;
      if (veth)
        await execa('ip', ['-n', sandbox.netns, 'link', ...(kind === 'veth-del' ? ['del', veth] : ['set', veth, 'nomaster'])], { reject: false });
      return `${kind} ${name} ${veth ?? '(none)'}`;
    }
    case 'host0-flush':
      if (r?.init_pid !== undefined) await inside('ip', 'addr', 'flush', 'dev', 'host0');
      return `${kind} ${name}`;
    case 'nft-del':
      await hostNs('nft', 'delete', 'table', 'ip', 'srvctl');
      return kind;
    case 'forward-off':
      await hostNs('sysctl', '-qw', 'net.ipv4.ip_forward=0');
      return kind;
  }
}

beforeAll(async () => {
  sandbox = await createSandbox();
  datastore = path.join(sandbox.root, 'datastore');
  await mkdir(datastore, { recursive: true });
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } }));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
  await writeContainers(true);
  // Foreign objects: a bridge without sc's alias, an nft table of someone else, a settings file sc did not write.
  await sandbox.ip('link', 'add', FOREIGN_BRIDGE(), 'type', 'bridge');
  await sandbox.ip('addr', 'add', '192.0.2.201/28', 'dev', FOREIGN_BRIDGE());
  await sandbox.ip('link', 'set', FOREIGN_BRIDGE(), 'up');
  await execa('ip', [
    'netns',
    'exec',
    sandbox.netns,
    'nft',
    'add table inet foreign; add chain inet foreign input { type filter hook input priority 0; policy accept; }; add rule inet foreign input tcp dport 9 counter accept',
  ]);
  await mkdir(path.dirname(FOREIGN_FILE()), { recursive: true });
  await writeFile(FOREIGN_FILE(), '# written by someone else\n[Exec]\nBoot=yes\n');
}, 120_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(sandbox.root), 20_000);
  } finally {
    await sandbox.destroy();
  }
}, 60_000);

describe('apply killed at random moments, with drift between the kills', () => {
  it(`${ROUNDS} killed applies, then one apply converges and every enabled site answers (seed printed on failure)`, async () => {
    const log: string[] = [`SC_KILL_SEED=${SEED} SC_KILL_ROUNDS=${ROUNDS}`];
    try {
      const first = await sc('apply');
      expect({ first: first.exitCode, report: first.exitCode === 0 ? '' : first.stdout.slice(-3000) }).toEqual({ first: 0, report: '' });
      const foreignBefore = await foreignPicture();

      const random = prng(SEED);
      let flippedEnabled = true;
      for (let round = 1; round <= ROUNDS; round++) {
        if (round % 4 === 0) {
          flippedEnabled = !flippedEnabled;
          await writeContainers(flippedEnabled);
          log.push(`round ${round}: ${FLIPPED} enabled=${flippedEnabled}`);
        }
        log.push(`round ${round}: drift ${await injectDrift(random)}`);
        const delay = Math.floor(random() * MAX_KILL_DELAY_MS);
        const child = sandbox.startSc(['--datastore', datastore, '--host', HOST, 'apply'], { timeoutMs: 300_000 });
        const timer = setTimeout(() => child.kill('SIGKILL'), delay);
        const result = await child;
        clearTimeout(timer);
        log.push(
          `round ${round}: apply ${result.signal === 'SIGKILL' ? `killed after ${delay} ms` : `finished (exit ${result.exitCode}) before the kill at ${delay} ms`}`,
        );
        // A killed sc's `ip -batch` or nft child may still run on by itself: let it finish.
        await waitUntilNoProcessIn(sandbox.netns, 30_000).catch(() => undefined);
      }

      const final = await sc('apply');
      log.push(`final apply: exit ${final.exitCode}\n${final.stdout.slice(-3000)}\n${final.stderr.slice(-2000)}`);
      expect(final.exitCode).toBe(0);
      const diff = await sc('diff');
      expect({ diff: diff.exitCode, out: diff.stdout }).toEqual({ diff: 0, out: expect.stringContaining('No changes') });

      const expected = Object.fromEntries(NAMES.map((n) => [n, n === FLIPPED && !flippedEnabled ? 0 : 1]));
      expect(await nspawnCounts()).toEqual(expected);
      for (const name of NAMES) {
        const enabled = name !== FLIPPED || flippedEnabled;
        if (enabled) expect({ name, answers: await answers(name) }).toEqual({ name, answers: true });
        else
          expect({ name, answers: (await hostNs('ping', '-n', '-q', '-c', '1', '-W', '1', (containers[name] as Doc).ip)).exitCode === 0 }).toEqual({
            name,
            answers: false,
          });
      }
      // No lock left behind (nor a half-written one).
      const leftovers = (await readdir(path.join(sandbox.root, 'run/srvctl'))).filter((f) => f.startsWith('apply.lock'));
      expect(leftovers).toEqual([]);
      expect(await foreignPicture()).toBe(foreignBefore);
      if (process.env.SC_KILL_VERBOSE) process.stderr.write(`${log.join('\n')}\n`);
    } catch (error) {
      process.stderr.write(`apply-kill test failed; replay with ${log[0]}\n${log.join('\n')}\n`);
      throw error;
    }
  }, 1_500_000);

  it('a container whose nspawn was SIGKILLed keeps its payload running: disabling it still stops that payload', async () => {
    await writeContainers(true);
    expect((await sc('apply')).exitCode).toBe(0);
    expect(await answers(FLIPPED)).toBe(true);
    const before = await record(FLIPPED);
    process.kill(before?.pid as number, 'SIGKILL');
    // The payload (busybox init, httpd) outlives its supervisor and still answers.
    expect(await answers(FLIPPED)).toBe(true);

    await writeContainers(false);
    const diff = await sc('-o', 'json', 'diff');
    const changes = (JSON.parse(diff.stdout) as { changes: { action: string; kind: string; id: string }[] }).changes.map(
      (c) => `${c.action} ${c.kind}/${c.id}`,
    );
    expect(changes).toContain(`update machine/${FLIPPED}`);
    expect((await sc('apply')).exitCode).toBe(0);
    expect((await hostNs('ping', '-n', '-q', '-c', '1', '-W', '1', (containers[FLIPPED] as Doc).ip)).exitCode).not.toBe(0);
    expect((await nspawnCounts())[FLIPPED]).toBe(0);
    expect((await record(FLIPPED))?.state).toBe('stopped');
    expect((await sc('diff')).exitCode).toBe(0);
  }, 300_000);
});
