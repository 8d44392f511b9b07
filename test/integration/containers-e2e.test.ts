// Containers end to end through `sc` (issue 5 acceptance): 2 users × 3 busybox containers in the
// direct runtime, a TCP service in one of them reached through its mapped host port from a client
// namespace on the uplink, and `sc status` showing state, address, owner and whether each answers.
// Every container dies with its cgroup in afterAll (sandbox.md §9).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const HOST_UPLINK_IP = '192.0.2.11';
const CLIENT_IP = '192.0.2.99';

const users = {
  res1: { name: 'Reseller', reseller: 'root', reseller_id: 1, user_id: 1, uid: 31000 },
  ua: { name: 'User A', reseller: 'res1', user_id: 1, uid: 31001 },
  ub: { name: 'User B', reseller: 'res1', user_id: 2, uid: 31002 },
};
interface ContainerDoc {
  user: string;
  host: string;
  type: string;
  ip: string;
  enabled?: boolean;
  mapped_ports?: { proto: 'tcp' | 'udp'; host_port: number; container_port: number }[];
}
const containers: Record<string, ContainerDoc> = {};
for (const [user, third] of [
  ['ua', 1],
  ['ub', 2],
] as const) {
  for (let i = 1; i <= 3; i++) containers[`${user}${i}.test`] = { user, host: HOST, type: 'busybox', ip: `10.17.${third}.${19 + i}` };
}
(containers['ub2.test'] as ContainerDoc).mapped_ports = [{ proto: 'tcp', host_port: 8080, container_port: 80 }];
const NAMES = Object.keys(containers).sort();

interface StatusJson {
  in_sync: boolean;
  containers: { name: string; ip: string | null; state: string; answers: boolean | null; user: string; reseller: string; enabled: boolean }[];
}

let sandbox: Sandbox;
let datastore: string;
let clientNs: string;

async function writeDatastore(docs: Record<string, ContainerDoc>): Promise<void> {
  await mkdir(datastore, { recursive: true });
  const clusters = { test: { [HOST]: { hostnet: 1, host_ip: HOST_UPLINK_IP, interface: 'eth0' } } };
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify(clusters));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(docs));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
}

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 180_000 });

const curlFromClient = (url: string) => execa('ip', ['netns', 'exec', clientNs, 'curl', '-s', '--max-time', '3', url], { reject: false });

/** Polls until the service answers: busybox init (re)spawns httpd a moment after the machine runs. */
async function fetchWhenUp(url: string, attempts = 40): Promise<string> {
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const result = await curlFromClient(url);
    if (result.exitCode === 0) return result.stdout;
    last = `exit ${result.exitCode} ${result.stderr}`;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return `no answer from ${url}: ${last}`;
}

/** Kills every process in the cgroups this test's --root produced (and its own), then removes them. */
async function killContainers(): Promise<void> {
  const layout = detectCgroupLayout();
  for (const base of [machinesCgroupBase(sandbox.root)]) await killAndRemoveCgroup(layout, base, 20_000);
}

beforeAll(async () => {
  sandbox = await createSandbox();
  clientNs = `${sandbox.prefix}-cl`;
  datastore = path.join(sandbox.root, 'datastore');
  await writeDatastore(containers);
  // Uplink (sandbox.md §2, one host): host eth0 192.0.2.11 ↔ client eth0 192.0.2.99.
  await execa('ip', ['netns', 'add', clientNs]);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
  await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
  await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
  await sandbox.ip('addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'eth0');
  await sandbox.ip('link', 'set', 'eth0', 'up');
  await execa('ip', ['-n', clientNs, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);
}, 60_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    await killContainers();
  } finally {
    await sandbox.destroy();
    if (clientNs) await execa('ip', ['netns', 'del', clientNs], { reject: false });
  }
}, 60_000);

describe('containers end to end', () => {
  it('apply brings up six containers and the port map; a second diff finds nothing to do', async () => {
    const apply = await sc('apply');
    expect(apply.stderr).toBe('');
    expect(apply.exitCode).toBe(0);
    const diff = await sc('diff');
    expect(diff.stdout).toContain('No changes');
    expect(diff.exitCode).toBe(0);
  }, 180_000);

  it('a TCP service in a container is reachable through its mapped host port from a client namespace', async () => {
    expect(await fetchWhenUp(`http://${HOST_UPLINK_IP}:8080/`)).toContain('ub2.test');
    // A port nobody mapped is not forwarded.
    expect((await curlFromClient(`http://${HOST_UPLINK_IP}:8081/`)).exitCode).not.toBe(0);
  });

  it('status shows every container running and answering, with address, owner and reseller', async () => {
    const status = await sc('-o', 'json', 'status');
    expect(status.exitCode).toBe(0);
    const body = JSON.parse(status.stdout) as StatusJson;
    expect(body.in_sync).toBe(true);
    expect(body.containers.map((c) => [c.name, c.ip, c.state, c.answers, c.user, c.reseller])).toEqual(
      NAMES.map((name) => [name, containers[name]?.ip, 'running', true, containers[name]?.user, 'res1']),
    );

    const text = await sc('status');
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/NAME\s+IP\s+STATE\s+ANSWERS\s+OWNER\s+RESELLER/);
    expect(text.stdout).toMatch(/ub2\.test\s+10\.17\.2\.21\s+running\s+yes\s+ub\s+res1/);
  });

  it('a disabled container shows as stopped and is no longer probed; its mapped port goes away', async () => {
    await writeDatastore({ ...containers, 'ub2.test': { ...(containers['ub2.test'] as ContainerDoc), enabled: false } });
    const apply = await sc('apply');
    expect(apply.exitCode).toBe(0);
    expect((await sc('diff')).exitCode).toBe(0);

    const body = JSON.parse((await sc('-o', 'json', 'status')).stdout) as StatusJson;
    const ub2 = body.containers.find((c) => c.name === 'ub2.test');
    expect(ub2).toMatchObject({ state: 'stopped', answers: null, enabled: false });
    expect(body.containers.filter((c) => c.name !== 'ub2.test').every((c) => c.state === 'running' && c.answers === true)).toBe(true);
    const table = await execa('ip', ['netns', 'exec', sandbox.netns, 'nft', 'list', 'table', 'ip', 'srvctl']);
    expect(table.stdout).not.toContain('8080');
  }, 180_000);
});
