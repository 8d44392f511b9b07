// No-follow file access: links, FIFOs and devices are refused (never opened, never read), sizes are
// bounded, writes stay in the opened directory even when a component is a link.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FileTooLargeError,
  listNoFollow as listBeneath,
  readTextNoFollow as readTextBeneath,
  UnsafePathError,
  writeNoFollow as writeTextBeneath,
} from '../../../src/drivers/no-follow-fs.js';

let dir: string;
let outside: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'sc-nofollow-'));
  outside = await fs.mkdtemp(join(tmpdir(), 'sc-nofollow-out-'));
  await fs.writeFile(join(outside, 'secret'), 'TOPSECRET-bytes');
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rm(outside, { recursive: true, force: true });
});

test('reads a plain file below the base; a missing one is undefined', async () => {
  await fs.mkdir(join(dir, 'pki/certs'), { recursive: true });
  await fs.writeFile(join(dir, 'pki/certs/a.crt'), 'CERT');
  expect(await readTextBeneath(dir, 'pki/certs/a.crt')).toBe('CERT');
  expect(await readTextBeneath(dir, 'pki/certs/b.crt')).toBeUndefined();
  expect(await readTextBeneath(dir, 'nope/b.crt')).toBeUndefined();
});

test('a symlinked file is refused, naming the file, without a byte of its target', async () => {
  await fs.symlink(join(outside, 'secret'), join(dir, 'users.json'));
  const error = await readTextBeneath(dir, 'users.json').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UnsafePathError);
  expect((error as Error).message).toContain(join(dir, 'users.json'));
  expect((error as Error).message).toContain('is a symlink');
  expect(JSON.stringify(error) + (error as Error).message).not.toContain('TOPSECRET');
});

test('a symlinked directory on the way is refused, for reads and for writes', async () => {
  await fs.symlink(outside, join(dir, 'pki'));
  await expect(readTextBeneath(dir, 'pki/secret')).rejects.toThrow(/pki is a symlink/);
  await expect(writeTextBeneath(dir, 'pki/requests/h.csr', 'CSR')).rejects.toThrow(/pki is a symlink/);
  await expect(listBeneath(dir, 'pki')).rejects.toThrow(UnsafePathError);
  expect(await fs.readdir(outside)).toEqual(['secret']);
});

test('a FIFO is refused without opening it (no hang), a device likewise', async () => {
  execFileSync('mkfifo', [join(dir, 'users.json')]);
  await expect(readTextBeneath(dir, 'users.json')).rejects.toThrow(/FIFO/);
  await fs.symlink('/dev/zero', join(dir, 'zero.json'));
  await expect(readTextBeneath(dir, 'zero.json')).rejects.toThrow(/is a symlink/);
  // The device node itself, addressed as the file to read: refused before it is opened.
  await expect(readTextBeneath('/dev', 'zero')).rejects.toThrow(/\/dev\/zero is a character device, not a regular file/);
});

test('a file over the limit is refused before it is read', async () => {
  await fs.writeFile(join(dir, 'big.json'), 'x'.repeat(5000));
  const error = await readTextBeneath(dir, 'big.json', { maxBytes: 4096 }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(FileTooLargeError);
  expect((error as Error).message).toMatch(/5000 bytes, more than the limit of 4096/);
});

test('a write replaces a planted link instead of writing through it, and creates parents', async () => {
  await fs.mkdir(join(dir, 'pki'));
  await fs.symlink(join(outside, 'secret'), join(dir, 'pki/ca.crt'));
  await writeTextBeneath(dir, 'pki/ca.crt', 'CA');
  expect((await fs.lstat(join(dir, 'pki/ca.crt'))).isFile()).toBe(true);
  expect(await fs.readFile(join(dir, 'pki/ca.crt'), 'utf8')).toBe('CA');
  expect(await fs.readFile(join(outside, 'secret'), 'utf8')).toBe('TOPSECRET-bytes');
  await writeTextBeneath(dir, 'pki/requests/h.csr', 'CSR', { mode: 0o640 });
  expect(((await fs.stat(join(dir, 'pki/requests/h.csr'))).mode & 0o777).toString(8)).toBe('640');
  expect(await fs.readdir(join(dir, 'pki/requests'))).toEqual(['h.csr']);
});

test('paths that leave the base are refused', async () => {
  await expect(readTextBeneath(dir, '../x')).rejects.toThrow(/must not contain "\.\."/);
  await expect(writeTextBeneath(dir, 'a\0b', 'x')).rejects.toThrow(/NUL byte/);
});

test('listing reports links as links', async () => {
  await fs.writeFile(join(dir, 'a.csr'), 'A');
  await fs.symlink(join(outside, 'secret'), join(dir, 'b.csr'));
  const entries = (await listBeneath(dir, '')) ?? [];
  expect(entries).toEqual([
    { name: 'a.csr', type: 'file' },
    { name: 'b.csr', type: 'symlink' },
  ]);
});
