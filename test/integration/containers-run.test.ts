// Running containers for real (issue 5, part B): `sc apply` in a test namespace and --root starts
// 2 users × 3 busybox containers in the direct runtime, gives each its address, repairs drift
// without restarting the others, stops disabled and removes deleted ones, and leaves a foreign
// nspawn machine alone. Every container dies with its cgroup in afterAll (sandbox.md §9).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { appendFile, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const CGROUP_TREES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];

const users = {
  res1: { name: 'Reseller', reseller: 'root', reseller_id: 1, user_id: 1, uid: 30000 },
  ua: { name: 'User A', reseller: 'res1', user_id: 1, uid: 30001 },
  ub: { name: 'User B', reseller: 'res1', user_id: 2, uid: 30002 },
};
type ContainerDoc = { user: string; host: string; type: string; ip: string; enabled?: boolean };
const containers: Record<string, ContainerDoc> = {};
for (const [user, third] of [
  ['ua', 1],
  ['ub', 2],
] as const) {
  for (let i = 1; i <= 3; i++) containers[`${user}${i}.test`] = { user, host: HOST, type: 'busybox', ip: `10.17.${third}.${19 + i}` };
}
const NAMES = Object.keys(containers).sort();

interface StateRecord {
  state: string;
  pid?: number;
  init_pid?: number;
}

let sandbox: Sandbox;
let datastore: string;
const foreignCgroup = () => `${sandbox.prefix}-foreign`;

async function writeDatastore(docs: Record<string, ContainerDoc>): Promise<void> {
  await mkdir(datastore, { recursive: true });
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } }));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(docs));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
}

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 180_000 });

async function state(name: string): Promise<StateRecord | undefined> {
  const text = await readFile(path.join(sandbox.root, 'run/srvctl', `${name}.json`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as StateRecord);
}

/** Alive and not a zombie: /proc/PID/stat field 3 (orphans are reaped late here). */
function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function planChanges(): Promise<{ exitCode: number; changes: string[] }> {
  const result = await sc('-o', 'json', 'diff');
  const json = JSON.parse(result.stdout) as { changes: { action: string; kind: string; id: string }[] };
  return { exitCode: result.exitCode, changes: json.changes.map((c) => `${c.action} ${c.kind}/${c.id}`).sort() };
}

/** Kills every process in the cgroups this test's --root produced (and its own), then removes them. */
async function killContainers(): Promise<void> {
  const layout = detectCgroupLayout();
  for (const base of [machinesCgroupBase(sandbox.root), foreignCgroup()]) await killAndRemoveCgroup(layout, base, 20_000);
}

beforeAll(async () => {
  sandbox = await createSandbox();
  datastore = path.join(sandbox.root, 'datastore');
  await writeDatastore(containers);
}, 60_000);

afterAll(async () => {
  if (!sandbox) return;
  await killContainers();
  await sandbox.destroy();
}, 60_000);

describe('containers in the direct runtime', () => {
  it("apply starts 2 users × 3 busybox containers, each with its address, on its owner's bridge", async () => {
    const apply = await sc('apply');
    expect(apply.stderr).toBe('');
    // The apply's own report says why, when it did not converge.
    expect({ exit: apply.exitCode, report: apply.exitCode === 0 ? '' : apply.stdout.slice(-3000) }).toEqual({ exit: 0, report: '' });

    for (const name of NAMES) {
      const record = await state(name);
      expect(record?.state).toBe('running');
      expect(alive(record?.pid)).toBe(true);
      const { stdout } = await execa('nsenter', ['-t', String(record?.init_pid), '-n', 'ip', '-j', 'addr', 'show', 'dev', 'host0']);
      const [link] = JSON.parse(stdout) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
      expect(link?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${containers[name]?.ip}/24`]);
    }

    // Each container's host-side veth is a port of its owner's bridge (found via host0's iflink).
    const links = await sandbox.ipJson<{ ifindex: number; master?: string }[]>('link', 'show');
    for (const name of NAMES) {
      const record = await state(name);
      const { stdout } = await execa('nsenter', ['-t', String(record?.init_pid), '-n', 'ip', '-j', 'link', 'show', 'dev', 'host0']);
      const [host0] = JSON.parse(stdout) as { link_index?: number }[];
      const peer = links.find((l) => l.ifindex === host0?.link_index);
      expect(peer?.master).toBe(containers[name]?.user === 'ua' ? 'sc-17-1' : 'sc-17-2');
    }

    // From inside, through sc exec: the gateway and a sibling on the same bridge answer.
    for (const [name, gateway, sibling] of [
      ['ua1.test', '10.17.1.1', '10.17.1.21'],
      ['ub3.test', '10.17.2.1', '10.17.2.20'],
    ] as const) {
      for (const target of [gateway, sibling]) {
        const ping = await sc('exec', name, '--', 'ping', '-c1', '-W2', target);
        expect({ name, target, exit: ping.exitCode }).toEqual({ name, target, exit: 0 });
      }
    }
    const all = await sc('exec-all', '--', 'hostname');
    expect(all.exitCode).toBe(0);
    expect(all.stdout.trim().split('\n').sort()).toEqual(NAMES.map((n) => `${n}: ${n}`));

    expect((await sc('diff')).exitCode).toBe(0);
  }, 180_000);

  it('names exactly the drifted containers and repairs them without restarting the others', async () => {
    const before = new Map<string, StateRecord | undefined>();
    for (const name of NAMES) before.set(name, await state(name));

    process.kill(before.get('ua1.test')?.pid as number, 'SIGKILL');
    await execa('nsenter', ['-t', String(before.get('ua2.test')?.init_pid), '-n', 'ip', 'addr', 'flush', 'dev', 'host0']);
    await appendFile(path.join(sandbox.root, 'etc/systemd/nspawn/ua3.test.nspawn'), '# edited by hand\n');
    // The killed nspawn must be gone (not a zombie) before sc looks.
    const deadline = Date.now() + 10_000;
    while (alive(before.get('ua1.test')?.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const drift = await planChanges();
    expect(drift.exitCode).toBe(2);
    expect(drift.changes).toEqual([
      'create container-address/ua1.test',
      'update container-address/ua2.test',
      'update container/ua3.test',
      'update machine/ua1.test',
    ]);

    const apply = await sc('apply');
    // The output says what did not converge, if anything.
    expect({ exit: apply.exitCode, output: `${apply.stdout}\n${apply.stderr}` }).toMatchObject({ exit: 0 });
    expect((await state('ua1.test'))?.state).toBe('running');
    expect((await state('ua1.test'))?.pid).not.toBe(before.get('ua1.test')?.pid);
    for (const name of NAMES.filter((n) => n !== 'ua1.test')) {
      expect({ name, pid: (await state(name))?.pid }).toEqual({ name, pid: before.get(name)?.pid });
      expect(alive(before.get(name)?.pid)).toBe(true);
    }
    expect((await sc('exec', 'ua2.test', '--', 'ping', '-c1', '-W2', '10.17.1.1')).exitCode).toBe(0);
    expect((await sc('diff')).exitCode).toBe(0);
  }, 180_000);

  it('stops a disabled container, removes a deleted one and leaves a foreign nspawn machine alone', async () => {
    // A machine sc did not start: a copy of the image, its own cgroup, no state record.
    const foreignRoot = path.join(sandbox.root, 'foreign', 'rootfs');
    await cp(path.join(sandbox.root, 'var/srvctl3/rootfs/busybox'), foreignRoot, { recursive: true });
    const procs: string[] = [];
    for (const tree of CGROUP_TREES) {
      await mkdir(path.join(tree, foreignCgroup()), { recursive: true });
      procs.push(path.join(tree, foreignCgroup(), 'cgroup.procs'));
    }
    const log = openSync(path.join(sandbox.root, 'foreign.log'), 'w');
    const foreign = spawn(
      'sh',
      [
        '-c',
        'for f in "$1" "$2"; do echo $$ > "$f"; done; shift 2; exec "$@"',
        'x',
        ...procs,
        'nsenter',
        `--net=/run/netns/${sandbox.netns}`,
        'systemd-nspawn',
        '--register=no',
        '--keep-unit',
        '-q',
        '-D',
        foreignRoot,
        `--machine=${sandbox.prefix}-foreign`,
        '--private-network',
        '-b',
        '--kill-signal=SIGUSR2',
        '--console=read-only',
      ],
      { detached: true, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    foreign.unref();
    const foreignPid = foreign.pid as number;

    const changed: Record<string, ContainerDoc> = { ...containers, 'ub1.test': { ...(containers['ub1.test'] as ContainerDoc), enabled: false } };
    delete changed['ub2.test'];
    await writeDatastore(changed);
    const kept = await state('ub3.test');
    const stopping = await state('ub1.test');
    const removing = await state('ub2.test');

    const apply = await sc('apply');
    expect(apply.exitCode).toBe(0);
    expect((await state('ub1.test'))?.state).toBe('stopped');
    expect(alive(stopping?.pid)).toBe(false);
    expect(await state('ub2.test')).toBeUndefined();
    expect(alive(removing?.pid)).toBe(false);
    expect(existsSync(path.join(sandbox.root, 'srv/ub2.test'))).toBe(true); // data kept without --prune-data
    expect((await state('ub3.test'))?.pid).toBe(kept?.pid);
    expect(alive(foreignPid)).toBe(true);

    const again = await planChanges();
    expect(again).toEqual({ exitCode: 0, changes: [] });
  }, 180_000);

  it('removing every container (with --allow-mass-delete) stops them all and leaves no cgroup of this root behind', async () => {
    const running = await Promise.all(['ua2.test', 'ua3.test', 'ub3.test'].map(state));
    await writeDatastore({});
    expect((await sc('apply')).exitCode).toBe(1); // the guardrail: all containers would go
    const apply = await sc('apply', '--allow-mass-delete');
    expect(apply.exitCode).toBe(0);
    for (const record of running) expect(alive(record?.pid)).toBe(false);
    for (const tree of CGROUP_TREES) expect(existsSync(path.join(tree, machinesCgroupBase(sandbox.root)))).toBe(false);
    expect(await planChanges()).toEqual({ exitCode: 0, changes: [] });
  }, 180_000);
});
