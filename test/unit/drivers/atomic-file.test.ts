// writeFileAtomic: content, mode, symlinks, in-process ordering, and the sweep of temp files
// left behind by writers that died (the SIGKILL case is in test/integration/datastore-writes).
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { listTempFiles, writeFileAtomic } from '../../../src/drivers/atomic-file.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'sc-atomic-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const thisHost = hostname()
  .replace(/[^A-Za-z0-9-]/g, '_')
  .slice(0, 64);

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.pid === undefined) throw new Error('could not start a child process');
  return child.pid;
}

test('creates a file with the text and leaves no temp file', async () => {
  const target = join(dir, 'users.json');
  await writeFileAtomic(target, '{"a":1}\n');
  expect(await fs.readFile(target, 'utf8')).toBe('{"a":1}\n');
  expect(await fs.readdir(dir)).toEqual(['users.json']);
});

test('replaces an existing file and keeps its mode exactly', async () => {
  const target = join(dir, 'containers.yaml');
  await fs.writeFile(target, 'old: 1\n');
  await fs.chmod(target, 0o640);
  await writeFileAtomic(target, 'new: 2\n');
  expect(await fs.readFile(target, 'utf8')).toBe('new: 2\n');
  expect((await fs.stat(target)).mode & 0o7777).toBe(0o640);
});

test('writes through a symlink to its target and keeps the symlink', async () => {
  const real = join(dir, 'real.json');
  const link = join(dir, 'users.json');
  await fs.writeFile(real, '{}\n');
  await fs.symlink(real, link);
  await writeFileAtomic(link, '{"b":2}\n');
  expect((await fs.lstat(link)).isSymbolicLink()).toBe(true);
  expect(await fs.readFile(real, 'utf8')).toBe('{"b":2}\n');
});

test('concurrent writes from one process land in call order', async () => {
  const target = join(dir, 'x.json');
  await Promise.all(Array.from({ length: 20 }, (_, i) => writeFileAtomic(target, `${i}\n`)));
  expect(await fs.readFile(target, 'utf8')).toBe('19\n');
  expect(await listTempFiles(target)).toEqual([]);
});

test("sweeps temp files of dead writers on this host, keeps live writers' and other hosts'", async () => {
  const target = join(dir, 'users.json');
  const stale = join(dir, `.users.json.sc-tmp.${thisHost}.${deadPid()}.1`);
  const live = join(dir, `.users.json.sc-tmp.${thisHost}.${process.ppid}.1`);
  const otherHost = join(dir, `.users.json.sc-tmp.elsewhere-${thisHost}.${deadPid()}.1`);
  const unrelated = join(dir, `.containers.json.sc-tmp.${thisHost}.${deadPid()}.1`);
  for (const f of [stale, live, otherHost, unrelated]) await fs.writeFile(f, 'partial');
  await writeFileAtomic(target, '{}\n');
  const left = (await fs.readdir(dir)).sort();
  const kept = [live, otherHost, unrelated].map((f) => f.slice(dir.length + 1));
  expect(left).toEqual(['users.json', ...kept].sort());
  await expect(fs.access(stale)).rejects.toThrow(/ENOENT/);
});

test('a write into a missing directory fails and creates nothing', async () => {
  const target = join(dir, 'sub', 'users.json');
  await expect(writeFileAtomic(target, '{}\n')).rejects.toThrow(/ENOENT/);
  expect(await fs.readdir(dir)).toEqual([]);
  // A write that fails half-way (disk full), as root too: test/integration/datastore-writes.test.ts.
});
