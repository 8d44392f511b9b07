// The user VPN end to end (issue 18): two hosts of one cluster on a TEST-NET underlay and a third
// namespace as a user's device. The device makes its key and request with the command sc prints,
// the administrator stores the request, the cluster CA's key signs it (by hand here: the CA flow
// for client requests is not in sc yet), and the device's OpenVPN client runs with the config
// `sc vpn-config` printed. It gets .201 of its user's /24, reaches its user's containers on this
// host and over the mesh on the other, and nothing else; a host certificate is refused as a client.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, type Underlay } from './vpn-underlay.js';
import { underlayIp } from './vpn-underlay.js';

const HOSTS = ['h1.test', 'h2.test'] as const;
const users = { ua: { reseller: 'root', user_id: 1, uid: 31001 }, ub: { reseller: 'root', user_id: 2, uid: 31002 } };
const containers = {
  'a1.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: '10.16.1.20' },
  'a2.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.32.1.20' },
  'b1.test': { user: 'ub', host: 'h1.test', type: 'busybox', ip: '10.16.2.20' },
};

const boxes: Sandbox[] = [];
let underlay: Underlay | undefined;
let datastore: string;
let device: string;
const outputs: string[] = [];
const clientPids: number[] = [];

const sc = async (i: number, ...args: string[]) => {
  const result = await (boxes[i] as Sandbox).runSc(['--datastore', datastore, '--host', HOSTS[i] as string, ...args], { timeoutMs: 240_000 });
  outputs.push(result.stdout, result.stderr);
  return result;
};
const client = () => boxes[2] as Sandbox;
// Without the caller's NOTIFY_SOCKET (set in a container): openvpn --daemon would not fork while it can notify.
const inClient = (...args: string[]) =>
  execa('ip', ['netns', 'exec', client().netns, ...args], { reject: false, cwd: device, timeout: 30_000, env: { NOTIFY_SOCKET: undefined } });

async function reaches(address: string): Promise<boolean> {
  return (await inClient('ping', '-c', '1', '-W', '1', address)).exitCode === 0;
}
async function eventually(check: () => Promise<boolean>, attempts = 30): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

beforeAll(async () => {
  for (let i = 0; i < 3; i++) boxes.push(await createSandbox());
  datastore = path.join((boxes[0] as Sandbox).root, 'datastore');
  device = path.join(client().root, 'device');
  await mkdir(datastore, { recursive: true });
  await mkdir(device, { recursive: true });
  const cluster = Object.fromEntries(
    HOSTS.map((h, i) => [h, { hostnet: i + 1, host_ip: underlayIp(i + 1), interface: 'eth0', ...(i === 0 ? { ca: true } : {}) }]),
  );
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: cluster }, null, 2));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users, null, 2));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(containers, null, 2));
  await writeFile(
    path.join(datastore, 'settings.json'),
    JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } }, user_vpn: { port: 1300 } }),
  );
  underlay = await createUnderlay(boxes);
}, 60_000);

afterAll(async () => {
  for (const pid of clientPids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  await destroyVpnFarm(boxes, underlay);
}, 120_000);

async function startClient(name: string, config: string): Promise<{ log: string }> {
  await writeFile(path.join(device, `${name}.ovpn`), config);
  const log = path.join(device, `${name}.log`);
  const pidFile = path.join(device, `${name}.pid`);
  const started = await inClient('openvpn', '--config', `${name}.ovpn`, '--daemon', `uvpn-${name}`, '--writepid', pidFile, '--log', log);
  expect(started.exitCode).toBe(0);
  // openvpn writes its pid file once it has daemonized (possibly after the parent returned) and
  // removes it when it exits (a refused client exits at once): track it if it is there.
  let pid = 0;
  const exited = async () =>
    /Exiting due to fatal error|SIGTERM\[soft,auth-failure\]|process exiting/.test(await readFile(log, 'utf8').catch(() => ''));
  await eventually(async () => (pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim())) > 0 || (await exited()), 20);
  if (pid > 0) {
    clientPids.push(pid);
    client().track(pid);
  }
  return { log };
}

describe('user VPN (two hosts and a device)', () => {
  it('the device makes its key and request with the printed command; the request is stored; the hosts converge; a second diff is clean', async () => {
    expect((await sc(0, 'add-vpn-client', 'ua', 'laptop')).exitCode).toBe(0);
    const printed = await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop');
    expect(printed.exitCode).toBe(0);
    const { openssl_command: openssl } = JSON.parse(printed.stdout) as { openssl_command: string[] };
    const made = await execa(openssl[0] as string, openssl.slice(1), { cwd: device, reject: false });
    expect(made.exitCode).toBe(0);
    expect((await sc(0, 'add-vpn-client', 'ua', 'laptop', '--csr', path.join(device, 'ua@laptop.csr'))).exitCode).toBe(0);
    for (let round = 0; round < 3; round++) {
      const results = [await sc(0, 'apply'), await sc(1, 'apply')];
      if (results.every((r) => r.exitCode === 0)) break;
    }
    for (const i of [0, 1]) expect((await sc(i, 'diff')).exitCode).toBe(0);
    // h1 serves ua's device (ua has containers there); so does h2.
    expect(await readdir(path.join((boxes[0] as Sandbox).root, 'etc/openvpn/srvctl/scu-1.ccd'))).toEqual(['ua@laptop']);
    expect(await readdir(path.join((boxes[1] as Sandbox).root, 'etc/openvpn/srvctl/scu-2.ccd'))).toEqual(['ua@laptop']);
  }, 900_000);

  it('with a certificate from the cluster CA, the device gets .201 of its /24 and reaches its own containers here and over the mesh, nothing else', async () => {
    const pki = path.join((boxes[0] as Sandbox).root, 'etc/srvctl/pki');
    await writeFile(
      path.join(device, 'client.ext'),
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyAgreement\nextendedKeyUsage=clientAuth\n',
    );
    const signed = await execa(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        'ua@laptop.csr',
        '-CA',
        path.join(pki, 'ca.crt'),
        '-CAkey',
        path.join(pki, 'ca.key'),
        '-set_serial',
        '0x77',
        '-days',
        '30',
        '-sha256',
        '-extfile',
        'client.ext',
        '-out',
        'ua@laptop.crt',
      ],
      { cwd: device, reject: false },
    );
    expect(signed.exitCode).toBe(0);
    const printed = JSON.parse((await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop')).stdout) as {
      ca_published: boolean;
      hosts: { host: string; address: string; port: number; config: string }[];
    };
    expect(printed.ca_published).toBe(true);
    expect(printed.hosts.map((h) => [h.host, h.address, h.port])).toEqual([
      ['h1.test', '10.16.1.201', 1300],
      ['h2.test', '10.32.1.201', 1300],
    ]);
    await startClient('laptop', printed.hosts[0]?.config as string);
    expect(await eventually(async () => JSON.stringify(await client().ipJson('addr', 'show')).includes('10.16.1.201'), 60)).toBe(true);
    expect(await eventually(() => reaches('10.16.1.20'))).toBe(true);
    const page = await inClient('curl', '-s', '-m', '5', 'http://10.16.1.20/');
    expect(page.stdout).toContain('hello from a1');
    expect(await eventually(() => reaches('10.32.1.20'))).toBe(true);
    expect((await inClient('curl', '-s', '-m', '5', 'http://10.32.1.20/')).stdout).toContain('hello from a2');
    // Another user's container (routed into the tunnel by hand, as a device could), and the host itself through the tunnel: refused.
    expect((await inClient('ip', 'route', 'add', '10.16.2.0/24', 'dev', 'tun0')).exitCode).toBe(0);
    expect(await reaches('10.16.2.20')).toBe(false);
    expect((await inClient('curl', '-s', '-m', '3', 'http://10.16.2.20/')).exitCode).not.toBe(0);
    expect(await reaches('10.16.1.1')).toBe(false);
    expect(await reaches('10.0.1.1')).toBe(false);
  }, 240_000);

  it('sc status shows the connected device with its address (from the server status file)', async () => {
    type Status = {
      user_vpn: {
        device: string;
        running: boolean;
        devices: string[];
        connected: { common_name: string; address: string; connected_since: string | null }[];
      } | null;
    };
    let status: Status | undefined;
    // openvpn rewrites its status file every 10 s.
    const seen = await eventually(async () => {
      status = JSON.parse((await sc(0, '-o', 'json', 'status')).stdout) as Status;
      return status.user_vpn?.connected.some((c) => c.common_name === 'ua@laptop') === true;
    }, 40);
    expect(seen).toBe(true);
    expect(status?.user_vpn).toMatchObject({ device: 'scu-1', running: true, devices: ['ua@laptop'] });
    expect(status?.user_vpn?.connected.find((c) => c.common_name === 'ua@laptop')).toMatchObject({
      address: '10.16.1.201',
      connected_since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
    });
    expect((await sc(0, 'status')).stdout).toMatch(/User VPN: scu-1 running, 1 device\(s\), 1 connected\n.*\n\s*ua@laptop\s+10\.16\.1\.201/);
  }, 120_000);

  it("a host's certificate used as a client is refused (no client-config-dir file for its name)", async () => {
    const h2Pki = path.join((boxes[1] as Sandbox).root, 'etc/srvctl/pki');
    const printed = JSON.parse((await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop')).stdout) as { hosts: { config: string }[] };
    const config = (printed.hosts[0]?.config as string)
      .replace('cert ua@laptop.crt', `cert ${path.join(h2Pki, 'host.crt')}`)
      .replace('key ua@laptop.key', `key ${path.join(h2Pki, 'host.key')}`);
    const { log } = await startClient('impostor', config);
    expect(await eventually(async () => (await readFile(log, 'utf8').catch(() => '')).includes('AUTH_FAILED'), 60)).toBe(true);
    const serverLog = await readFile(path.join((boxes[0] as Sandbox).root, 'run/srvctl/openvpn/scu-1.log'), 'utf8');
    expect(serverLog).toMatch(/client-config-dir authentication failed for common name 'h2\.test'/);
  }, 120_000);

  it('tamper: a deleted filter rule and an edited client file are repaired by the next apply', async () => {
    const h1 = boxes[0] as Sandbox;
    await execa('ip', ['netns', 'exec', h1.netns, 'nft', 'flush', 'chain', 'inet', 'srvctl_user_vpn', 'forward']);
    expect(await eventually(() => reaches('10.16.2.20'), 4)).toBe(true); // the filter is really gone
    await writeFile(path.join(h1.root, 'etc/openvpn/srvctl/scu-1.ccd/ua@laptop'), 'ifconfig-push 10.16.2.201 10.0.1.1\n');
    expect((await sc(0, 'diff')).exitCode).toBe(2);
    expect((await sc(0, 'apply')).exitCode).toBe(0);
    expect((await sc(0, 'diff')).exitCode).toBe(0);
    expect(await reaches('10.16.2.20')).toBe(false);
    expect(await reaches('10.16.1.20')).toBe(true);
    expect(await readFile(path.join(h1.root, 'etc/openvpn/srvctl/scu-1.ccd/ua@laptop'), 'utf8')).toContain('ifconfig-push 10.16.1.201 10.0.1.1');
  }, 240_000);

  it("a removed device's traffic stops at the next apply; no private key in the datastore or any sc output", async () => {
    expect((await sc(0, 'remove-vpn-client', 'ua', 'laptop')).exitCode).toBe(0);
    for (const i of [0, 1]) {
      expect((await sc(i, 'apply')).exitCode).toBe(0);
      expect((await sc(i, 'diff')).exitCode).toBe(0);
    }
    expect(await reaches('10.16.1.20')).toBe(false);
    const key = await readFile(path.join(device, 'ua@laptop.key'), 'utf8');
    const secret = key.split('\n')[1] as string;
    const stored = await Promise.all(
      (await readdir(datastore)).filter((f) => f.endsWith('.json')).map((f) => readFile(path.join(datastore, f), 'utf8')),
    );
    for (const text of [...stored, ...outputs]) {
      expect(text).not.toContain('PRIVATE KEY');
      expect(text).not.toContain(secret);
    }
  }, 240_000);
});
