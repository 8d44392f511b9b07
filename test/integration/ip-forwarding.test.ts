// sc turns IPv4 forwarding on in the host's namespace (and persists it in an sc drop-in) when the
// host has containers; it repairs it when switched off by hand, and a second diff is clean.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'fw1.example.net';
let sandbox: Sandbox;
let datastore: string;

const forwarding = async (): Promise<string> =>
  (await execa('ip', ['netns', 'exec', sandbox.netns, 'sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim();

beforeAll(async () => {
  sandbox = await createSandbox();
  await execa('ip', ['netns', 'exec', sandbox.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  datastore = await mkdtemp(path.join(tmpdir(), `${sandbox.prefix}-ds-`));
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ lab: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } }));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify({ alice: { reseller: 'root', user_id: 1, uid: 1001 } }));
  await writeFile(
    path.join(datastore, 'containers.json'),
    JSON.stringify({ 'a.example.com': { user: 'alice', host: HOST, type: 'busybox', ip: '10.16.1.20', enabled: false } }),
  );
});

afterAll(async () => {
  await sandbox?.destroy();
  if (datastore) await rm(datastore, { recursive: true, force: true });
});

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args]);

test('apply turns forwarding on and persists it; drift is repaired; a second diff is clean', async () => {
  expect(await forwarding()).toBe('0');
  const plan = await sc('-o', 'json', 'diff', '--target', 'sysctl');
  expect(plan.exitCode).toBe(2);
  expect(JSON.parse(plan.stdout).changes).toEqual([expect.objectContaining({ action: 'create', kind: 'sysctl', id: 'net.ipv4.ip_forward' })]);

  expect((await sc('apply', '--target', 'sysctl')).exitCode).toBe(0);
  expect(await forwarding()).toBe('1');
  expect(await readFile(path.join(sandbox.root, 'etc/sysctl.d/90-srvctl.conf'), 'utf8')).toContain('net.ipv4.ip_forward = 1');
  expect((await sc('diff', '--target', 'sysctl')).exitCode).toBe(0);

  await execa('ip', ['netns', 'exec', sandbox.netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  const drift = await sc('-o', 'json', 'diff', '--target', 'sysctl');
  expect(drift.exitCode).toBe(2);
  expect(JSON.parse(drift.stdout).changes).toEqual([
    expect.objectContaining({
      action: 'update',
      id: 'net.ipv4.ip_forward',
      reasons: [expect.objectContaining({ path: '/value', old: '0', new: '1' })],
    }),
  ]);
  expect((await sc('apply', '--target', 'sysctl')).exitCode).toBe(0);
  expect(await forwarding()).toBe('1');
  expect((await sc('diff', '--target', 'sysctl')).exitCode).toBe(0);
});
