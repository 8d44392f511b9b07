// The openssl driver's command lines, and that its key and request round-trip through real openssl
// without the key ever appearing in a command line.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createExec } from '../../../src/drivers/exec.js';
import {
  HOST_CERT_EXTENSIONS,
  USER_VPN_CLIENT_EKU,
  createCaArgs,
  crlIndex,
  normalSerial,
  parseCrlText,
  createOpensslDriver,
  createRequestArgs,
  generateKeyArgs,
  signRequestArgs,
} from '../../../src/drivers/openssl.js';
import type { Exec, ExecOptions } from '../../../src/drivers/types.js';

describe('openssl command lines', () => {
  it('EC P-256 keys, CN-only requests, a CA with CA:TRUE, host certs with serverAuth+clientAuth', () => {
    expect(generateKeyArgs()).toEqual(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    expect(createRequestArgs('/r/host.key', 'h1.test')).toEqual(['req', '-new', '-key', '/r/host.key', '-subj', '/CN=h1.test', '-out', '-']);
    expect(createCaArgs('/r/ca.key', 'srvctl cluster CA test', 3650)).toEqual(
      expect.arrayContaining(['-x509', 'basicConstraints=critical,CA:TRUE', '3650']),
    );
    const sign = signRequestArgs('/t/r.csr', '/t/h.ext', { request: '', caCertPath: '/r/ca.crt', caKeyPath: '/r/ca.key', days: 825 }, 'ab');
    expect(sign).toEqual([
      'x509',
      '-req',
      '-in',
      '/t/r.csr',
      '-CA',
      '/r/ca.crt',
      '-CAkey',
      '/r/ca.key',
      '-set_serial',
      '0xab',
      '-days',
      '825',
      '-extfile',
      '/t/h.ext',
      '-sha256',
      '-out',
      '-',
    ]);
    expect(HOST_CERT_EXTENSIONS).toContain('extendedKeyUsage=serverAuth,clientAuth');
  });
});

describe('openssl driver against real openssl', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-openssl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('never runs in --netns and never passes key text as an argument', async () => {
    const real = createExec();
    const calls: { args: readonly string[]; options?: ExecOptions }[] = [];
    const exec: Exec = {
      run: (command, args, options) => {
        calls.push({ args, ...(options ? { options } : {}) });
        return real.run(command, args, options);
      },
    };
    const openssl = createOpensslDriver(exec);
    const key = await openssl.generateKey();
    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const keyPath = path.join(dir, 'host.key');
    await writeFile(keyPath, key, { mode: 0o600 });
    const request = await openssl.createRequest(keyPath, 'h1.test');
    const info = await openssl.describeRequest(request);
    expect(info.commonName).toBe('h1.test');
    expect(info.publicKey).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    for (const call of calls) {
      expect(call.options?.inNetns).toBe(false);
      expect(call.args.join(' ')).not.toContain('PRIVATE KEY');
    }
    await expect(openssl.describeRequest('garbage')).rejects.toThrow();
  });
});

describe('user VPN device certificates and the CRL, with real openssl', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sc-openssl-crl-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the CRL index and its parse are pure', () => {
    expect(crlIndex([{ serial: 'AB', revokedAt: '2026-12-01T10:20:30.000Z' }])).toBe('R\t491231235959Z\t261201102030Z\tAB\tunknown\t/CN=revoked\n');
    expect(normalSerial('00ab')).toBe('AB');
    expect(crlIndex([{ serial: 'ABC', revokedAt: '2026-12-01T10:20:30.000Z' }])).toContain('\t0ABC\t');
    const text = [
      'Certificate Revocation List (CRL):',
      '        Last Update: Dec  1 10:20:30 2026 GMT',
      '        Next Update: Dec  1 10:20:30 2027 GMT',
      'Revoked Certificates:',
      '    Serial Number: 1A2B',
      '        Revocation Date: Dec  1 10:20:30 2026 GMT',
    ].join('\n');
    expect(parseCrlText(text)).toEqual({
      nextUpdate: '2027-12-01T10:20:30.000Z',
      revoked: [{ serial: '1A2B', revokedAt: '2026-12-01T10:20:30.000Z' }],
    });
  });

  it('key and request in memory; a client certificate with clientAuth and the user VPN EKU, no serverAuth; a CRL that lists it', async () => {
    const openssl = createOpensslDriver(createExec());
    const caKey = path.join(dir, 'ca.key');
    const caCert = path.join(dir, 'ca.crt');
    await writeFile(caKey, await openssl.generateKey(), { mode: 0o600 });
    await writeFile(caCert, await openssl.createCaCertificate(caKey, 'test ca', 30));
    const { key, request } = await openssl.createKeyAndRequest('ua@laptop');
    expect(key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(request).not.toContain('PRIVATE KEY');
    expect((await openssl.describeRequest(request)).commonName).toBe('ua@laptop');
    const cert = new X509Certificate(
      await openssl.signRequest({ request, caCertPath: caCert, caKeyPath: caKey, days: 30, profile: 'user-vpn-client' }),
    );
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2', USER_VPN_CLIENT_EKU]);
    const host = new X509Certificate(await openssl.signRequest({ request, caCertPath: caCert, caKeyPath: caKey, days: 30 }));
    expect(host.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const empty = await openssl.describeCrl(await openssl.createCrl({ caCertPath: caCert, caKeyPath: caKey, revoked: [], days: 365 }), caCert);
    expect(empty.revoked).toEqual([]);
    expect(Date.parse(empty.nextUpdate) - Date.now()).toBeGreaterThan(364 * 86_400_000);
    const at = '2026-11-30T08:00:00.000Z';
    const crl = await openssl.createCrl({
      caCertPath: caCert,
      caKeyPath: caKey,
      revoked: [{ serial: normalSerial(cert.serialNumber), revokedAt: at }],
      days: 365,
    });
    expect((await openssl.describeCrl(crl, caCert)).revoked).toEqual([{ serial: normalSerial(cert.serialNumber), revokedAt: at }]);
    // Another CA's CRL does not verify.
    const otherKey = path.join(dir, 'other.key');
    const otherCert = path.join(dir, 'other.crt');
    await writeFile(otherKey, await openssl.generateKey(), { mode: 0o600 });
    await writeFile(otherCert, await openssl.createCaCertificate(otherKey, 'test ca', 30));
    await expect(openssl.describeCrl(crl, otherCert)).rejects.toThrow(/does not verify/);
  });
});
