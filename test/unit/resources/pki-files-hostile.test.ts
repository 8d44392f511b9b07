// The datastore's pki/ exchange is hostile input: a `pki` link, a link at a request or certificate,
// or a FIFO there is refused for reads and writes; nothing outside the datastore is read or written.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HostContext } from '../../../src/host-context.js';
import { pkiExchange } from '../../../src/datastore/pki-exchange.js';
import { datastorePki } from '../../../src/resources/pki-files.js';

let base: string;
let ds: string;
let outside: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-pki-hostile-'));
  ds = path.join(base, 'ds');
  outside = path.join(base, 'outside');
  await mkdir(ds);
  await mkdir(outside);
  await writeFile(path.join(outside, 'ca.crt'), 'TOPSECRET not a certificate\n');
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const host = (): HostContext => ({
  name: 'h2.test',
  cluster: 'test',
  host: { hostnet: 2, host_ip: '192.0.2.12' },
  root: path.join(base, 'root'),
  pki: pkiExchange({ dir: ds, readOnly: false }, 'h2.test', path.join(base, 'root')),
});

test('a pki link to another directory: reads and publishing are refused, nothing written there', async () => {
  await symlink(outside, path.join(ds, 'pki'));
  const store = datastorePki(host());
  await expect(store.read('pki/ca.crt')).rejects.toThrow(/ds\/pki is a symlink; sc does not follow symlinks here/);
  await expect(store.publish({ 'pki/requests/h2.test.csr': '-----BEGIN CERTIFICATE REQUEST-----\n' }, 'test')).rejects.toThrow(/pki is a symlink/);
  expect(await readdir(outside)).toEqual(['ca.crt']);
});

test('a link at the CA certificate is refused; a published request replaces a planted link instead of writing through it', async () => {
  await mkdir(path.join(ds, 'pki/requests'), { recursive: true });
  await symlink(path.join(outside, 'ca.crt'), path.join(ds, 'pki/ca.crt'));
  await symlink(path.join(outside, 'ca.crt'), path.join(ds, 'pki/requests/h2.test.csr'));
  const store = datastorePki(host());
  const error = await store.read('pki/ca.crt').catch((e: unknown) => e as Error);
  expect(String(error)).toMatch(/pki\/ca\.crt is a symlink/);
  expect(String(error)).not.toContain('TOPSECRET');
  await store.publish({ 'pki/requests/h2.test.csr': 'REQUEST\n' }, 'test');
  expect(await readFile(path.join(ds, 'pki/requests/h2.test.csr'), 'utf8')).toBe('REQUEST\n');
  expect(await readFile(path.join(outside, 'ca.crt'), 'utf8')).toBe('TOPSECRET not a certificate\n');
});

test('a FIFO as a request is not listed as one, and reading it is refused without hanging', async () => {
  await mkdir(path.join(ds, 'pki/requests'), { recursive: true });
  execFileSync('mkfifo', [path.join(ds, 'pki/requests/h3.test.csr')]);
  await writeFile(path.join(ds, 'pki/requests/h2.test.csr'), 'REQUEST\n');
  await symlink(path.join(outside, 'ca.crt'), path.join(ds, 'pki/requests/h4.test.csr'));
  const store = datastorePki(host());
  expect(await store.requestHosts()).toEqual(['h2.test']);
  await expect(store.read('pki/requests/h3.test.csr')).rejects.toThrow(/is a FIFO/);
});

test('publishing refuses a private key', async () => {
  await expect(datastorePki(host()).publish({ 'pki/ca.crt': '-----BEGIN PRIVATE KEY-----\n' }, 'test')).rejects.toThrow(
    /refusing to publish a private key/,
  );
  expect(await readdir(ds)).toEqual([]);
});
