// Certificates by ACME for real: Let's Encrypt's test server (Debian's `pebble`) runs in a client
// namespace with `pebble-challtestsrv` as its DNS (every name → the proxy's uplink address), and
// validates HTTP-01 through sc's HAProxy on port 80. Issued certificates are stored 0600 and
// served per SNI; a name the CA cannot validate fails alone, is reported and backs off; a
// certificate due within the renewal window is replaced and served without a restart.
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { generateDatastore, writeDatastore, type GeneratedDatastore } from './generated-datastore.js';
import { createSandbox, type Sandbox } from './sandbox.js';
import { selfSignedEc, ecRequest, signRequest } from '../test-certificates.js';

const HOST = 'web1.example.net';
const UPLINK_IP = '192.0.2.11';
const ACME_IP = '192.0.2.99';
const C1 = 'c1.res1.example.com';
const C2 = 'c2.res1.example.com';
const BAD = 'bad.example.org';
const TARGETS = ['--target', 'bridge/sc-17-1', '--target', 'bridge/sc-17-2', '--target', 'reverse-proxy/haproxy', '--target', 'certificate'];

describe('reverse-proxy certificates from an ACME server (pebble) in a namespace', () => {
  let sandbox: Sandbox;
  let datastore: string;
  let data: GeneratedDatastore;
  let acmeNs: string;
  const standIns: string[] = [];
  const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 400_000 });
  const acmeCert = (name: string) => path.join(sandbox.root, 'var/lib/srvctl/acme/certs', `${name}.pem`);
  const masterPid = async () => Number((await readFile(path.join(sandbox.root, 'run/srvctl/haproxy/haproxy.pid'), 'utf8')).trim());

  function startIn(ns: string, args: string[], env: Record<string, string> = {}): void {
    const child = execa('ip', ['netns', 'exec', ns, ...args], { reject: false, stdin: 'ignore', env, cwd: sandbox.root });
    if (child.pid !== undefined) sandbox.track(child.pid);
  }

  async function standIn(short: string, ip: string, bridge: string): Promise<void> {
    const ns = `${sandbox.prefix}-${short}`;
    standIns.push(ns);
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['link', 'add', `${sandbox.prefix}${short}`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'host0', 'netns', ns]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}${short}`, 'master', bridge, 'up');
    await execa('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'host0']);
    await execa('ip', ['-n', ns, 'link', 'set', 'host0', 'up']);
    const www = path.join(sandbox.root, 'www', short);
    await execa('mkdir', ['-p', www]);
    await writeFile(path.join(www, 'index.html'), `hello from ${short}\n`);
    startIn(ns, ['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
  }

  /** Issuer and SAN of what the proxy presents for `name`. */
  async function served(name: string): Promise<string> {
    const hello = await execa('ip', ['netns', 'exec', acmeNs, 'openssl', 's_client', '-connect', `${UPLINK_IP}:443`, '-servername', name], {
      input: '',
      reject: false,
      timeout: 20_000,
    });
    return (await execa('openssl', ['x509', '-noout', '-issuer', '-ext', 'subjectAltName'], { input: hello.stdout, reject: false })).stdout;
  }

  async function curlIn(...args: string[]) {
    return execa('ip', ['netns', 'exec', acmeNs, 'curl', '-s', '--max-time', '20', ...args], { reject: false });
  }

  async function waitForPebble(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await curlIn('--cacert', path.join(sandbox.root, 'pebble/ca.crt'), `https://${ACME_IP}:14000/dir`)).exitCode === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('pebble did not come up');
  }

  beforeAll(async () => {
    sandbox = await createSandbox();
    acmeNs = `${sandbox.prefix}-ac`;
    datastore = path.join(sandbox.root, 'datastore');
    data = generateDatastore({ host: HOST, hostnet: 1, resellers: 1, usersPerReseller: 2 });
    (data.containers[C2] as { aliases?: string[] }).aliases = [BAD];
    await writeDatastore(datastore, data);
    await writeFile(
      path.join(datastore, 'settings.json'),
      JSON.stringify({
        proxy: {
          acme: { directory_url: `https://${ACME_IP}:14000/dir`, contact: 'hostmaster@example.net', ca_file: '/etc/srvctl/acme-server-ca.pem' },
        },
      }),
    );

    // The ACME server's own TLS: a throwaway CA sc is told to trust (settings ca_file, under --root).
    const pki = path.join(sandbox.root, 'pebble');
    await execa('mkdir', ['-p', pki, path.join(sandbox.root, 'etc/srvctl')]);
    selfSignedEc({ key: `${pki}/ca.key`, cert: `${pki}/ca.crt`, subject: '/CN=acme server test CA', days: 2 });
    ecRequest({ key: `${pki}/key.pem`, csr: `${pki}/srv.csr`, subject: '/CN=pebble' });
    await writeFile(`${pki}/srv.ext`, `subjectAltName=IP:${ACME_IP}\n`);
    signRequest({
      csr: `${pki}/srv.csr`,
      caCert: `${pki}/ca.crt`,
      caKey: `${pki}/ca.key`,
      cert: `${pki}/cert.pem`,
      days: 2,
      extfile: `${pki}/srv.ext`,
    });
    await writeFile(path.join(sandbox.root, 'etc/srvctl/acme-server-ca.pem'), await readFile(`${pki}/ca.crt`));
    await writeFile(
      `${pki}/pebble-config.json`,
      JSON.stringify({
        pebble: {
          listenAddress: '0.0.0.0:14000',
          managementListenAddress: '0.0.0.0:15000',
          certificate: `${pki}/cert.pem`,
          privateKey: `${pki}/key.pem`,
          httpPort: 80,
          tlsPort: 5001,
          ocspResponderURL: '',
          externalAccountBindingRequired: false,
        },
      }),
    );

    await execa('ip', ['netns', 'add', acmeNs]);
    await execa('ip', ['-n', acmeNs, 'link', 'set', 'lo', 'up']);
    await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', acmeNs]);
    await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
    await sandbox.ip('addr', 'add', `${UPLINK_IP}/24`, 'dev', 'eth0');
    await sandbox.ip('link', 'set', 'eth0', 'up');
    await execa('ip', ['-n', acmeNs, 'addr', 'add', `${ACME_IP}/24`, 'dev', 'eth0']);
    await execa('ip', ['-n', acmeNs, 'link', 'set', 'eth0', 'up']);

    // Every name resolves to the proxy, except the one the CA must fail to validate.
    startIn(acmeNs, [
      'pebble-challtestsrv',
      '-defaultIPv4',
      UPLINK_IP,
      '-defaultIPv6',
      '',
      '-dns01',
      '127.0.0.1:8053',
      '-management',
      '127.0.0.1:8055',
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
    ]);
    startIn(acmeNs, ['pebble', '-config', `${pki}/pebble-config.json`, '-dnsserver', '127.0.0.1:8053'], {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
    });
    await waitForPebble();
    for (let i = 0; i < 50; i++) {
      const added = await curlIn('-X', 'POST', '-d', JSON.stringify({ host: `${BAD}.`, addresses: ['192.0.2.200'] }), 'http://127.0.0.1:8055/add-a');
      if (added.exitCode === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);

  afterAll(async () => {
    await sandbox?.destroy();
    for (const ns of [acmeNs, ...standIns]) if (ns) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('orders a certificate per name through the proxy; the name the CA cannot validate fails alone and is reported', async () => {
    const applied = await sc('apply', ...TARGETS);
    expect(applied.exitCode).not.toBe(0);
    expect(applied.stdout).toMatch(
      new RegExp(`certificate/${BAD.replace(/\./g, '\\.')}: .*ACME order for ${BAD.replace(/\./g, '\\.')} failed 1 time`),
    );
    for (const name of [C1, `www.${C1}`, C2, `www.${C2}`]) {
      const file = await stat(acmeCert(name));
      expect((file.mode & 0o777).toString(8)).toBe('600');
    }
    expect(((await stat(path.join(sandbox.root, 'var/lib/srvctl/acme/account.key'))).mode & 0o777).toString(8)).toBe('600');
    await expect(stat(acmeCert(BAD))).rejects.toThrow(/ENOENT/);
    // The private key never reaches the output.
    expect(applied.stdout + applied.stderr).not.toMatch(/PRIVATE KEY/);

    await standIn('c1', '10.17.1.20', 'sc-17-1');
    await standIn('c2', '10.17.2.20', 'sc-17-2');
    expect(await served(C1)).toMatch(new RegExp(`issuer= ?CN ?= ?Pebble Intermediate CA[\\s\\S]*DNS:${C1.replace(/\./g, '\\.')}`));
    expect(await served(`www.${C2}`)).toMatch(/Pebble Intermediate CA/);
    const viaHttp = await curlIn('--resolve', `${C1}:80:${UPLINK_IP}`, '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://${C1}/`);
    expect(viaHttp.stdout).toBe(`301 https://${C1}/`);
    // Verified against the CA pebble issued from (its management API hands out the root).
    const root = await curlIn('--cacert', path.join(sandbox.root, 'pebble/ca.crt'), `https://${ACME_IP}:15000/roots/0`);
    await writeFile(path.join(sandbox.root, 'pebble/issuing-root.pem'), root.stdout);
    const viaHttps = await curlIn(
      '--cacert',
      path.join(sandbox.root, 'pebble/issuing-root.pem'),
      '--resolve',
      `${C2}:443:${UPLINK_IP}`,
      `https://${C2}/`,
    );
    expect({ exitCode: viaHttps.exitCode, body: viaHttps.stdout }).toEqual({ exitCode: 0, body: 'hello from c2' });

    // Within the backoff, the next apply reports the failure again without a new order.
    const again = await sc('apply', ...TARGETS);
    expect(again.stdout).toMatch(/ACME order for bad\.example\.org failed 1 time .*next attempt after/);
  }, 400_000);

  it('with the failing alias gone, a second diff is clean', async () => {
    delete (data.containers[C2] as { aliases?: string[] }).aliases;
    await writeDatastore(datastore, data);
    const applied = await sc('apply', ...TARGETS);
    expect({ exitCode: applied.exitCode, stdout: applied.stdout }).toEqual({ exitCode: 0, stdout: expect.any(String) });
    const diff = await sc('diff', ...TARGETS);
    expect({ exitCode: diff.exitCode, stdout: diff.stdout }).toEqual({ exitCode: 0, stdout: expect.stringMatching(/No changes/) });
  }, 400_000);

  it('a certificate due within 30 days is renewed and served without a restart', async () => {
    // Stand-in for an old ACME certificate: valid for 10 more days, from another CA.
    const dir = path.join(sandbox.root, 'old');
    await execa('mkdir', ['-p', dir]);
    selfSignedEc({ key: `${dir}/k`, cert: `${dir}/c`, subject: `/CN=${C2}`, days: 10, extra: ['-addext', `subjectAltName=DNS:${C2}`] });
    await writeFile(acmeCert(C2), (await readFile(`${dir}/c`, 'utf8')) + (await readFile(`${dir}/k`, 'utf8')), { mode: 0o600 });
    const diff = await sc('-o', 'json', 'diff', ...TARGETS);
    const plan = JSON.parse(diff.stdout) as { changes: { action: string; kind: string; id: string; reasons: { path: string }[] }[] };
    expect(plan.changes.map((c) => `${c.action} ${c.kind}/${c.id} ${c.reasons.map((r) => r.path).join(',')}`).sort()).toEqual([
      `update certificate/${C2} /renewal`,
      'update reverse-proxy/haproxy /certificates',
    ]);
    const pid = await masterPid();
    const applied = await sc('apply', ...TARGETS);
    expect({ exitCode: applied.exitCode, stdout: applied.stdout }).toEqual({ exitCode: 0, stdout: expect.any(String) });
    expect(await served(C2)).toMatch(/Pebble Intermediate CA/);
    expect(await masterPid()).toBe(pid);
    expect((await sc('diff', ...TARGETS)).exitCode).toBe(0);
  }, 400_000);
});
