// The user VPN end to end (issue 18): two hosts of one cluster on a TEST-NET underlay and two more
// namespaces as a user's devices. The laptop makes its key and request with the command sc prints
// and the administrator stores the request; the phone's key and request are made by
// `sc add-vpn-client … --out FILE`. The CA host signs both on its apply and publishes them through
// the datastore (a git work tree here), and each device's OpenVPN client runs with the config sc
// gave it. A device gets .201/.202 of its user's /24, reaches its user's containers on this host and
// over the mesh on the other, and nothing else. Refused: a host certificate as a client, a device
// certificate as a host peer, and a removed (revoked) device — whose live session is dropped at
// the next apply while the other device stays connected.
import { X509Certificate } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, type Underlay } from './vpn-underlay.js';
import { underlayIp } from './vpn-underlay.js';
import { normalSerial } from '../../src/drivers/openssl.js';

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
let phoneDir: string;
const outputs: string[] = [];
const clientPids: number[] = [];

const sc = async (i: number, ...args: string[]) => {
  const result = await (boxes[i] as Sandbox).runSc(['--datastore', datastore, '--host', HOSTS[i] as string, ...args], { timeoutMs: 240_000 });
  outputs.push(result.stdout, result.stderr);
  return result;
};
const client = () => boxes[2] as Sandbox;
const phone = () => boxes[3] as Sandbox;
// Without the caller's NOTIFY_SOCKET (set in a container): openvpn --daemon would not fork while it can notify.
const inClient = (...args: string[]) =>
  execa('ip', ['netns', 'exec', client().netns, ...args], { reject: false, cwd: device, timeout: 30_000, env: { NOTIFY_SOCKET: undefined } });
const inPhone = (...args: string[]) =>
  execa('ip', ['netns', 'exec', phone().netns, ...args], { reject: false, cwd: phoneDir, timeout: 30_000, env: { NOTIFY_SOCKET: undefined } });
const git = (...args: string[]) => execa('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args], { cwd: datastore });

async function reaches(address: string, inBox = inClient): Promise<boolean> {
  return (await inBox('ping', '-c', '1', '-W', '1', address)).exitCode === 0;
}
async function applyAll(): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const results = [await sc(0, 'apply'), await sc(1, 'apply')];
    if (results.every((r) => r.exitCode === 0)) break;
  }
  for (const i of [0, 1]) {
    expect((await sc(i, 'apply')).exitCode).toBe(0);
    expect((await sc(i, 'diff')).exitCode).toBe(0);
  }
}
type UserVpnStatus = {
  user_vpn: {
    device: string;
    running: boolean;
    devices: string[];
    connected: { common_name: string; address: string; connected_since: string | null }[];
  } | null;
};
const connectedNames = async (i: number): Promise<string[]> =>
  ((JSON.parse((await sc(i, '-o', 'json', 'status')).stdout) as UserVpnStatus).user_vpn?.connected ?? []).map((c) => c.common_name);
const serverPid = async (i: number): Promise<number> =>
  Number((await readFile(path.join((boxes[i] as Sandbox).root, `run/srvctl/openvpn/scu-${i + 1}.pid`), 'utf8')).trim());
const log = (file: string) => readFile(file, 'utf8').catch(() => '');
async function eventually(check: () => Promise<boolean>, attempts = 30): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

beforeAll(async () => {
  for (let i = 0; i < 4; i++) boxes.push(await createSandbox());
  datastore = path.join((boxes[0] as Sandbox).root, 'datastore');
  device = path.join(client().root, 'device');
  phoneDir = path.join(phone().root, 'device');
  await mkdir(datastore, { recursive: true });
  await mkdir(device, { recursive: true });
  await mkdir(phoneDir, { recursive: true });
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
  // A git work tree: every edit and every PKI publication is a commit.
  await git('init', '-q', '-b', 'main');
  await git('add', '-A');
  await git('commit', '-q', '-m', 'initial datastore');
  underlay = await createUnderlay(boxes);
}, 180_000);

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

async function startClient(
  name: string,
  config: string | undefined,
  inBox = inClient,
  dir = device,
  box = client(),
): Promise<{ log: string; pid: number }> {
  if (config !== undefined) await writeFile(path.join(dir, `${name}.ovpn`), config);
  const log = path.join(dir, `${name}.log`);
  const pidFile = path.join(dir, `${name}.pid`);
  const started = await inBox('openvpn', '--config', `${name}.ovpn`, '--daemon', `uvpn-${name}`, '--writepid', pidFile, '--log', log);
  expect(started.exitCode).toBe(0);
  // openvpn writes its pid file once it has daemonized (possibly after the parent returned) and
  // removes it when it exits (a refused client exits at once): track it if it is there.
  let pid = 0;
  const exited = async () =>
    /Exiting due to fatal error|SIGTERM\[soft,auth-failure\]|process exiting/.test(await readFile(log, 'utf8').catch(() => ''));
  await eventually(async () => (pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim())) > 0 || (await exited()), 20);
  if (pid > 0) {
    clientPids.push(pid);
    box.track(pid);
  }
  return { log, pid };
}

const CLIENT_EKU = '2.25.207923315947470735416327185409620374617';
const h1Log = () => path.join((boxes[0] as Sandbox).root, 'run/srvctl/openvpn/scu-1.log');

describe('user VPN (two hosts and two devices)', () => {
  it('the laptop stores a request made with the printed command, the phone gets a profile from --out; the CA host signs both on apply; a second diff is clean', async () => {
    expect((await sc(0, 'add-vpn-client', 'ua', 'laptop')).exitCode).toBe(0);
    const printed = await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop');
    expect(printed.exitCode).toBe(0);
    const { openssl_command: openssl } = JSON.parse(printed.stdout) as { openssl_command: string[] };
    const made = await execa(openssl[0] as string, openssl.slice(1), { cwd: device, reject: false });
    expect(made.exitCode).toBe(0);
    expect((await sc(0, 'add-vpn-client', 'ua', 'laptop', '--csr', path.join(device, 'ua@laptop.csr'))).exitCode).toBe(0);

    const profile = path.join(phoneDir, 'phone.ovpn');
    const added = await sc(0, 'add-vpn-client', 'ua', 'phone', '--out', profile);
    expect(added.exitCode).toBe(0);
    expect(added.stdout).toContain(`sc vpn-config ua phone --update ${profile}`);
    expect((await stat(profile)).mode & 0o777).toBe(0o600);
    const first = await readFile(profile, 'utf8');
    expect(first).toContain('<key>\n-----BEGIN PRIVATE KEY-----');
    expect(first).toContain('NOT READY');
    // Never over an existing file.
    const again = await sc(0, 'add-vpn-client', 'ua', 'tablet', '--out', profile);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain('exists');
    expect(await readFile(profile, 'utf8')).toBe(first);

    await applyAll();
    // The CA host signed both as device certificates: clientAuth and the user VPN EKU, never serverAuth.
    for (const cn of ['ua@laptop', 'ua@phone']) {
      const cert = new X509Certificate(await readFile(path.join(datastore, 'pki/clients', `${cn}.crt`)));
      expect(cert.subject).toBe(`CN=${cn}`);
      expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2', CLIENT_EKU]);
    }
    expect((await git('log', '--format=%s')).stdout).toMatch(/publish .*pki\/clients\/ua@laptop\.crt/);
    expect(await readdir(path.join((boxes[0] as Sandbox).root, 'etc/openvpn/srvctl/scu-1.ccd'))).toEqual(['ua@laptop', 'ua@phone']);
    expect(await readdir(path.join((boxes[1] as Sandbox).root, 'etc/openvpn/srvctl/scu-2.ccd'))).toEqual(['ua@laptop', 'ua@phone']);
    // The phone's profile gets its certificate; the key stays as it was.
    const updated = await sc(0, 'vpn-config', 'ua', 'phone', '--update', profile);
    expect(updated.exitCode).toBe(0);
    expect(updated.stdout).toContain('ready');
    const ready = await readFile(profile, 'utf8');
    expect(ready).not.toContain('NOT READY');
    expect(ready).toContain('<cert>');
    expect(ready.slice(ready.indexOf('<key>'))).toBe(first.slice(first.indexOf('<key>')));
    expect((await stat(profile)).mode & 0o777).toBe(0o600);
  }, 900_000);

  it('with the certificate from the CA flow, the laptop gets .201 of its /24 and reaches its own containers here and over the mesh, nothing else', async () => {
    const printed = JSON.parse((await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop')).stdout) as {
      ca_published: boolean;
      certificate_published: boolean;
      hosts: { host: string; address: string; port: number; config: string }[];
    };
    expect(printed.ca_published).toBe(true);
    expect(printed.certificate_published).toBe(true);
    expect(printed.hosts.map((h) => [h.host, h.address, h.port])).toEqual([
      ['h1.test', '10.16.1.201', 1300],
      ['h2.test', '10.32.1.201', 1300],
    ]);
    await startClient('laptop', printed.hosts[0]?.config);
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

  it('the phone connects with the profile --out wrote (key inline) and gets .202', async () => {
    await startClient('phone', undefined, inPhone, phoneDir, phone());
    expect(await eventually(async () => JSON.stringify(await phone().ipJson('addr', 'show')).includes('10.16.1.202'), 60)).toBe(true);
    expect(await eventually(() => reaches('10.16.1.20', inPhone))).toBe(true);
  }, 120_000);

  it('sc status shows the connected devices with their addresses', async () => {
    let status: UserVpnStatus | undefined;
    const seen = await eventually(async () => {
      status = JSON.parse((await sc(0, '-o', 'json', 'status')).stdout) as UserVpnStatus;
      return ['ua@laptop', 'ua@phone'].every((cn) => status?.user_vpn?.connected.some((c) => c.common_name === cn));
    }, 40);
    expect(seen).toBe(true);
    expect(status?.user_vpn).toMatchObject({ device: 'scu-1', running: true, devices: ['ua@laptop', 'ua@phone'] });
    expect(status?.user_vpn?.connected.find((c) => c.common_name === 'ua@laptop')).toMatchObject({
      address: '10.16.1.201',
      connected_since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
    });
    expect((await sc(0, 'status')).stdout).toMatch(/User VPN: scu-1 running, 2 device\(s\), 2 connected\n.*\n\s*ua@laptop\s+10\.16\.1\.201/);
  }, 120_000);

  it("a host's certificate used as a client is refused by the server's EKU check", async () => {
    const h2Pki = path.join((boxes[1] as Sandbox).root, 'etc/srvctl/pki');
    const printed = JSON.parse((await sc(0, '-o', 'json', 'vpn-config', 'ua', 'laptop')).stdout) as { hosts: { config: string }[] };
    const config = (printed.hosts[0]?.config as string)
      .replace(/<cert>[\s\S]*<\/cert>/, `cert ${path.join(h2Pki, 'host.crt')}`)
      .replace('key ua@laptop.key', `key ${path.join(h2Pki, 'host.key')}`);
    const before = (await log(h1Log())).length;
    await startClient('impostor', config);
    expect(await eventually(async () => /VERIFY EKU ERROR/.test((await log(h1Log())).slice(before)), 60)).toBe(true);
    expect((await log(h1Log())).slice(before)).not.toMatch(/h2\.test.*Peer Connection Initiated/);
  }, 120_000);

  it("a device's certificate used as a host peer is refused by the mesh (h1 expects h2's host certificate)", async () => {
    const h2 = boxes[1] as Sandbox;
    const h1 = boxes[0] as Sandbox;
    const linkPid = Number((await readFile(path.join(h2.root, 'run/srvctl/openvpn/scv-1-2.pid'), 'utf8')).trim());
    process.kill(linkPid, 'SIGTERM');
    expect(await eventually(async () => !(await stat(`/proc/${linkPid}`).catch(() => undefined)), 20)).toBe(true);
    await writeFile(path.join(device, 'ua@laptop.crt'), await readFile(path.join(datastore, 'pki/clients/ua@laptop.crt')));
    const h2Config = await readFile(path.join(h2.root, 'etc/openvpn/srvctl/scv-1-2.conf'), 'utf8');
    const impostor = h2Config
      .split('\n')
      .map((line) => {
        if (line.startsWith('cert ')) return `cert ${path.join(device, 'ua@laptop.crt')}`;
        if (line.startsWith('key ')) return `key ${path.join(device, 'ua@laptop.key')}`;
        if (/^(writepid|status|log-append) /.test(line))
          return `${line.split(' ')[0] as string} ${path.join(device, `mesh-impostor.${line.split(' ')[0] as string}`)}`;
        return line;
      })
      .join('\n');
    await writeFile(path.join(device, 'mesh-impostor.conf'), impostor);
    const linkLog = path.join(h1.root, 'run/srvctl/openvpn/scv-1-2.log');
    const before = (await log(linkLog)).length;
    const started = await execa(
      'ip',
      ['netns', 'exec', h2.netns, 'openvpn', '--config', path.join(device, 'mesh-impostor.conf'), '--daemon', 'mesh-impostor'],
      { reject: false, env: { NOTIFY_SOCKET: undefined } },
    );
    expect(started.exitCode).toBe(0);
    let pid = 0;
    await eventually(async () => (pid = Number((await log(path.join(device, 'mesh-impostor.writepid'))).trim())) > 0, 20);
    if (pid > 0) client().track(pid);
    // The TLS server end (h1, the lower hostnet) wants serverAuth (a host's): the device certificate has none.
    expect(await eventually(async () => /VERIFY EKU ERROR/.test((await log(linkLog)).slice(before)), 60)).toBe(true);
    expect((await log(linkLog)).slice(before)).not.toMatch(/Peer Connection Initiated/);
    if (pid > 0) process.kill(pid, 'SIGTERM');
    await eventually(async () => !(await stat(`/proc/${pid}`).catch(() => undefined)), 20);
    // h2's next apply brings its tunnel back.
    expect((await sc(1, 'diff')).exitCode).toBe(2);
    expect((await sc(1, 'apply')).exitCode).toBe(0);
    expect((await sc(1, 'diff')).exitCode).toBe(0);
    expect(await eventually(() => reaches('10.32.1.20'), 60)).toBe(true);
  }, 240_000);

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

  it('a removed device is revoked and its live session dropped at the next apply; the phone stays connected; the revoked certificate cannot reconnect', async () => {
    expect(await connectedNames(0)).toEqual(['ua@laptop', 'ua@phone']);
    const serverBefore = await serverPid(0);
    expect((await sc(0, 'remove-vpn-client', 'ua', 'laptop')).exitCode).toBe(0);
    expect((await sc(0, 'diff')).exitCode).toBe(2);
    expect((await sc(0, 'apply')).exitCode).toBe(0);
    expect((await sc(0, 'diff')).exitCode).toBe(0);
    // Dropped by name, without restarting the server under the phone.
    expect(await connectedNames(0)).toEqual(['ua@phone']);
    expect(await serverPid(0)).toBe(serverBefore);
    const laptopSerial = normalSerial(new X509Certificate(await readFile(path.join(device, 'ua@laptop.crt'))).serialNumber);
    const crl = await execa('openssl', ['crl', '-in', path.join(datastore, 'pki/crl.pem'), '-noout', '-text']);
    // openssl pads a serial to whole bytes (a leading 0 when the top nibble is 0): compare without leading zeros.
    const revoked = [...crl.stdout.matchAll(/Serial Number: ([0-9A-F]+)/gi)].map((m) => normalSerial(m[1] as string));
    expect(revoked).toContain(laptopSerial);
    expect(await readFile(path.join((boxes[0] as Sandbox).root, 'etc/srvctl/pki/crl.pem'), 'utf8')).toBe(
      await readFile(path.join(datastore, 'pki/crl.pem'), 'utf8'),
    );
    expect(await reaches('10.16.1.20')).toBe(false);
    expect(await reaches('10.16.1.20', inPhone)).toBe(true);
    expect((await sc(1, 'apply')).exitCode).toBe(0);
    expect((await sc(1, 'diff')).exitCode).toBe(0);
    expect(await reaches('10.16.1.20', inPhone)).toBe(true);
  }, 240_000);

  it('the revoked certificate is refused by the CRL even when the device name is back (re-added with a new key from --out)', async () => {
    const profile = path.join(phoneDir, 'laptop2.ovpn');
    expect((await sc(0, 'add-vpn-client', 'ua', 'laptop', '--out', profile)).exitCode).toBe(0);
    await applyAll();
    // ua@laptop has a client-config-dir file again: only the CRL refuses the old certificate.
    expect(await readdir(path.join((boxes[0] as Sandbox).root, 'etc/openvpn/srvctl/scu-1.ccd'))).toEqual(['ua@laptop', 'ua@phone']);
    for (const pid of clientPids.splice(0)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    const before = (await log(h1Log())).length;
    const old = await startClient('laptop', undefined);
    expect(await eventually(async () => /certificate revoked/.test((await log(h1Log())).slice(before)), 60)).toBe(true);
    expect(await reaches('10.16.1.20')).toBe(false);
    if (old.pid > 0) process.kill(old.pid, 'SIGTERM');
    expect((await sc(0, 'vpn-config', 'ua', 'laptop', '--update', profile)).exitCode).toBe(0);
    for (const i of [0, 1]) expect((await sc(i, 'diff')).exitCode).toBe(0);
  }, 900_000);

  it('no private key in the datastore files, in any git object, or in any sc output', async () => {
    const keys = [
      await readFile(path.join(device, 'ua@laptop.key'), 'utf8'),
      ...(await Promise.all(['phone.ovpn', 'laptop2.ovpn'].map((f) => readFile(path.join(phoneDir, f), 'utf8')))),
    ];
    const secrets = keys.map((k) => {
      const body = k.slice(k.indexOf('-----BEGIN PRIVATE KEY-----'));
      return body.split('\n')[1] as string;
    });
    expect(secrets.every((s) => s.length > 40)).toBe(true);
    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(path.join(dir, e.name));
        else files.push(await readFile(path.join(dir, e.name), 'latin1'));
      }
    };
    await walk(datastore);
    // Decompressed: every blob, tree and commit of the datastore's repository.
    const objects = (await execa('git', ['cat-file', '--batch-all-objects', '--batch'], { cwd: datastore, maxBuffer: 1 << 28 })).stdout;
    expect(objects).toContain('ua@phone');
    for (const text of [...files, objects, ...outputs]) {
      expect(text).not.toContain('PRIVATE KEY');
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  }, 120_000);
});
