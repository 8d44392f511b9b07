// The network-drift sweep (issue 12): ten ways an admin or a crash breaks a served site's network.
// Each one is seen by `sc diff`, repaired by ONE `sc apply`, after which every site answers (ping
// and an HTTP request to its busybox page, and the mapped port from a client namespace), no other
// container was restarted (same nspawn and init pids), and a second `sc diff` is clean.
// Every container dies with its cgroup in afterAll (sandbox.md §9).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const HOST_UPLINK_IP = '192.0.2.11';
const CLIENT_IP = '192.0.2.99';
const MAPPED_PORT = 8080;

const users = {
  res1: { name: 'Reseller', reseller: 'root', reseller_id: 1, user_id: 1, uid: 32000 },
  ua: { name: 'User A', reseller: 'res1', user_id: 1, uid: 32001 },
  ub: { name: 'User B', reseller: 'res1', user_id: 2, uid: 32002 },
};
const containers = {
  'ua1.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.20' },
  'ua2.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.21' },
  'ub1.test': {
    user: 'ub',
    host: HOST,
    type: 'busybox',
    ip: '10.17.2.20',
    mapped_ports: [{ proto: 'tcp', host_port: MAPPED_PORT, container_port: 80 }],
  },
};
type Name = keyof typeof containers;
const NAMES = Object.keys(containers).sort() as Name[];

interface StateRecord {
  state: string;
  pid?: number;
  init_pid?: number;
}

let sandbox: Sandbox;
let datastore: string;
let clientNs: string;

/** Each sc run is bounded well below the test's timeout, so a hang fails with sc's own output, not jest's timeout. */
const sc = async (...args: string[]) => {
  const started = Date.now();
  const result = await sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 150_000 });
  if (result.exitCode === -1 || Date.now() - started > 60_000) {
    process.stderr.write(
      `sc ${args.join(' ')}: exit ${result.exitCode} after ${Date.now() - started} ms\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}\n`,
    );
  }
  return result;
};

async function state(name: string): Promise<StateRecord | undefined> {
  const text = await readFile(path.join(sandbox.root, 'run/srvctl', `${name}.json`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as StateRecord);
}

async function pids(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of NAMES) {
    const record = await state(name);
    out[name] = `${record?.pid}/${record?.init_pid}`;
  }
  return out;
}

/** Runs a command in a container's network namespace (the test's own view, not sc's). */
async function inContainer(name: Name, ...argv: string[]) {
  const record = await state(name);
  return execa('nsenter', ['-t', String(record?.init_pid), '-n', ...argv]);
}

/** The container's host-side veth, found as sc must find it: through host0's peer index. */
async function vethOf(name: Name): Promise<string> {
  const [host0] = JSON.parse((await inContainer(name, 'ip', '-j', 'link', 'show', 'dev', 'host0')).stdout) as { link_index: number }[];
  const links = await sandbox.ipJson<{ ifindex: number; ifname: string }[]>('link', 'show');
  const veth = links.find((l) => l.ifindex === host0?.link_index)?.ifname;
  if (!veth) throw new Error(`no veth for ${name}`);
  return veth;
}

async function diffChanges(): Promise<{ exitCode: number; changes: string[] }> {
  const result = await sc('-o', 'json', 'diff');
  const json = JSON.parse(result.stdout) as { changes: { action: string; kind: string; id: string }[] };
  return { exitCode: result.exitCode, changes: json.changes.map((c) => `${c.action} ${c.kind}/${c.id}`).sort() };
}

const hostNs = (command: string, ...args: string[]) => execa('ip', ['netns', 'exec', sandbox.netns, command, ...args], { reject: false });

/** Polls (at most 90 s: a loaded machine can stall netlink for long) until `probe` succeeds: busybox init respawns httpd a moment after a restart. */
async function eventually(what: string, probe: () => Promise<boolean>, limitMs = 90_000): Promise<string> {
  const deadline = Date.now() + limitMs;
  do {
    if (await probe()) return 'ok';
    await new Promise((resolve) => setTimeout(resolve, 250));
  } while (Date.now() < deadline);
  return `${what}: no answer`;
}

/** Every site answers: ping and its page from the host, and the mapped port from the client. */
async function sitesAnswer(): Promise<string[]> {
  const results: string[] = [];
  for (const name of NAMES) {
    const ip = containers[name].ip;
    results.push(await eventually(`ping ${name}`, async () => (await hostNs('ping', '-n', '-q', '-c', '1', '-W', '1', ip)).exitCode === 0));
    results.push(
      await eventually(`http ${name}`, async () => {
        const page = await hostNs('curl', '-s', '--max-time', '2', `http://${ip}/`);
        return page.exitCode === 0 && page.stdout.includes(`hello from ${name}`);
      }),
    );
  }
  results.push(
    await eventually('mapped port from the client', async () => {
      const page = await execa('ip', ['netns', 'exec', clientNs, 'curl', '-s', '--max-time', '2', `http://${HOST_UPLINK_IP}:${MAPPED_PORT}/`], {
        reject: false,
      });
      return page.exitCode === 0 && page.stdout.includes('hello from ub1.test');
    }),
  );
  return results;
}

beforeAll(async () => {
  sandbox = await createSandbox();
  clientNs = `${sandbox.prefix}-cl`;
  datastore = path.join(sandbox.root, 'datastore');
  await mkdir(datastore, { recursive: true });
  await writeFile(
    path.join(datastore, 'clusters.json'),
    JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: HOST_UPLINK_IP, interface: 'eth0' } } }),
  );
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(containers));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
  // Uplink (sandbox.md §2, one host): host eth0 192.0.2.11 ↔ client eth0 192.0.2.99.
  await execa('ip', ['netns', 'add', clientNs]);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
  await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
  await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
  await sandbox.ip('addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'eth0');
  await sandbox.ip('link', 'set', 'eth0', 'up');
  await execa('ip', ['-n', clientNs, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);

  const apply = await sc('apply');
  if (apply.exitCode !== 0) throw new Error(`first apply failed: ${apply.stdout}\n${apply.stderr}`);
}, 300_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(sandbox.root), 20_000);
  } finally {
    await sandbox.destroy();
    if (clientNs) await execa('ip', ['netns', 'del', clientNs], { reject: false });
  }
}, 60_000);

interface DriftCase {
  readonly name: string;
  readonly inject: () => Promise<void>;
  /** What `sc diff` lists afterwards (action kind/id, sorted). */
  readonly plan: string[];
  /** Containers the repair restarts; every other one keeps its pids. */
  readonly restarted?: Name[];
}

const cases: DriftCase[] = [
  {
    name: 'a user bridge deleted',
    inject: () => sandbox.ip('link', 'del', 'sc-17-1'),
    plan: ['create bridge/sc-17-1', 'update machine/ua1.test', 'update machine/ua2.test'],
  },
  {
    name: 'a user bridge set down',
    inject: () => sandbox.ip('link', 'set', 'sc-17-1', 'down'),
    plan: ['update bridge/sc-17-1'],
  },
  {
    name: 'a container veth detached from its bridge (nomaster)',
    inject: async () => sandbox.ip('link', 'set', await vethOf('ua1.test'), 'nomaster'),
    plan: ['update machine/ua1.test'],
  },
  {
    name: 'a container veth set down',
    inject: async () => sandbox.ip('link', 'set', await vethOf('ub1.test'), 'down'),
    plan: ['update machine/ub1.test'],
  },
  {
    name: 'a container veth deleted',
    inject: async () => sandbox.ip('link', 'del', await vethOf('ua2.test')),
    plan: ['create container-address/ua2.test', 'replace machine/ua2.test'],
    restarted: ['ua2.test'],
  },
  {
    name: "host0's address flushed from inside",
    inject: async () => void (await inContainer('ua1.test', 'ip', 'addr', 'flush', 'dev', 'host0')),
    plan: ['update container-address/ua1.test'],
  },
  {
    name: "the container's default route deleted from inside",
    inject: async () => void (await inContainer('ub1.test', 'ip', 'route', 'del', 'default')),
    plan: ['update container-address/ub1.test'],
  },
  {
    name: 'the nft port-map table deleted',
    inject: async () => void (await execa('ip', ['netns', 'exec', sandbox.netns, 'nft', 'delete', 'table', 'ip', 'srvctl'])),
    plan: ['create port-map/srvctl'],
  },
  {
    name: "a mapped port's rule removed",
    inject: async () =>
      void (await execa('ip', ['netns', 'exec', sandbox.netns, 'nft', 'delete', 'element', 'ip', 'srvctl', 'tcp_ports', `{ ${MAPPED_PORT} }`])),
    plan: ['update port-map/srvctl'],
  },
  {
    name: 'IPv4 forwarding switched off',
    inject: async () => void (await execa('ip', ['netns', 'exec', sandbox.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0'])),
    plan: ['update sysctl/net.ipv4.ip_forward'],
  },
];

describe('network drift: one apply repairs it and every site answers', () => {
  it('starts from a converged host whose sites all answer', async () => {
    expect(await sitesAnswer()).toEqual(Array(NAMES.length * 2 + 1).fill('ok'));
    expect((await sc('diff')).exitCode).toBe(0);
  }, 120_000);

  it.each(cases.map((c) => [c.name, c] as const))(
    '%s',
    async (_name, drift) => {
      const before = await pids();
      await drift.inject();

      const planned = await diffChanges();
      expect(planned).toEqual({ exitCode: 2, changes: drift.plan });

      const apply = await sc('apply');
      expect({ exit: apply.exitCode, stderr: apply.stderr }).toEqual({ exit: 0, stderr: '' });
      // apply itself checked that the containers answer (waiting for the repaired ones).
      expect(apply.stdout).toMatch(/All 3 running containers answer/);
      expect(await sitesAnswer()).toEqual(Array(NAMES.length * 2 + 1).fill('ok'));

      const after = await pids();
      for (const name of NAMES) {
        if (drift.restarted?.includes(name)) expect({ name, restarted: after[name] !== before[name] }).toEqual({ name, restarted: true });
        else expect({ name, pids: after[name] }).toEqual({ name, pids: before[name] });
      }
      const again = await sc('diff');
      expect({ exit: again.exitCode, out: again.stdout }).toEqual({ exit: 0, out: expect.stringContaining('No changes') });
    },
    600_000,
  );
});

interface StatusJson {
  in_sync: boolean;
  health: { healthy: boolean; summary: string; not_answering: string[]; running: number };
  containers: { name: string; answers: boolean | null; answer: string | null }[];
}

describe('status and apply never claim health they did not see', () => {
  const ignorePings = async (name: Name, on: boolean) =>
    void (await inContainer(name, 'sysctl', '-qw', `net.ipv4.icmp_echo_ignore_all=${on ? 1 : 0}`));

  it('healthy: in sync and every running container answers; --check exits 0', async () => {
    const check = await sc('status', '--check');
    expect(check.exitCode).toBe(0);
    expect(check.stdout).toContain('In sync with the datastore; all 3 running containers answer.');
    const body = JSON.parse((await sc('-o', 'json', 'status')).stdout) as StatusJson;
    expect(body.health).toMatchObject({ healthy: true, summary: 'in sync', not_answering: [], running: 3 });
  }, 120_000);

  it('a container that stops answering (something sc does not manage) is named; --check exits 2; apply and the metrics say so', async () => {
    await ignorePings('ua1.test', true);
    try {
      const text = await sc('status');
      expect(text.exitCode).toBe(0);
      expect(text.stdout).toContain('In sync, 1 of 3 running containers not answering: ua1.test.');
      expect(text.stdout).toMatch(/ua1\.test\s+10\.17\.1\.20\s+running\s+no\s/);
      expect((await sc('status', '--check')).exitCode).toBe(2);

      const body = JSON.parse((await sc('-o', 'json', 'status', '--check')).stdout) as StatusJson;
      expect(body.in_sync).toBe(true);
      expect(body.health).toMatchObject({
        healthy: false,
        not_answering: ['ua1.test'],
        summary: 'in sync, 1 of 3 running containers not answering: ua1.test',
      });
      expect(body.containers.find((c) => c.name === 'ua1.test')).toMatchObject({ answers: false, answer: 'no' });

      const apply = await sc('apply');
      expect(apply.exitCode).toBe(0);
      expect(apply.stdout).toContain('Warning: 1 of 3 running containers not answering: ua1.test');

      const pass = await sc('reconcile', '--once');
      expect(pass.exitCode).toBe(0);
      const metrics = await readFile(path.join(sandbox.root, 'var/lib/srvctl/metrics/srvctl.prom'), 'utf8');
      expect(metrics).toContain('srvctl_container_answering{container="ua1.test"} 0\n');
      expect(metrics).toContain('srvctl_container_answering{container="ub1.test"} 1\n');
      expect(metrics).toContain('srvctl_containers_not_answering 1\n');
    } finally {
      await ignorePings('ua1.test', false);
    }
    expect((await sc('status', '--check')).exitCode).toBe(0);
  }, 600_000);

  it('out of sync: --check exits 2 until an apply repairs it', async () => {
    await sandbox.ip('link', 'del', 'sc-17-2');
    const check = await sc('status', '--check');
    expect(check.exitCode).toBe(2);
    expect((await sc('apply')).exitCode).toBe(0);
    expect((await sc('status', '--check')).exitCode).toBe(0);
    expect((await sc('diff')).exitCode).toBe(0);
  }, 600_000);
});
