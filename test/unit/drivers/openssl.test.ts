// The openssl driver's command lines, and that its key and request round-trip through real openssl
// without the key ever appearing in a command line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createExec } from '../../../src/drivers/exec.js';
import {
  HOST_CERT_EXTENSIONS,
  createCaArgs,
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
