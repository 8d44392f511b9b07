// The cluster PKI through the real planner and executor, with real openssl in temp dirs: three
// hosts sharing one datastore dir converge GitOps-style; keys stay home; renewal and refusals.
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import { createExec } from '../../../src/drivers/exec.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { createOpensslDriver, parseRequestDescription } from '../../../src/drivers/openssl.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { applyHost, planHost } from '../../../src/reconciler/host-pass.js';
import { pkiHandler } from '../../../src/resources/pki.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';
import { pkiExchange } from '../../../src/datastore/pki-exchange.js';

const handlers = { pki: pkiHandler };
const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
    'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
    'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
  },
  other: { 'x9.test': { hostnet: 9, host_ip: '198.51.100.9' } },
};
const model = { clusters, users: {}, containers: {}, settings: {} } as unknown as Model;
type Name = 'h1.test' | 'h2.test' | 'h3.test';

let base: string;
let datastore: string;
const hosts = new Map<Name, { host: HostContext; drivers: Drivers }>();

function setUp(name: Name, readOnly = false) {
  const root = path.join(base, name);
  const host: HostContext = { name, cluster: 'test', host: clusters.test[name], root, pki: pkiExchange({ dir: datastore, readOnly }, name, root) };
  const exec = createExec();
  const drivers: Drivers = {
    ...baseDrivers(exec, createFilesDriver(root)),
    openssl: createOpensslDriver(exec),
    ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
  };
  hosts.set(name, { host, drivers });
}

const apply = (name: Name) => {
  const { host, drivers } = hosts.get(name)!;
  return applyHost({ model, host, drivers, handlers, concurrency: 2, command: 'test' });
};
const plan = (name: Name) => {
  const { host, drivers } = hosts.get(name)!;
  return planHost({ model, host, drivers, handlers });
};

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

const names = ['h1.test', 'h2.test', 'h3.test'] as const;

// Every case starts from an empty cluster and builds the state it needs: no case depends on another.
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-pki-'));
  datastore = path.join(base, 'datastore');
  await mkdir(datastore);
  for (const name of names) setUp(name);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

/** The first pass of every host: keys, requests, the CA (h1 certifies itself at once). */
async function firstPasses(): Promise<void> {
  for (const name of names) await apply(name);
}

/** A converged cluster: first passes, then the CA host signs and every host installs its certificate. */
async function converged(): Promise<void> {
  await firstPasses();
  for (const name of names) expect((await apply(name)).converged).toBe(true);
}

describe('cluster PKI, GitOps-style', () => {
  it('first passes: every host makes its key (0600) and publishes a request; the CA host publishes ca.crt and certifies itself at once; the others wait', async () => {
    for (const name of ['h1.test', 'h2.test', 'h3.test'] as const) {
      const result = await apply(name);
      expect(result.converged).toBe(name === 'h1.test');
      const failed = result.report.results.filter((r) => r.status === 'failed').map((r) => `${r.ref.kind}/${r.ref.id}`);
      expect(failed).toEqual(name === 'h1.test' ? [] : ['pki/host-cert']);
      const key = path.join(base, name, 'etc/srvctl/pki/host.key');
      expect((await stat(key)).mode & 0o777).toBe(0o600);
    }
    expect((await readdir(path.join(datastore, 'pki/requests'))).sort()).toEqual(['h1.test.csr', 'h2.test.csr', 'h3.test.csr']);
    expect(await readdir(path.join(datastore, 'pki'))).toContain('ca.crt');
  }, 60_000);

  it("the CA host signs the cluster's requests (not another cluster's); every host then installs its cert and converges", async () => {
    await firstPasses();
    // A request of a host outside our cluster is left alone.
    await writeFile(path.join(datastore, 'pki/requests/x9.test.csr'), await readFile(path.join(datastore, 'pki/requests/h2.test.csr'), 'utf8'));
    expect((await plan('h1.test')).actions.map((a) => `${a.type} ${a.ref.id}`)).toEqual(['update signing']);
    for (const name of ['h1.test', 'h2.test', 'h3.test'] as const) expect((await apply(name)).converged).toBe(true);
    expect((await readdir(path.join(datastore, 'pki/certs'))).sort()).toEqual(['h1.test.crt', 'h2.test.crt', 'h3.test.crt']);
    const ca = new X509Certificate(await readFile(path.join(datastore, 'pki/ca.crt'), 'utf8'));
    const cert = new X509Certificate(await readFile(path.join(base, 'h2.test/etc/srvctl/pki/host.crt'), 'utf8'));
    expect(cert.subject).toBe('CN=h2.test');
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.toLegacyObject().ext_key_usage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    for (const name of ['h1.test', 'h2.test', 'h3.test'] as const) expect((await plan(name)).inSync).toBe(true);
  }, 60_000);

  it('no private key in the datastore; the CA key exists only on the CA host', async () => {
    await converged();
    for (const file of await filesUnder(datastore)) expect(await readFile(file, 'utf8')).not.toContain('PRIVATE KEY');
    await expect(stat(path.join(base, 'h1.test/etc/srvctl/pki/ca.key'))).resolves.toBeDefined();
    await expect(stat(path.join(base, 'h2.test/etc/srvctl/pki/ca.key'))).rejects.toThrow();
  }, 60_000);

  it('a new key (lost, replaced) is noticed as a mismatch, re-requested and re-signed', async () => {
    await converged();
    await rm(path.join(base, 'h3.test/etc/srvctl/pki/host.key'));
    expect((await plan('h3.test')).inSync).toBe(false);
    expect((await apply('h3.test')).converged).toBe(false); // new key, new request, waiting
    const pending = (await plan('h1.test')).actions.find((a) => a.ref.id === 'signing');
    expect(JSON.stringify(pending?.reasons)).toContain('h3.test');
    expect((await apply('h1.test')).converged).toBe(true);
    expect((await apply('h3.test')).converged).toBe(true);
  }, 60_000);

  it('a certificate that expires within 30 days is re-issued by the CA host and installed by its host', async () => {
    await converged();
    // A 10-day certificate for h2's key, signed by the cluster CA, published and installed.
    const h1 = hosts.get('h1.test')!;
    const short = await h1.drivers.openssl.signRequest({
      request: await readFile(path.join(datastore, 'pki/requests/h2.test.csr'), 'utf8'),
      caCertPath: path.join(base, 'h1.test/etc/srvctl/pki/ca.crt'),
      caKeyPath: path.join(base, 'h1.test/etc/srvctl/pki/ca.key'),
      days: 10,
    });
    await writeFile(path.join(datastore, 'pki/certs/h2.test.crt'), short);
    await writeFile(path.join(base, 'h2.test/etc/srvctl/pki/host.crt'), short);
    const due = (await plan('h2.test')).actions.find((a) => a.ref.id === 'host-cert');
    expect(JSON.stringify(due?.reasons)).toContain('renewDue');
    expect(JSON.stringify((await plan('h1.test')).actions.find((a) => a.ref.id === 'signing')?.reasons)).toContain('h2.test');
    expect((await apply('h1.test')).converged).toBe(true);
    expect((await apply('h2.test')).converged).toBe(true);
    const renewed = new X509Certificate(await readFile(path.join(base, 'h2.test/etc/srvctl/pki/host.crt'), 'utf8'));
    expect(Date.parse(renewed.validTo) - Date.now()).toBeGreaterThan(800 * 86_400_000);
    for (const name of ['h1.test', 'h2.test', 'h3.test'] as const) expect((await plan(name)).inSync).toBe(true);
  }, 60_000);

  it('a wrong key mode is fixed in place', async () => {
    await converged();
    const { chmod } = await import('node:fs/promises');
    const key = path.join(base, 'h2.test/etc/srvctl/pki/host.key');
    const before = await readFile(key, 'utf8');
    await chmod(key, 0o644);
    expect((await plan('h2.test')).actions.map((a) => a.ref.id)).toEqual(['host-key']);
    expect((await apply('h2.test')).converged).toBe(true);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    expect(await readFile(key, 'utf8')).toBe(before);
  }, 60_000);

  it('on a read-only datastore a host that must publish refuses with a clear message', async () => {
    await apply('h1.test'); // the CA exists; h2 has never published
    setUp('h2.test', true);
    const result = await apply('h2.test');
    const failure = result.report.results.find((r) => r.ref.id === 'host-cert');
    expect(failure?.error).toMatch(/read-only/);
    await expect(readdir(path.join(datastore, 'pki/requests'))).resolves.toEqual(['h1.test.csr']);
  }, 60_000);
});

describe('openssl request description', () => {
  it('reads the CN and public key', () => {
    const out = 'subject=CN=h1.test\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n';
    expect(parseRequestDescription(out)).toEqual({
      commonName: 'h1.test',
      publicKey: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
    });
  });
});
