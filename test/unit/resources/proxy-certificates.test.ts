// Parsing the PEM bundles the proxy serves: names from the SAN (or CN), expiry, and usable only
// with the matching private key and inside the validity period.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inventoryDigest, parsePemBundle } from '../../../src/resources/proxy-certificates.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sc-pem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string, extra: string[] = []): { cert: string; key: string } {
  const base = path.join(dir, name.replace('*', 'star'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${base}.key`,
      '-out',
      `${base}.crt`,
      '-days',
      '30',
      '-subj',
      `/CN=${name}`,
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(`${base}.crt`, 'utf8'), key: readFileSync(`${base}.key`, 'utf8') };
}

describe('parsePemBundle', () => {
  const now = new Date();
  const a = selfSigned('a.example.com', ['-addext', 'subjectAltName=DNS:a.example.com,DNS:www.a.example.com']);
  const wild = selfSigned('*.example.org');

  it('reads SAN names, expiry, and a matching key as usable', () => {
    const info = parsePemBundle('/etc/srvctl/cert/a.example.com.pem', 'operator', a.cert + a.key, now);
    expect(info.names).toEqual(['a.example.com', 'www.a.example.com']);
    expect(info.usable).toBe(true);
    expect(new Date(info.notAfter).getTime() - now.getTime()).toBeGreaterThan(29 * 86_400_000);
  });

  it('falls back to the CN without a SAN', () => {
    expect(parsePemBundle('/w.pem', 'operator', wild.cert + wild.key, now).names).toEqual(['*.example.org']);
  });

  it('is not usable without its key, with another key, expired, or unparsable', () => {
    expect(parsePemBundle('/x.pem', 'operator', a.cert, now).usable).toBe(false);
    expect(parsePemBundle('/x.pem', 'operator', a.cert + wild.key, now).usable).toBe(false);
    expect(parsePemBundle('/x.pem', 'operator', a.cert + a.key, new Date(Date.now() + 60 * 86_400_000)).usable).toBe(false);
    expect(parsePemBundle('/x.pem', 'acme', 'not a pem', now)).toEqual({ path: '/x.pem', source: 'acme', names: [], notAfter: '', usable: false });
  });

  it('digests the inventory by path, bytes and usability, in any order', () => {
    const one = { info: parsePemBundle('/a.pem', 'operator', a.cert + a.key, now), sha256: 'aa' };
    const two = { info: parsePemBundle('/b.pem', 'operator', wild.cert + wild.key, now), sha256: 'bb' };
    expect(inventoryDigest([one, two])).toBe(inventoryDigest([two, one]));
    expect(inventoryDigest([one, two])).not.toBe(inventoryDigest([one, { ...two, sha256: 'cc' }]));
  });
});
