// Parsing the PEM bundles the proxy serves: names from the SAN (or CN), expiry, and usable only
// with the matching private key and inside the validity period. Reading the operator's directory:
// only root-only files and directories are loaded, the others refused unread (runs as root).
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFilesDriver } from '../../../src/drivers/files.js';
import type { FilesDriver } from '../../../src/drivers/types.js';
import { inventoryDigest, notRootOnly, parsePemBundle, readCertificateInventory } from '../../../src/resources/proxy-certificates.js';
import { selfSignedEc } from '../../test-certificates.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sc-pem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string, extra: string[] = []): { cert: string; key: string } {
  const base = path.join(dir, name.replace('*', 'star'));
  selfSignedEc({ key: `${base}.key`, cert: `${base}.crt`, subject: `/CN=${name}`, days: 30, extra });
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

describe('readCertificateInventory: operator certificates are root-only', () => {
  const now = new Date();
  const a = selfSigned('ok.example.com');
  const b = selfSigned('b.example.com');
  let root: string;
  let reads: string[];
  let files: FilesDriver;
  const certDir = () => path.join(root, 'etc/srvctl/cert');
  const put = (rel: string, text: string, mode = 0o600) => {
    const full = path.join(certDir(), rel);
    mkdirSync(path.dirname(full), { recursive: true, mode: 0o755 });
    writeFileSync(full, text, { mode });
    chmodSync(full, mode);
  };

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'sc-certdir-'));
    mkdirSync(certDir(), { recursive: true, mode: 0o755 });
    const real = createFilesDriver(root);
    reads = [];
    // Records every file whose content is read: a refused PEM must never be.
    files = { ...real, read: async (p, o) => (reads.push(p), real.read(p, o)), readBytes: async (p, o) => (reads.push(p), real.readBytes(p, o)) };
    put('ok.example.com.pem', a.cert + a.key);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('loads a root-owned PEM that only root may write; nothing refused', async () => {
    const inventory = await readCertificateInventory(files, now);
    expect(inventory.found.map((f) => [f.info.path, f.info.usable])).toEqual([['/etc/srvctl/cert/ok.example.com.pem', true]]);
    expect(inventory.refused).toEqual([]);
  });

  it('refuses a group- or world-writable PEM, or one not owned by root, without reading it', async () => {
    put('gw.example.com.pem', b.cert + b.key, 0o620);
    put('ww.example.com.pem', b.cert + b.key, 0o602);
    put('owned.example.com.pem', b.cert + b.key);
    chownSync(path.join(certDir(), 'owned.example.com.pem'), 1234, 0);
    const inventory = await readCertificateInventory(files, now);
    expect(inventory.found.map((f) => f.info.path)).toEqual(['/etc/srvctl/cert/ok.example.com.pem']);
    expect(inventory.refused.map((r) => [r.path, r.reason])).toEqual([
      ['/etc/srvctl/cert/gw.example.com.pem', expect.stringContaining('writable by group (mode 0620): refused, not loaded')],
      ['/etc/srvctl/cert/owned.example.com.pem', expect.stringContaining('owned by uid 1234, not root')],
      ['/etc/srvctl/cert/ww.example.com.pem', expect.stringContaining('writable by others (mode 0602)')],
    ]);
    expect(reads).toEqual(['/etc/srvctl/cert/ok.example.com.pem']);
  });

  it('refuses a DOMAIN/ directory others may write, and everything in it', async () => {
    put('example.org/wildcard.pem', b.cert + b.key);
    chmodSync(path.join(certDir(), 'example.org'), 0o777);
    const inventory = await readCertificateInventory(files, now);
    expect(inventory.refused).toEqual([
      {
        path: '/etc/srvctl/cert/example.org',
        reason: expect.stringMatching(/writable by group and others \(mode 0777\): refused, nothing in it is loaded/),
      },
    ]);
    expect(reads).toEqual(['/etc/srvctl/cert/ok.example.com.pem']);
  });

  it('refuses the whole cert directory when it, or /etc/srvctl above it, is not root-only', async () => {
    chmodSync(certDir(), 0o775);
    let inventory = await readCertificateInventory(files, now);
    expect(inventory.found).toEqual([]);
    expect(inventory.refused).toEqual([
      { path: '/etc/srvctl/cert', reason: expect.stringContaining('/etc/srvctl/cert is writable by group (mode 0775)') },
    ]);
    chmodSync(certDir(), 0o755);
    chownSync(path.join(root, 'etc/srvctl'), 1000, 1000);
    inventory = await readCertificateInventory(files, now);
    expect(inventory.found).toEqual([]);
    expect(inventory.refused).toEqual([{ path: '/etc/srvctl', reason: expect.stringContaining('/etc/srvctl is owned by uid 1000, not root') }]);
    expect(reads).toEqual([]);
  });

  it('notRootOnly names each problem', () => {
    expect(notRootOnly({ uid: 0, mode: 0o600 })).toBeUndefined();
    expect(notRootOnly({ uid: 0, mode: 0o755 })).toBeUndefined();
    expect(notRootOnly({ uid: 7, mode: 0o666 })).toBe('owned by uid 7, not root, writable by group and others (mode 0666)');
  });
});
