// The port map end to end through `sc` in a fresh namespace, without containers: a plain
// namespace on the user's bridge stands in for the container, a second one is the client on the
// uplink. Mapped ports reach the listener, egress is masqueraded, hand edits are repaired, and
// foreign nft tables are never touched.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Containers } from '../../src/datastore/model.js';
import { createDrivers } from '../../src/drivers/create-drivers.js';
import { portMapHandler } from '../../src/resources/port-map.js';
import { generateDatastore, writeDatastore, type GeneratedDatastore } from './generated-datastore.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'web1.example.net';
const CONTAINER = 'c1.res1.example.com';
const CONTAINER_IP = '10.17.1.20';
const HOST_UPLINK_IP = '192.0.2.11';
const CLIENT_IP = '192.0.2.99';
/** Only these: the container kinds (when registered) would try to build images and start machines. */
const TARGETS = ['--target', 'bridge/sc-17-1', '--target', 'port-map/srvctl'];

const FOREIGN_RULESET = `table ip filter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr 198.51.100.0/24 counter drop
  }
}
table inet other {
  set blocked { type ipv4_addr; elements = { 203.0.113.7 }; }
  chain input {
    type filter hook input priority 10; policy accept;
    ip saddr @blocked drop
  }
}
`;

interface PlanJson {
  changes: { action: string; kind: string; id: string; reasons: { path: string }[] }[];
}

describe('port-map: nft DNAT and masquerade in a namespace', () => {
  let sandbox: Sandbox;
  let datastore: string;
  let data: GeneratedDatastore;
  let containerNs: string;
  let clientNs: string;
  const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args]);
  const nsExec = (ns: string, ...args: string[]) => execa('ip', ['netns', 'exec', ns, ...args]);
  const nft = (...args: string[]) => nsExec(sandbox.netns, 'nft', ...args);
  const curl = (ns: string, url: string) => execa('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '5', url], { reject: false });
  const foreignTables = async () => (await nft('list', 'table', 'ip', 'filter')).stdout + (await nft('list', 'table', 'inet', 'other')).stdout;

  async function writeContainers(containers: Containers): Promise<void> {
    data = { ...data, containers };
    await writeDatastore(datastore, data);
  }

  /** A background process in a namespace, killed at teardown. */
  function startIn(ns: string, ...args: string[]): void {
    const child = execa('ip', ['netns', 'exec', ns, ...args], { reject: false, stdin: 'ignore' });
    if (child.pid !== undefined) sandbox.track(child.pid);
  }

  beforeAll(async () => {
    sandbox = await createSandbox();
    containerNs = `${sandbox.prefix}-c1`;
    clientNs = `${sandbox.prefix}-cl`;
    datastore = path.join(sandbox.root, 'datastore');
    data = generateDatastore({ host: HOST, hostnet: 1, resellers: 1, usersPerReseller: 1 });
    const host = data.clusters['test']?.[HOST];
    if (host) host.interface = 'eth0';
    const c1 = data.containers[CONTAINER];
    if (!c1 || c1.ip !== CONTAINER_IP) throw new Error(`generated datastore changed: ${JSON.stringify(data.containers)}`);
    c1.mapped_ports = [
      { proto: 'tcp', host_port: 8080, container_port: 80 },
      { proto: 'udp', host_port: 5353, container_port: 53 },
    ];
    await writeDatastore(datastore, data);

    // Namespaces named with the sandbox prefix; deleted in afterAll after their processes.
    for (const ns of [containerNs, clientNs]) {
      await execa('ip', ['netns', 'add', ns]);
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // Uplink: host eth0 192.0.2.11 ↔ client eth0 192.0.2.99, created directly inside the namespaces.
    await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
    await sandbox.ip('addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'eth0');
    await sandbox.ip('link', 'set', 'eth0', 'up');
    await execa('ip', ['-n', clientNs, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
    await execa('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);
    // The client knows no route to 10.0.0.0/8: only masquerade lets the "container" reach it.
    const www = path.join(sandbox.root, 'www');
    await execa('mkdir', ['-p', `${www}/c1`, `${www}/client`]);
    await writeFile(path.join(www, 'c1/index.html'), 'hello from c1\n');
    await writeFile(path.join(www, 'client/index.html'), 'hello from the client\n');
    startIn(containerNs, 'busybox', 'httpd', '-f', '-p', '80', '-h', `${www}/c1`);
    startIn(clientNs, 'busybox', 'httpd', '-f', '-p', '80', '-h', `${www}/client`);

    await execa('ip', ['netns', 'exec', sandbox.netns, 'nft', '-f', '-'], { input: FOREIGN_RULESET });
  });

  afterAll(async () => {
    await sandbox?.destroy();
    for (const ns of [containerNs, clientNs]) if (ns) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('apply creates the bridge and the table; a second diff finds nothing to do', async () => {
    const applied = await sc('apply', ...TARGETS);
    expect(applied.stderr).toBe('');
    expect(applied.exitCode).toBe(0);
    const table = (await nft('list', 'table', 'ip', 'srvctl')).stdout;
    expect(table).toContain(`8080 : ${CONTAINER_IP} . 80`);
    expect(table).toContain(`5353 : ${CONTAINER_IP} . 53`);
    expect(table).toContain('ip saddr 10.16.0.0/12 oifname "eth0" masquerade');
    const diff = await sc('diff', ...TARGETS);
    expect(diff.exitCode).toBe(0);

    // The stand-in container joins the bridge sc made (it is not sc's business how it got there).
    await execa('ip', ['link', 'add', `${sandbox.prefix}v`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'host0', 'netns', containerNs]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}v`, 'master', 'sc-17-1', 'up');
    await execa('ip', ['-n', containerNs, 'addr', 'add', `${CONTAINER_IP}/24`, 'dev', 'host0']);
    await execa('ip', ['-n', containerNs, 'link', 'set', 'host0', 'up']);
    await execa('ip', ['-n', containerNs, 'route', 'add', 'default', 'via', '10.17.1.1']);
  });

  it('a client on the uplink reaches the service through the mapped host port', async () => {
    const viaMap = await curl(clientNs, `http://${HOST_UPLINK_IP}:8080/`);
    expect(viaMap.stdout).toBe('hello from c1');
    // Unmapped ports are not forwarded.
    const unmapped = await curl(clientNs, `http://${HOST_UPLINK_IP}:8081/`);
    expect(unmapped.exitCode).not.toBe(0);
  });

  it('the host itself reaches it through its own address (output-hook DNAT)', async () => {
    const local = await curl(sandbox.netns, `http://${HOST_UPLINK_IP}:8080/`);
    expect(local.stdout).toBe('hello from c1');
  });

  it('container egress out of the uplink is masqueraded', async () => {
    const out = await curl(containerNs, `http://${CLIENT_IP}/`);
    expect(out.stdout).toBe('hello from the client');
  });

  it('a hand edit of the table shows in diff and apply repairs it; foreign tables stay as they were', async () => {
    const foreignBefore = await foreignTables();
    await nft('delete', 'element', 'ip', 'srvctl', 'tcp_ports', '{ 8080 }');
    await nft('add', 'rule', 'ip', 'srvctl', 'postrouting', 'ip', 'saddr', '192.168.9.0/24', 'accept');
    const diff = await sc('-o', 'json', 'diff', ...TARGETS);
    expect(diff.exitCode).toBe(2);
    const plan = JSON.parse(diff.stdout) as PlanJson;
    expect(plan.changes.map((c) => `${c.action} ${c.kind}/${c.id}`)).toEqual(['update port-map/srvctl']);
    expect(new Set(plan.changes[0]?.reasons.map((r) => r.path.split('/')[1]))).toEqual(new Set(['tcp', 'other']));

    const applied = await sc('apply', ...TARGETS);
    expect(applied.exitCode).toBe(0);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
    expect((await curl(clientNs, `http://${HOST_UPLINK_IP}:8080/`)).stdout).toBe('hello from c1');
    expect(await foreignTables()).toBe(foreignBefore);
  });

  it('a changed mapping updates the table; no enabled container removes it; foreign tables are untouched', async () => {
    const foreignBefore = await foreignTables();
    const c1 = data.containers[CONTAINER];
    if (!c1) throw new Error('no container');
    await writeContainers({ [CONTAINER]: { ...c1, mapped_ports: [{ proto: 'tcp', host_port: 9090, container_port: 80 }] } });
    expect((await sc('apply', ...TARGETS)).exitCode).toBe(0);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
    expect((await curl(clientNs, `http://${HOST_UPLINK_IP}:9090/`)).stdout).toBe('hello from c1');
    expect((await curl(clientNs, `http://${HOST_UPLINK_IP}:8080/`)).exitCode).not.toBe(0);
    expect((await nft('list', 'table', 'ip', 'srvctl')).stdout).not.toContain('5353');

    await writeContainers({ [CONTAINER]: { ...c1, enabled: false } });
    const disabled = await sc('-o', 'json', 'diff', '--target', 'port-map/srvctl');
    expect((JSON.parse(disabled.stdout) as PlanJson).changes.map((c) => `${c.action} ${c.kind}/${c.id}`)).toEqual(['delete port-map/srvctl']);

    // Applied without --target (a target that the apply deletes cannot be re-checked afterwards):
    // with the container moved to another host nothing at all is desired here any more, which the
    // prune guardrail lets through only when asked to.
    data.clusters['other'] = { 'web2.example.net': { hostnet: 2, host_ip: '192.0.2.12' } };
    await writeContainers({ [CONTAINER]: { ...c1, host: 'web2.example.net', ip: '10.33.1.20' } });
    const removed = await sc('apply', '--allow-mass-delete');
    expect({ exitCode: removed.exitCode, stderr: removed.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect((await sc('diff')).exitCode).toBe(0);
    const tables = (await nft('list', 'tables')).stdout;
    expect(tables).not.toContain('table ip srvctl');
    expect(await foreignTables()).toBe(foreignBefore);
  });

  it("the port map's delete succeeds where the table is already gone, and touches nothing else", async () => {
    const before = (await nft('list', 'ruleset')).stdout;
    expect(before).not.toContain('table ip srvctl');
    await portMapHandler.delete(createDrivers({ root: sandbox.root, netns: sandbox.netns }));
    expect((await nft('list', 'ruleset')).stdout).toBe(before);
  });
});
