// A site on a second host reached over the mesh (issue 14): two hosts of one cluster joined by the
// cluster VPN on a TEST-NET underlay, a real busybox container on h2 only, and a third namespace as
// the client. The client asks h1's proxy for the site's name (curl --resolve NAME:80/443:h1); h1's
// HAProxy routes it over the tunnel to the container on h2, whose page comes back, on 80 and (with
// an operator certificate on h1) on 443. h2's own proxy routes the same name to its local container.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, underlayIp, type Underlay } from './vpn-underlay.js';
import { selfSignedEc } from '../test-certificates.js';

const HOSTS = ['h1.test', 'h2.test'] as const;
const SITE = 'site.example.com';
const users = { ua: { reseller: 'root', user_id: 1, uid: 31001 } };
// On h2 only; port 80 serves (no redirect to https), so both ports can show the page.
const containers = { [SITE]: { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.32.1.20', 'http-redirect': 'none', aliases: [`w.${SITE}`] } };

const boxes: Sandbox[] = [];
let underlay: Underlay | undefined;
let datastore: string;
const outputs: string[] = [];

const sc = async (i: number, ...args: string[]) => {
  const result = await (boxes[i] as Sandbox).runSc(['--datastore', datastore, '--host', HOSTS[i] as string, ...args], { timeoutMs: 300_000 });
  outputs.push(result.stdout, result.stderr);
  return result;
};
const client = () => boxes[2] as Sandbox;
const caFile = () => path.join(client().root, 'site.crt');

interface Reply {
  code: string;
  location: string;
  body: string;
}

/** One request from the client namespace, `name` resolved to host N's underlay address. */
async function get(hostIndex: number, name: string, port: 80 | 443, urlPath = '/'): Promise<Reply> {
  const scheme = port === 443 ? 'https' : 'http';
  const out = await execa(
    'ip',
    [
      'netns',
      'exec',
      client().netns,
      'curl',
      '-s',
      '--max-time',
      '10',
      ...(port === 443 ? ['--cacert', caFile()] : []),
      '--resolve',
      `${name}:${port}:${underlayIp(hostIndex + 1)}`,
      '-w',
      '\n%{http_code} %{redirect_url}',
      `${scheme}://${name}${urlPath}`,
    ],
    { reject: false },
  );
  const lines = out.stdout.split('\n');
  const [code = '', location = ''] = (lines.pop() ?? '').split(' ');
  return { code: out.exitCode === 0 ? code : `curl exit ${out.exitCode}`, location, body: lines.join('\n').trimEnd() };
}

/** Polls (busybox init respawns httpd a moment after the machine runs; the tunnel comes up on its own time). */
async function eventually(check: () => Promise<boolean>, attempts = 60): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

beforeAll(async () => {
  for (let i = 0; i < 3; i++) boxes.push(await createSandbox());
  datastore = path.join((boxes[0] as Sandbox).root, 'datastore');
  await mkdir(datastore, { recursive: true });
  const cluster = Object.fromEntries(
    HOSTS.map((h, i) => [h, { hostnet: i + 1, host_ip: underlayIp(i + 1), interface: 'eth0', ...(i === 0 ? { ca: true } : {}) }]),
  );
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: cluster }, null, 2));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(users, null, 2));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(containers, null, 2));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
  underlay = await createUnderlay(boxes);
  // An operator certificate for the site on h1 only (self-signed: the client trusts exactly it).
  const certDir = path.join((boxes[0] as Sandbox).root, 'etc/srvctl/cert');
  await mkdir(certDir, { recursive: true, mode: 0o755 });
  const key = path.join(client().root, 'site.key');
  selfSignedEc({ key: key, cert: caFile(), subject: `/CN=${SITE}`, days: 30, extra: ['-addext', `subjectAltName=DNS:${SITE},DNS:w.${SITE}`] });
  await writeFile(path.join(certDir, `${SITE}.pem`), (await readFile(caFile(), 'utf8')) + (await readFile(key, 'utf8')), { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  await destroyVpnFarm(boxes, underlay);
}, 120_000);

describe('reverse proxy over the cluster VPN mesh (two hosts and a client)', () => {
  it('both hosts converge (mesh, container on h2, a proxy on each); a second diff is clean on both', async () => {
    let converged = false;
    for (let round = 0; round < 4 && !converged; round++) {
      const results = [await sc(0, 'apply'), await sc(1, 'apply')];
      converged = results.every((r) => r.exitCode === 0);
    }
    if (!converged) throw new Error(`the hosts did not converge:\n${outputs.slice(-4).join('\n')}`);
    for (const i of [0, 1]) {
      const diff = await sc(i, 'diff');
      if (diff.exitCode !== 0) throw new Error(`second diff on ${HOSTS[i]} exit ${diff.exitCode}:\n${diff.stdout}\n${diff.stderr}`);
    }
    // h1 runs no container, yet routes the site: over the mesh.
    const status = JSON.parse((await sc(0, '-o', 'json', 'status')).stdout) as { proxy: { names: { name: string; http: string }[] } };
    expect(status.proxy.names.find((n) => n.name === SITE)?.http).toBe('10.32.1.20:80 (mesh, h2.test)');
  }, 900_000);

  it("h1's proxy serves the page of h2's container on 80 and 443; the alias 301s to the name", async () => {
    expect(await eventually(async () => (await get(0, SITE, 80)).code === '200')).toBe(true);
    const http = await get(0, SITE, 80, '/index.html');
    expect(http).toEqual({ code: '200', location: '', body: expect.stringMatching(/^hello from site/) as unknown });
    const https = await get(0, SITE, 443);
    expect(https).toEqual({ code: '200', location: '', body: http.body });
    expect(await get(0, `w.${SITE}`, 443, '/x?y=1')).toMatchObject({ code: '301', location: `https://${SITE}/x?y=1` });
    // The request really crossed the tunnel: h1 has no route to 10.32/12 but the tunnel's.
    const route = await execa('ip', ['-n', (boxes[0] as Sandbox).netns, 'route', 'get', '10.32.1.20'], { reject: false });
    expect(route.stdout).toMatch(/dev scv-1-2/);
  }, 120_000);

  it("h2's proxy routes the same name to its local container; no certificate there, so 443 has nothing for it", async () => {
    const local = await get(1, SITE, 80);
    expect(local.code).toBe('200');
    expect(local.body).toMatch(/^hello from site/);
    expect((await get(1, SITE, 443)).code).not.toBe('200');
    for (const i of [0, 1]) expect((await sc(i, 'diff')).exitCode).toBe(0);
  }, 120_000);
});
