// The reverse proxy end to end through `sc` in a namespace: a real HAProxy started and owned by sc,
// stand-in containers (namespaces on sc's bridges running busybox httpd), and a client namespace
// on the uplink asking by Host header. Routes, 301s, the 404 page, hand edits repaired, a config
// HAProxy refuses never replacing the working one, reloads under load without a failed request.
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Containers } from '../../src/datastore/model.js';
import { generateDatastore, writeDatastore, type GeneratedDatastore } from './generated-datastore.js';
import { createSandbox, type Sandbox } from './sandbox.js';
import { selfSignedEc, ecRequest, signRequest } from '../test-certificates.js';

const HOST = 'web1.example.net';
const UPLINK_IP = '192.0.2.11';
const CLIENT_IP = '192.0.2.99';
const C1 = 'c1.res1.example.com';
const C2 = 'c2.res1.example.com';
const C3 = 'c3.res1.example.com';
const TARGETS = ['--target', 'bridge/sc-17-1', '--target', 'bridge/sc-17-2', '--target', 'reverse-proxy/haproxy'];

interface Reply {
  code: string;
  location: string;
  body: string;
}

describe('reverse-proxy: HAProxy routing by Host in a namespace', () => {
  let sandbox: Sandbox;
  let datastore: string;
  let data: GeneratedDatastore;
  const standIns: string[] = [];
  let clientNs: string;
  const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 300_000 });
  /** `sc apply` that must converge; its whole output is the failure message otherwise. */
  async function applyOk(): Promise<void> {
    const applied = await sc('apply', ...TARGETS);
    if (applied.exitCode !== 0 || applied.stderr !== '') throw new Error(`sc apply exit ${applied.exitCode}:\n${applied.stdout}\n${applied.stderr}`);
  }
  const configPath = () => path.join(sandbox.root, 'etc/haproxy/srvctl.cfg');

  /** One request from the client namespace to the host's uplink address, as `name` resolves there. */
  async function get(name: string, urlPath = '/', port = 80): Promise<Reply> {
    const scheme = port === 443 ? 'https' : 'http';
    const out = await execa(
      'ip',
      [
        'netns',
        'exec',
        clientNs,
        'curl',
        '-s',
        '--max-time',
        '20',
        '--resolve',
        `${name}:${port}:${UPLINK_IP}`,
        '-w',
        '\n%{http_code} %{redirect_url}',
        `${scheme}://${name}${urlPath}`,
      ],
      { reject: false },
    );
    const lines = out.stdout.split('\n');
    const [code = '', location = ''] = (lines.pop() ?? '').split(' ');
    return { code, location, body: lines.join('\n').trimEnd() };
  }

  async function writeContainers(containers: Containers): Promise<void> {
    data = { ...data, containers };
    await writeDatastore(datastore, data);
  }

  function startIn(ns: string, ...args: string[]): void {
    const child = execa('ip', ['netns', 'exec', ns, ...args], { reject: false, stdin: 'ignore' });
    if (child.pid !== undefined) sandbox.track(child.pid);
  }

  /** A namespace on sc's bridge with the container's address, serving "hello from NAME". */
  async function standIn(short: string, ip: string, bridge: string): Promise<void> {
    const ns = `${sandbox.prefix}-${short}`;
    standIns.push(ns);
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['link', 'add', `${sandbox.prefix}${short}`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'host0', 'netns', ns]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}${short}`, 'master', bridge, 'up');
    await execa('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'host0']);
    await execa('ip', ['-n', ns, 'link', 'set', 'host0', 'up']);
    await execa('ip', ['-n', ns, 'route', 'add', 'default', 'via', ip.replace(/\.\d+$/, '.1')]);
    const www = path.join(sandbox.root, 'www', short);
    await execa('mkdir', ['-p', www]);
    await writeFile(path.join(www, 'index.html'), `hello from ${short}\n`);
    startIn(ns, 'busybox', 'httpd', '-f', '-p', '80', '-h', www);
  }

  /** A throwaway CA and a leaf for `names` signed by it: the PEM bundle (chain + key) sc reads. */
  async function issue(dir: string, file: string, names: string[]): Promise<void> {
    const ca = path.join(sandbox.root, 'test-ca');
    await execa('mkdir', ['-p', ca, dir]);
    if (!existsSync(path.join(ca, 'ca.crt'))) {
      selfSignedEc({ key: `${ca}/ca.key`, cert: `${ca}/ca.crt`, subject: '/CN=sc test operator CA', days: 30 });
    }
    const leaf = path.join(ca, file);
    ecRequest({ key: `${leaf}.key`, csr: `${leaf}.csr`, subject: `/CN=${names[0]}` });
    await writeFile(`${leaf}.ext`, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
    signRequest({ csr: `${leaf}.csr`, caCert: `${ca}/ca.crt`, caKey: `${ca}/ca.key`, cert: `${leaf}.crt`, days: 30, extfile: `${leaf}.ext` });
    const pem = (await readFile(`${leaf}.crt`, 'utf8')) + (await readFile(`${leaf}.key`, 'utf8'));
    await writeFile(path.join(dir, file), pem, { mode: 0o600 });
  }

  /** The certificate the proxy presents for `name` (SNI), as `openssl x509` prints its issuer and SAN. */
  async function servedCertificate(name: string): Promise<string> {
    const hello = await execa('ip', ['netns', 'exec', clientNs, 'openssl', 's_client', '-connect', `${UPLINK_IP}:443`, '-servername', name], {
      input: '',
      reject: false,
      timeout: 20_000,
    });
    const shown = await execa('openssl', ['x509', '-noout', '-issuer', '-ext', 'subjectAltName'], { input: hello.stdout, reject: false });
    return shown.stdout;
  }

  /** An https request checked against the test CA. */
  async function getTls(name: string, urlPath = '/'): Promise<Reply> {
    const out = await execa(
      'ip',
      [
        'netns',
        'exec',
        clientNs,
        'curl',
        '-s',
        '--max-time',
        '20',
        '--cacert',
        path.join(sandbox.root, 'test-ca/ca.crt'),
        '--resolve',
        `${name}:443:${UPLINK_IP}`,
        '-w',
        '\n%{http_code} %{redirect_url}',
        `https://${name}${urlPath}`,
      ],
      { reject: false },
    );
    const lines = out.stdout.split('\n');
    const [code = '', location = ''] = (lines.pop() ?? '').split(' ');
    return { code: out.exitCode === 0 ? code : `curl exit ${out.exitCode}`, location, body: lines.join('\n').trimEnd() };
  }

  const masterPid = async () => Number((await readFile(path.join(sandbox.root, 'run/srvctl/haproxy/haproxy.pid'), 'utf8')).trim());

  beforeAll(async () => {
    sandbox = await createSandbox();
    clientNs = `${sandbox.prefix}-cl`;
    datastore = path.join(sandbox.root, 'datastore');
    data = generateDatastore({ host: HOST, hostnet: 1, resellers: 1, usersPerReseller: 2 });
    const c1 = data.containers[C1];
    const c2 = data.containers[C2];
    if (!c1 || c1.ip !== '10.17.1.20' || !c2 || c2.ip !== '10.17.2.20')
      throw new Error(`generated datastore changed: ${JSON.stringify(data.containers)}`);
    c1.aliases = ['alias.example.org'];
    c1.altnames = ['alt.example.net'];
    c2['http-redirect'] = 'none';
    data.containers[C3] = {
      user: c1.user,
      host: HOST,
      type: 'busybox',
      ip: '10.17.1.21',
      'http-redirect': 'https://elsewhere.example.org/landing?from=c3',
    };
    await writeDatastore(datastore, data);

    await execa('ip', ['netns', 'add', clientNs]);
    await execa('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
    await sandbox.ip('addr', 'add', `${UPLINK_IP}/24`, 'dev', 'eth0');
    await sandbox.ip('link', 'set', 'eth0', 'up');
    await execa('ip', ['-n', clientNs, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
    await execa('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);
  }, 120_000);

  afterAll(async () => {
    await sandbox?.destroy();
    for (const ns of [clientNs, ...standIns]) if (ns) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('apply renders, checks and starts HAProxy; a second diff finds nothing to do', async () => {
    await applyOk();
    const config = await readFile(configPath(), 'utf8');
    expect(config.split('\n')[0]).toMatch(/^# srvctl reverse-proxy/);
    expect(config).toContain('server site 10.17.1.20:80');
    const diff = await sc('diff', ...TARGETS);
    expect(diff.stdout).toMatch(/No changes/);
    expect(diff.exitCode).toBe(0);
    await standIn('c1', '10.17.1.20', 'sc-17-1');
    await standIn('c2', '10.17.2.20', 'sc-17-2');
  }, 300_000);

  it('routes each name to its site; altnames as they are; www. and aliases 301 to the name; URL redirects; 404 for an unknown Host', async () => {
    expect(await get(C1)).toEqual({ code: '200', location: '', body: 'hello from c1' });
    expect(await get(C2)).toEqual({ code: '200', location: '', body: 'hello from c2' });
    expect((await get('alt.example.net')).body).toBe('hello from c1');
    // No certificate yet: the default redirect to https does not happen (never into a broken https).
    expect(await get(`www.${C1}`, '/a/b?q=1')).toMatchObject({ code: '301', location: `http://${C1}/a/b?q=1` });
    expect(await get('alias.example.org')).toMatchObject({ code: '301', location: `http://${C1}/` });
    expect(await get(C3, '/ignored')).toMatchObject({ code: '301', location: 'https://elsewhere.example.org/landing?from=c3' });
    expect(await get(`www.${C3}`)).toMatchObject({ code: '301', location: 'https://elsewhere.example.org/landing?from=c3' });
    const unknown = await get('nobody.example.com');
    expect(unknown.code).toBe('404');
    expect(unknown.body).toContain('No site is served under this name here.');
  }, 120_000);

  it('a hand edit of the config shows in diff and apply repairs it with a reload', async () => {
    const before = await masterPid();
    const config = await readFile(configPath(), 'utf8');
    await writeFile(configPath(), config.replace('server site 10.17.2.20:80', 'server site 10.17.2.99:80'));
    const diff = await sc('-o', 'json', 'diff', ...TARGETS);
    expect(diff.exitCode).toBe(2);
    const plan = JSON.parse(diff.stdout) as { changes: { action: string; kind: string; reasons: { path: string }[] }[] };
    expect(plan.changes).toEqual([
      expect.objectContaining({
        action: 'update',
        kind: 'reverse-proxy',
        reasons: expect.arrayContaining([expect.objectContaining({ path: '/config', old: 'edited', new: 'intact' })]),
      }),
    ]);
    await applyOk();
    expect(await readFile(configPath(), 'utf8')).toBe(config);
    expect(await masterPid()).toBe(before);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
    // A hand edit of a map it reads counts the same.
    const mapName = /srvctl-maps\/(http-backend-[0-9a-f]{16}\.map)/.exec(config)?.[1] as string;
    const mapPath = path.join(sandbox.root, 'etc/haproxy/srvctl-maps', mapName);
    const map = await readFile(mapPath, 'utf8');
    await writeFile(mapPath, `${map}evil.example.com site_${C1}\n`);
    const mapDiff = JSON.parse((await sc('-o', 'json', 'diff', ...TARGETS)).stdout) as { changes: { reasons: { path: string; old?: unknown }[] }[] };
    expect(mapDiff.changes[0]?.reasons).toEqual([expect.objectContaining({ path: '/config', old: 'edited' })]);
    await applyOk();
    expect(await readFile(mapPath, 'utf8')).toBe(map);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 300_000);

  it('a config HAProxy refuses never replaces the working one; apply says why', async () => {
    const good = await readFile(configPath(), 'utf8');
    const containers = structuredClone(data.containers);
    // Passes the schema (a port as a string of digits), but no TCP port is 99999.
    (containers[C2] as { http_port?: string }).http_port = '99999';
    await writeContainers(containers);
    const applied = await sc('apply', ...TARGETS);
    expect(applied.exitCode).not.toBe(0);
    expect(`${applied.stdout}${applied.stderr}`).toMatch(/haproxy -c/);
    expect(await readFile(configPath(), 'utf8')).toBe(good);
    expect((await get(C1)).body).toBe('hello from c1');
    delete (containers[C2] as { http_port?: string }).http_port;
    await writeContainers(containers);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 300_000);

  it('5,000 requests across 10 reloads caused by datastore changes: not one fails', async () => {
    const master = await masterPid();
    const loadedFile = path.join(sandbox.root, 'run/srvctl/haproxy/loaded');
    // A bounded client loop: batches of 250 new-connection requests, at least 20 of them (5,000
    // requests) and on while reloads are still under way; never more than 60.
    let reloading = true;
    const codes: string[] = [];
    const load = (async () => {
      for (let batch = 0; batch < 60 && (reloading || batch < 20); batch++) {
        const out = await execa(
          'ip',
          [
            'netns',
            'exec',
            clientNs,
            'curl',
            '-s',
            '--max-time',
            '20',
            '-H',
            'Connection: close',
            '--resolve',
            `${C1}:80:${UPLINK_IP}`,
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}\n',
            `http://${C1}/index.html?[1-250]`,
          ],
          { reject: false },
        );
        codes.push(...out.stdout.split('\n').filter(Boolean));
      }
    })();
    const reloads = 10;
    const loaded = new Set<string>([await readFile(loadedFile, 'utf8')]);
    /** Requests answered before each reload started and after it ended: each reload happened under load. */
    const during: [number, number][] = [];
    for (let i = 0; i < reloads; i++) {
      const containers = structuredClone(data.containers);
      (containers[C2] as { aliases?: string[] }).aliases = [`r${i}.example.org`];
      await writeContainers(containers);
      const before = codes.length;
      await applyOk();
      during.push([before, codes.length]);
      loaded.add(await readFile(loadedFile, 'utf8'));
      expect((await get(`r${i}.example.org`)).code).toBe('301');
    }
    reloading = false;
    await load;
    // One master throughout, and a new config loaded by each of the 10 applies.
    expect(await masterPid()).toBe(master);
    expect(loaded.size).toBe(reloads + 1);
    expect(codes.length).toBeGreaterThanOrEqual(5_000);
    // Not a reload after the load had ended: requests were still being answered after the last one.
    expect(codes.length).toBeGreaterThan(during[reloads - 1]?.[1] ?? Infinity);
    process.stdout.write(
      `reverse-proxy under load: ${codes.length} requests across ${reloads} reloads, ${codes.filter((c) => c !== '200').length} failed\n`,
    );
    expect(codes.filter((c) => c !== '200')).toEqual([]);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 600_000);

  it("serves TLS with the operator's certificates: NAME.pem and a wildcard per SNI; http goes to https by default", async () => {
    const certDir = path.join(sandbox.root, 'etc/srvctl/cert');
    await issue(certDir, `${C1}.pem`, [C1, `www.${C1}`]);
    await issue(path.join(certDir, 'res1.example.com'), 'wildcard.pem', ['*.res1.example.com']);
    const containers = structuredClone(data.containers);
    (containers[C3] as Record<string, unknown>)['https-redirect'] = 'https://elsewhere.example.org/secure';
    await writeContainers(containers);
    const diff = await sc('-o', 'json', 'diff', ...TARGETS);
    const plan = JSON.parse(diff.stdout) as { changes: { reasons: { path: string }[] }[] };
    expect(plan.changes.map((c) => c.reasons.map((r) => r.path).sort())).toEqual([['/certificates', '/sites']]);
    await applyOk();

    expect(await servedCertificate(C1)).toMatch(
      new RegExp(`issuer= ?CN ?= ?sc test operator CA[\\s\\S]*DNS:${C1.replace(/\./g, '\\.')}, DNS:www\\.${C1.replace(/\./g, '\\.')}`),
    );
    expect(await servedCertificate(C2)).toMatch(/DNS:\*\.res1\.example\.com/);
    expect(await getTls(C1)).toEqual({ code: '200', location: '', body: 'hello from c1' });
    expect(await getTls(C2)).toEqual({ code: '200', location: '', body: 'hello from c2' });
    expect(await getTls(`www.${C1}`, '/x')).toMatchObject({ code: '301', location: `https://${C1}/x` });
    expect(await getTls(C3)).toMatchObject({ code: '301', location: 'https://elsewhere.example.org/secure' });
    // Port 80: to https now that c1 has a certificate; c2 asked for none; the altname has no certificate.
    expect(await get(C1, '/p?q=1')).toMatchObject({ code: '301', location: `https://${C1}/p?q=1` });
    expect(await get(`www.${C1}`)).toMatchObject({ code: '301', location: `https://${C1}/` });
    expect(await get(C2)).toMatchObject({ code: '200', body: 'hello from c2' });
    expect(await get('alt.example.net')).toMatchObject({ code: '200', body: 'hello from c1' });
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 300_000);

  it('sc status shows each name: route, certificate and the HTTP status a request through the proxy gets', async () => {
    // An operator PEM others may write is refused (never read, never served), and status says so.
    const certDir = path.join(sandbox.root, 'etc/srvctl/cert');
    await issue(certDir, 'alt.example.net.pem', ['alt.example.net']);
    await chmod(path.join(certDir, 'alt.example.net.pem'), 0o666);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
    const status = await sc('-o', 'json', 'status');
    expect(status.stderr).toBe('');
    const json = JSON.parse(status.stdout) as {
      proxy: {
        running: boolean;
        names: { name: string; http: string; https: string; certificate: { source: string } | null; http_status: string | null }[];
      };
    };
    expect(json.proxy.running).toBe(true);
    const byName = Object.fromEntries(json.proxy.names.map((n) => [n.name, n]));
    expect(byName[C1]).toMatchObject({
      http: `301 https://${C1}`,
      https: '10.17.1.20:80 (local)',
      certificate: { source: 'operator' },
      http_status: '301',
    });
    expect(byName[C2]).toMatchObject({ http: '10.17.2.20:80 (local)', certificate: { source: 'operator' }, http_status: '200' });
    expect(byName['alt.example.net']).toMatchObject({ certificate: null, http_status: '200' });
    const refused = (json.proxy as unknown as { refused_certificates: { path: string; reason: string }[] }).refused_certificates;
    expect(refused).toEqual([
      { path: '/etc/srvctl/cert/alt.example.net.pem', reason: expect.stringContaining('writable by group and others (mode 0666): refused') },
    ]);
    const text = await sc('status');
    expect(text.stdout).toMatch(/Reverse proxy: HAProxy running \(master pid \d+\), \d+ names/);
    expect(text.stdout).toContain('Certificate refused: /etc/srvctl/cert/alt.example.net.pem is writable by group and others (mode 0666)');
  }, 300_000);

  it('a second apply with nothing changed neither rewrites nor reloads', async () => {
    const config = path.join(sandbox.root, 'etc/haproxy/srvctl.cfg');
    const { mtimeMs } = await import('node:fs/promises').then((fs) => fs.stat(config));
    const loadedBefore = await readFile(path.join(sandbox.root, 'run/srvctl/haproxy/loaded'), 'utf8');
    await applyOk();
    expect((await import('node:fs/promises').then((fs) => fs.stat(config))).mtimeMs).toBe(mtimeMs);
    expect(await readFile(path.join(sandbox.root, 'run/srvctl/haproxy/loaded'), 'utf8')).toBe(loadedBefore);
  }, 300_000);

  it('switched off in settings, the proxy stops and its config goes', async () => {
    await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ proxy: { enabled: false } }));
    const pid = await masterPid();
    await applyOk();
    await expect(readFile(configPath(), 'utf8')).rejects.toThrow(/ENOENT/);
    // Gone, or a zombie its adoptive parent has not reaped yet (sandbox.md §4d).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => 'gone');
    expect(stat === 'gone' || / Z /.test(stat.slice(stat.lastIndexOf(')')))).toBe(true);
    expect((await get(C1)).code).toBe('000');
    // Nothing of the kind is left to target: sc says so rather than pretending.
    expect((await sc('diff', ...TARGETS)).stderr).toMatch(/unknown target reverse-proxy\/haproxy: neither desired on this host nor found/);
    expect((await sc('diff', ...TARGETS.slice(0, 4))).exitCode).toBe(0);
  }, 300_000);

  it('another program on port 80 is a conflict, left alone; once it is gone, apply starts the proxy', async () => {
    const www = path.join(sandbox.root, 'www', 'foreign');
    await execa('mkdir', ['-p', www]);
    const foreign = execa('ip', ['netns', 'exec', sandbox.netns, 'busybox', 'httpd', '-f', '-p', '80', '-h', www], {
      reject: false,
      stdin: 'ignore',
    });
    if (foreign.pid !== undefined) sandbox.track(foreign.pid);
    await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({}));
    for (let i = 0; i < 50 && !(await sandbox.runSc(['--datastore', datastore, '--host', HOST, 'diff', ...TARGETS])).stdout.includes('held by'); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const applied = await sc('apply', ...TARGETS);
    expect(applied.exitCode).not.toBe(0);
    expect(applied.stdout).toMatch(/port 80 is held by busybox \(pid \d+\): not sc's proxy, left alone/);
    await expect(readFile(configPath(), 'utf8')).rejects.toThrow(/ENOENT/);
    foreign.kill('SIGTERM');
    await foreign;
    await applyOk();
    expect(await get(C2)).toEqual({ code: '200', location: '', body: 'hello from c2' });
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 300_000);
});
