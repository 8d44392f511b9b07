// The CA host's user VPN share through the real planner and executor, with real openssl in temp
// dirs: device requests signed as client certificates and published, the CRL, revocation of a
// removed or re-keyed device, refusals of material the CA does not certify.
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import { pkiExchange } from '../../../src/datastore/pki-exchange.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';
import { createExec } from '../../../src/drivers/exec.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { createOpensslDriver, normalSerial, USER_VPN_CLIENT_EKU } from '../../../src/drivers/openssl.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { applyHost, planHost } from '../../../src/reconciler/host-pass.js';
import { pkiHandler } from '../../../src/resources/pki.js';

const handlers = { pki: pkiHandler };
const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
    'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
  },
};
let base: string;
let datastore: string;
let host: HostContext;
let drivers: Drivers;
const openssl = createOpensslDriver(createExec());

const modelWith = (vpnClients: unknown[]): Model =>
  ({
    clusters,
    users: { ua: { reseller: 'root', user_id: 1, uid: 2001, ...(vpnClients.length ? { vpn_clients: vpnClients } : {}) } },
    containers: {},
    settings: {},
  }) as unknown as Model;
const apply = (model: Model) => applyHost({ model, host, drivers, handlers, concurrency: 2, command: 'test' });
const plan = (model: Model) => planHost({ model, host, drivers, handlers });
const published = async (cn: string) => new X509Certificate(await readFile(path.join(datastore, 'pki/clients', `${cn}.crt`), 'utf8'));
const crlSerials = async () => {
  const info = await openssl.describeCrl(await readFile(path.join(datastore, 'pki/crl.pem'), 'utf8'), path.join(datastore, 'pki/ca.crt'));
  return info.revoked.map((r) => r.serial);
};

beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-pki-clients-'));
  datastore = path.join(base, 'datastore');
  await mkdir(datastore);
  const root = path.join(base, 'h1.test');
  host = {
    name: 'h1.test',
    cluster: 'test',
    host: clusters.test['h1.test'],
    root,
    pki: pkiExchange({ dir: datastore, readOnly: false }, 'h1.test', root),
  };
  const exec = createExec();
  drivers = {
    ...baseDrivers(exec, createFilesDriver(root)),
    openssl: createOpensslDriver(exec),
    ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
  };
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('user VPN device certificates on the CA host', () => {
  it('a cluster without devices publishes no CRL and no device certificate', async () => {
    expect((await apply(modelWith([]))).converged).toBe(true);
    expect(await readdir(path.join(datastore, 'pki'))).not.toContain('crl.pem');
    expect((await plan(modelWith([]))).inSync).toBe(true);
  }, 60_000);

  it('signs a device request as a client certificate and publishes it with an empty CRL; a removed device is revoked', async () => {
    const { request } = await openssl.createKeyAndRequest('ua@laptop');
    const model = modelWith([{ device: 'laptop', host_part: 201, csr: request }]);
    expect((await apply(model)).converged).toBe(true);
    expect((await plan(model)).inSync).toBe(true);
    const cert = await published('ua@laptop');
    expect(cert.subject).toBe('CN=ua@laptop');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2', USER_VPN_CLIENT_EKU]);
    expect(cert.verify(new X509Certificate(await readFile(path.join(datastore, 'pki/ca.crt'), 'utf8')).publicKey)).toBe(true);
    expect(await crlSerials()).toEqual([]);

    const removed = modelWith([]);
    const pending = await plan(removed);
    expect(pending.actions.map((a) => `${a.type} ${a.ref.id}`)).toEqual(['update clients']);
    expect(JSON.stringify(pending.actions[0]?.reasons)).toContain('ua@laptop');
    expect((await apply(removed)).converged).toBe(true);
    expect(await crlSerials()).toEqual([normalSerial(cert.serialNumber)]);
    expect((await plan(removed)).inSync).toBe(true);
  }, 60_000);

  it('a new key for the device: the old certificate is revoked and a new one issued in the same pass', async () => {
    const first = await openssl.createKeyAndRequest('ua@laptop');
    expect((await apply(modelWith([{ device: 'laptop', host_part: 201, csr: first.request }]))).converged).toBe(true);
    const old = await published('ua@laptop');
    const second = await openssl.createKeyAndRequest('ua@laptop');
    const rekeyed = modelWith([{ device: 'laptop', host_part: 201, csr: second.request }]);
    expect((await apply(rekeyed)).converged).toBe(true);
    const renewed = await published('ua@laptop');
    expect(renewed.serialNumber).not.toBe(old.serialNumber);
    expect(await crlSerials()).toEqual([normalSerial(old.serialNumber)]);
    expect((await plan(rekeyed)).inSync).toBe(true);
  }, 60_000);

  it('refused, never signed: a request for another name, a given certificate without the user VPN EKU', async () => {
    const other = await openssl.createKeyAndRequest('ub@laptop');
    const caKey = path.join(base, 'h1.test/etc/srvctl/pki/ca.key');
    expect((await apply(modelWith([]))).converged).toBe(true);
    const hostLike = await openssl.signRequest({
      request: other.request,
      caCertPath: path.join(datastore, 'pki/ca.crt'),
      caKeyPath: caKey,
      days: 30,
    });
    const model = modelWith([
      { device: 'laptop', host_part: 201, csr: other.request },
      { device: 'phone', host_part: 202, certificate: hostLike },
    ]);
    expect((await apply(model)).converged).toBe(true); // the CRL, once there are devices
    expect((await plan(model)).inSync).toBe(true);
    const observed = await pkiHandler.observe(drivers, host, { model, desired: pkiHandler.desired(model, host) });
    const clients = observed.find((o) => o.ref.id === 'clients');
    expect(clients?.description).toContain('ua@laptop: the request in the datastore names "ub@laptop"');
    expect(clients?.description).toContain('ua@phone: the certificate in the datastore is not a current user VPN certificate');
    expect(await readdir(path.join(datastore, 'pki'))).not.toContain('clients');
  }, 60_000);
});
