// The cluster VPN end to end (issue 7 acceptance): three namespaces are three hosts of one cluster
// on a TEST-NET underlay, sharing one datastore directory. Each runs `sc apply` with its own --host,
// --root and --netns until the CA flow completes; then a busybox container on h1 pings containers
// on h2 and h3 through the tunnels, and removing h3 from the datastore removes its tunnels.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, openvpnPids, underlayIp, type Underlay } from './vpn-underlay.js';

const HOSTS = ['h1.test', 'h2.test', 'h3.test'] as const;
const users = { ua: { name: 'User A', reseller: 'root', user_id: 1, uid: 31001 } };
const containerIp = (n: number) => `10.${16 * n}.1.20`;

const boxes: Sandbox[] = [];
let underlay: Underlay | undefined;
let datastore: string;

async function writeClusters(hosts: readonly string[]): Promise<void> {
  const cluster: Record<string, { hostnet: number; host_ip: string; interface: string; ca?: boolean }> = {};
  for (const name of hosts) {
    const n = HOSTS.indexOf(name as (typeof HOSTS)[number]) + 1;
    cluster[name] = { hostnet: n, host_ip: underlayIp(n), interface: 'eth0', ...(n === 1 ? { ca: true } : {}) };
  }
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: cluster }, null, 2));
  const containers = Object.fromEntries(
    hosts.map((name) => {
      const n = HOSTS.indexOf(name as (typeof HOSTS)[number]) + 1;
      return [`c${n}.test`, { user: 'ua', host: name, type: 'busybox', ip: containerIp(n) }];
    }),
  );
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(containers, null, 2));
}

const sc = (i: number, ...args: string[]) =>
  (boxes[i] as Sandbox).runSc(['--datastore', datastore, '--host', HOSTS[i] as string, ...args], { timeoutMs: 180_000 });

/** Every file under `dir`, recursively, with its text. */
async function allFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) Object.assign(out, await allFiles(full));
    else out[full] = await readFile(full, 'utf8');
  }
  return out;
}

const outputs: string[] = [];

beforeAll(async () => {
  // One at a time into `boxes`, so afterAll also removes those made before a failure.
  for (let i = 0; i < HOSTS.length; i++) boxes.push(await createSandbox());
  const first = boxes[0] as Sandbox;
  datastore = path.join(first.root, 'datastore');
  await mkdir(datastore, { recursive: true });
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
  await writeClusters(HOSTS);
  underlay = await createUnderlay(boxes);
}, 60_000);

afterAll(async () => {
  // Tunnels and containers die before their namespaces (sandbox.md §9); destroy() kills containers by cgroup.
  await destroyVpnFarm(boxes, underlay);
}, 120_000);

/** Applies h1, h2, h3, h1, … until every host converged in one round (at most `rounds`). */
async function convergeAll(rounds: number, hosts: readonly number[]): Promise<number> {
  for (let round = 1; round <= rounds; round++) {
    let all = true;
    for (const i of hosts) {
      const result = await sc(i, 'apply');
      outputs.push(result.stdout, result.stderr);
      if (result.exitCode !== 0) all = false;
    }
    if (all) return round;
  }
  throw new Error(`the cluster did not converge in ${rounds} rounds:\n${outputs.slice(-6).join('\n')}`);
}

async function pingFromC1(address: string): Promise<boolean> {
  for (let attempt = 0; attempt < 30; attempt++) {
    const result = await sc(0, 'exec', 'c1.test', '--', 'ping', '-c', '1', '-W', '1', address);
    if (result.exitCode === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

describe('cluster VPN mesh (three hosts)', () => {
  it('the CA flow completes within a few passes on every host; a second diff exits 0 everywhere', async () => {
    // Round 1: the CA host certifies itself, h2 and h3 publish requests; round 2: signed, installed, tunnels up.
    expect(await convergeAll(3, [0, 1, 2])).toBeLessThanOrEqual(2);
    for (const i of [0, 1, 2]) {
      const diff = await sc(i, 'diff');
      expect(diff.exitCode).toBe(0);
    }
    // The datastore holds the public side only; sc validate is not disturbed by pki/.
    expect((await readdir(path.join(datastore, 'pki/certs'))).sort()).toEqual(HOSTS.map((h) => `${h}.crt`));
    expect((await sc(0, 'validate')).exitCode).toBe(0);
  }, 600_000);

  it('each host has one tunnel per peer with the peer /12 routed into it', async () => {
    const routes = await (boxes[0] as Sandbox).ipJson<{ dst: string; dev: string }[]>('route', 'show');
    expect(routes.find((r) => r.dst === '10.32.0.0/12')?.dev).toBe('scv-1-2');
    expect(routes.find((r) => r.dst === '10.48.0.0/12')?.dev).toBe('scv-1-3');
    const links = await (boxes[1] as Sandbox).ipJson<{ ifname: string }[]>('link', 'show');
    expect(
      links
        .map((l) => l.ifname)
        .filter((n) => n.startsWith('scv-'))
        .sort(),
    ).toEqual(['scv-1-2', 'scv-2-3']);
  });

  it('a container on h1 pings the containers on h2 and h3 by their 10.x addresses', async () => {
    expect(await pingFromC1(containerIp(2))).toBe(true);
    expect(await pingFromC1(containerIp(3))).toBe(true);
  }, 120_000);

  it('sc status shows each tunnel up with its peer and last handshake', async () => {
    const status = await sc(0, '-o', 'json', 'status');
    outputs.push(status.stdout, status.stderr);
    const parsed = JSON.parse(status.stdout) as { vpn_links: { peer: string; state: string; device: string; last_handshake: string | null }[] };
    const byPeer = Object.fromEntries(parsed.vpn_links.map((l) => [l.peer, l]));
    expect(byPeer['h2.test']?.state).toBe('up');
    expect(byPeer['h3.test']?.state).toBe('up');
    // UTC from --machine-readable-output, as the systemd units' --suppress-timestamps would otherwise leave none.
    expect(byPeer['h2.test']?.last_handshake).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const text = await sc(0, 'status');
    expect(text.stdout).toMatch(/scv-1-2.*h2\.test.*up/);
  });

  it('a certificate due for renewal is re-issued by the CA host; its host installs it and restarts only its own tunnels, which come back', async () => {
    // A 10-day certificate for h2's key, signed with the cluster CA by openssl, published and installed by hand.
    const h1Pki = path.join((boxes[0] as Sandbox).root, 'etc/srvctl/pki');
    const h2Root = (boxes[1] as Sandbox).root;
    const short = await execa('openssl', [
      'x509',
      '-req',
      '-in',
      path.join(datastore, 'pki/requests/h2.test.csr'),
      '-CA',
      path.join(h1Pki, 'ca.crt'),
      '-CAkey',
      path.join(h1Pki, 'ca.key'),
      '-set_serial',
      '0x42',
      '-days',
      '10',
      '-sha256',
    ]);
    await writeFile(path.join(datastore, 'pki/certs/h2.test.crt'), `${short.stdout}\n`);
    await writeFile(path.join(h2Root, 'etc/srvctl/pki/host.crt'), `${short.stdout}\n`);
    const before = { h1: (await openvpnPids((boxes[0] as Sandbox).root)).sort(), h2: (await openvpnPids(h2Root)).sort() };

    expect((await sc(1, 'diff')).exitCode).toBe(2);
    for (const i of [0, 1]) {
      const apply = await sc(i, 'apply');
      outputs.push(apply.stdout, apply.stderr);
      expect(apply.exitCode).toBe(0);
    }
    const renewed = new X509Certificate(await readFile(path.join(h2Root, 'etc/srvctl/pki/host.crt'), 'utf8'));
    expect(Date.parse(renewed.validTo) - Date.now()).toBeGreaterThan(800 * 86_400_000);
    // h2's tunnels restarted with the new certificate; h1's (whose certificates did not change) did not.
    const after = { h1: (await openvpnPids((boxes[0] as Sandbox).root)).sort(), h2: (await openvpnPids(h2Root)).sort() };
    expect(after.h1).toEqual(before.h1);
    expect(after.h2.filter((pid) => before.h2.includes(pid))).toEqual([]);
    for (const i of [0, 1, 2]) expect((await sc(i, 'diff')).exitCode).toBe(0);
    expect(await pingFromC1(containerIp(2))).toBe(true);
  }, 180_000);

  it('removing h3 from the datastore removes its tunnels on h1 and h2 on their next apply', async () => {
    await writeClusters(['h1.test', 'h2.test']);
    for (const i of [0, 1]) {
      const apply = await sc(i, 'apply');
      outputs.push(apply.stdout, apply.stderr);
      expect(apply.exitCode).toBe(0);
      const diff = await sc(i, 'diff');
      expect(diff.exitCode).toBe(0);
    }
    const h1Links = await (boxes[0] as Sandbox).ipJson<{ ifname: string }[]>('link', 'show');
    expect(h1Links.map((l) => l.ifname).filter((n) => n.startsWith('scv-'))).toEqual(['scv-1-2']);
    const h2Links = await (boxes[1] as Sandbox).ipJson<{ ifname: string }[]>('link', 'show');
    expect(h2Links.map((l) => l.ifname).filter((n) => n.startsWith('scv-'))).toEqual(['scv-1-2']);
    expect(await readdir(path.join(boxes[0]?.root as string, 'etc/openvpn/srvctl'))).toEqual(['scv-1-2.conf']);
    expect(await pingFromC1(containerIp(2))).toBe(true);
  }, 180_000);

  it('no private key appears in the datastore, the sc outputs or sc status -o json', async () => {
    const keys = await Promise.all(boxes.map((b) => readFile(path.join(b.root, 'etc/srvctl/pki/host.key'), 'utf8')));
    const caKey = await readFile(path.join((boxes[0] as Sandbox).root, 'etc/srvctl/pki/ca.key'), 'utf8');
    const secrets = [...keys, caKey].map((k) => k.split('\n')[1] as string);
    for (const i of [0, 1]) outputs.push((await sc(i, '-o', 'json', 'status')).stdout);
    const published = Object.values(await allFiles(datastore));
    for (const text of [...published, ...outputs]) {
      expect(text).not.toContain('PRIVATE KEY');
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
    const { mode } = await import('node:fs/promises').then((fs) => fs.stat(path.join((boxes[1] as Sandbox).root, 'etc/srvctl/pki/host.key')));
    expect(mode & 0o777).toBe(0o600);
  });
});
