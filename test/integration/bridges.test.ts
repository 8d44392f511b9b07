// Bridges end to end through the `sc` CLI (dist/cli/main.js; run `npm run build` first) in a
// fresh network namespace: apply the example datastore, repair tampering, leave foreign links
// alone, recover from an apply killed half-way, and survive two applies started together.
// Every command is limited with `--target bridge`: the datastores' containers would otherwise
// make sc build images and start machines, which other tests cover.
import path from 'node:path';
import { execa } from 'execa';
import type { IpAddrEntry, IpLink } from '../../src/drivers/types.js';
import { generateDatastore, writeDatastore } from './generated-datastore.js';
import { createSandbox, REPO_ROOT, waitUntilNoProcessIn, type Sandbox } from './sandbox.js';

const HOST = 'web1.example.net';
const EXAMPLE = path.join(REPO_ROOT, 'examples/datastore');

interface PlanJson {
  changes: { action: string; kind: string; id: string; reasons: unknown[] }[];
  summary: { add: number; change: number; destroy: number; conflict: number };
}

/** name → what the test itself sees of every bridge-kind link in the namespace. */
async function bridgesIn(sandbox: Sandbox) {
  const links = await sandbox.ipJson<IpLink[]>('-details', 'link', 'show', 'type', 'bridge');
  const addrs = await sandbox.ipJson<IpAddrEntry[]>('addr', 'show');
  const v4 = new Map(addrs.map((a) => [a.ifname, a.addr_info.filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`)]));
  return new Map(links.map((l) => [l.ifname, { alias: l.ifalias, up: l.flags.includes('UP'), addresses: v4.get(l.ifname) ?? [] }]));
}

const parsePlan = (stdout: string): PlanJson => JSON.parse(stdout) as PlanJson;
/** Only the bridge kind: `--target bridge`. */
const BRIDGES_ONLY = ['--target', 'bridge'];
const EXAMPLE_BRIDGES = ['sc-16-1', 'sc-16-2', 'sc-17-1', 'sc-17-3', 'sc-18-1'];
const changeList = (plan: PlanJson) => plan.changes.map((c) => `${c.action} ${c.kind}/${c.id}`).sort();

describe('sc apply / diff on bridges (example datastore)', () => {
  let sandbox: Sandbox;
  const sc = (...args: string[]) => sandbox.runSc(['--datastore', EXAMPLE, '--host', HOST, ...args, ...BRIDGES_ONLY]);

  beforeAll(async () => {
    sandbox = await createSandbox();
  });
  afterAll(async () => {
    await sandbox?.destroy();
  });

  it('creates the bridges of every user with a container on this host', async () => {
    const applied = await sc('apply');
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.exitCode).toBe(0);

    const bridges = await bridgesIn(sandbox);
    expect([...bridges.keys()].sort()).toEqual(EXAMPLE_BRIDGES);
    expect(bridges.get('sc-17-3')).toEqual({ alias: 'srvctl:bridge user=alice', up: true, addresses: ['10.17.3.1/24'] });
    expect(bridges.get('sc-16-1')).toEqual({ alias: 'srvctl:bridge user=r', up: true, addresses: ['10.16.1.1/24'] });
    expect(bridges.get('sc-18-1')).toEqual({ alias: 'srvctl:bridge user=bob', up: true, addresses: ['10.18.1.1/24'] });
  });

  it('then diff finds nothing to do (exit 0)', async () => {
    const diff = await sc('diff');
    expect(diff.stdout).toContain('No changes.');
    expect(diff.exitCode).toBe(0);
    const json = await sc('-o', 'json', 'diff');
    expect(json.exitCode).toBe(0);
    expect(parsePlan(json.stdout).changes).toEqual([]);
  });

  it('status lists the bridges in sync', async () => {
    const status = await sandbox.runSc(['--datastore', EXAMPLE, '--host', HOST, '-o', 'json', 'status']);
    expect(status.exitCode).toBe(0);
    const body = JSON.parse(status.stdout) as { resources: { kind: string; id: string; state: string }[] };
    const bridges = body.resources.filter((r) => r.kind === 'bridge');
    expect(bridges.map((r) => `${r.id} ${r.state}`)).toEqual([
      'sc-16-1 in sync',
      'sc-16-2 in sync',
      'sc-17-1 in sync',
      'sc-17-3 in sync',
      'sc-18-1 in sync',
    ]);
  });

  it('diff names exactly what was tampered with, and the foreign link in the way as a conflict', async () => {
    await sandbox.ip('link', 'del', 'dev', 'sc-16-1');
    await sandbox.ip('addr', 'del', '10.16.2.1/24', 'dev', 'sc-16-2');
    await sandbox.ip('addr', 'add', '10.16.2.9/24', 'dev', 'sc-16-2');
    await sandbox.ip('link', 'set', 'dev', 'sc-17-1', 'down');
    await sandbox.ip('link', 'add', 'name', 'br-foreign', 'type', 'bridge');
    await sandbox.ip('addr', 'add', '192.168.77.1/24', 'dev', 'br-foreign');
    // The kernel here has no dummy driver; a veth end does as well for a foreign link.
    await sandbox.ip('link', 'add', 'name', 'fx0', 'type', 'veth', 'peer', 'name', 'fx1');
    await sandbox.ip('addr', 'add', '10.17.3.77/24', 'dev', 'fx0');

    const json = await sc('-o', 'json', 'diff');
    expect(json.exitCode).toBe(2);
    const plan = parsePlan(json.stdout);
    expect(changeList(plan)).toEqual(['conflict bridge/sc-17-3', 'create bridge/sc-16-1', 'update bridge/sc-16-2', 'update bridge/sc-17-1']);
    expect(plan.summary).toEqual({ add: 1, change: 2, destroy: 0, conflict: 1 });
    expect(JSON.stringify(plan.changes.find((c) => c.id === 'sc-17-3')?.reasons)).toContain('fx0');

    const text = await sc('diff');
    expect(text.exitCode).toBe(2);
    expect(text.stdout).toContain('Plan: 1 to add, 2 to change, 0 to destroy.');
    expect(text.stdout).not.toContain('br-foreign');
  });

  it('apply repairs everything but the conflict, which it reports and leaves alone (exit 1)', async () => {
    const applied = await sc('apply');
    expect(applied.exitCode).toBe(1);
    expect(`${applied.stdout}\n${applied.stderr}`).toContain('fx0');

    const bridges = await bridgesIn(sandbox);
    expect(bridges.get('sc-16-1')).toEqual({ alias: 'srvctl:bridge user=r', up: true, addresses: ['10.16.1.1/24'] });
    expect(bridges.get('sc-16-2')?.addresses).toEqual(['10.16.2.1/24']);
    expect(bridges.get('sc-17-1')?.up).toBe(true);
    const [fx0] = await sandbox.ipJson<IpAddrEntry[]>('addr', 'show', 'dev', 'fx0');
    expect(fx0?.addr_info.filter((a) => a.family === 'inet').map((a) => a.local)).toEqual(['10.17.3.77']);
  });

  it('once the foreign address is gone, apply converges, diff exits 0, and the foreign bridge is untouched', async () => {
    await sandbox.ip('link', 'del', 'dev', 'fx0');
    const applied = await sc('apply');
    expect(applied.exitCode).toBe(0);
    const diff = await sc('diff');
    expect(diff.stdout).toContain('No changes.');
    expect(diff.exitCode).toBe(0);
    expect((await bridgesIn(sandbox)).get('br-foreign')).toEqual({ alias: undefined, up: false, addresses: ['192.168.77.1/24'] });
  });
});

describe('sc apply under stress (100 bridges)', () => {
  let sandbox: Sandbox | undefined;
  afterEach(async () => {
    await sandbox?.destroy();
    sandbox = undefined;
  });

  async function prepare(resellers: number, usersPerReseller: number) {
    sandbox = await createSandbox();
    const datastore = path.join(sandbox.root, 'datastore');
    await writeDatastore(datastore, generateDatastore({ host: HOST, hostnet: 1, resellers, usersPerReseller }));
    return {
      sandbox,
      args: ['--datastore', datastore, '--host', HOST],
      apply: ['apply', ...BRIDGES_ONLY],
      diff: ['diff', ...BRIDGES_ONLY],
    };
  }

  it('an apply killed half-way is finished by the next one', async () => {
    const { sandbox: sb, args, apply: applyArgs, diff: diffArgs } = await prepare(4, 25);
    // Kill at a random moment shortly after the first bridge appears: ip monitor reports it.
    const monitor = execa('ip', ['-n', sb.netns, 'monitor', 'link'], { reject: false, buffer: false });
    if (monitor.pid !== undefined) sb.track(monitor.pid);
    const firstLink = new Promise<void>((resolve) => monitor.stdout?.once('data', () => resolve()));
    const apply = sb.startSc([...args, ...applyArgs]);
    await Promise.race([firstLink, apply]);
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 40)));
    apply.kill('SIGKILL');
    const killed = await apply;
    monitor.kill('SIGTERM');
    await monitor;
    // The `ip -batch` child of the killed sc may still be running; let it finish first.
    await waitUntilNoProcessIn(sb.netns);
    const partial = await bridgesIn(sb);
    // Not asserted: where exactly the kill landed is up to the scheduler.
    process.stderr.write(
      `killed apply (signal ${String(killed.signal)}, exit ${String(killed.exitCode)}) left ${partial.size} bridges, ${[...partial.values()].filter((b) => b.alias).length} marked\n`,
    );

    const recovered = await sb.runSc([...args, ...applyArgs]);
    expect(recovered.stderr).not.toMatch(/error/i);
    expect(recovered.exitCode).toBe(0);
    const diff = await sb.runSc([...args, ...diffArgs]);
    expect(diff.exitCode).toBe(0);
    const bridges = await bridgesIn(sb);
    expect(bridges.size).toBe(100);
    for (const [name, b] of bridges) {
      const [, second, user] = /^sc-(\d+)-(\d+)$/.exec(name) ?? [];
      expect(b).toEqual({ alias: expect.stringMatching(/^srvctl:bridge user=u\d+x\d+$/), up: true, addresses: [`10.${second}.${user}.1/24`] });
    }
  });

  it('two applies started together: one may be refused by the lock, and the host ends converged', async () => {
    const { sandbox: sb, args, apply: applyArgs, diff: diffArgs } = await prepare(2, 20);
    const [a, b] = await Promise.all([sb.startSc([...args, ...applyArgs]), sb.startSc([...args, ...applyArgs])]);
    for (const run of [a, b]) {
      if (run.exitCode !== 0) {
        expect(run.exitCode).toBe(1);
        expect(run.stderr).toMatch(/another sc process holds .*apply\.lock \(.*pid/);
      }
    }
    expect([a.exitCode, b.exitCode]).toContain(0);
    const diff = await sb.runSc([...args, ...diffArgs]);
    expect(diff.exitCode).toBe(0);
    expect((await bridgesIn(sb)).size).toBe(40);
  });
});
