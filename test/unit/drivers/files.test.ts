// The files driver never follows a symlink below its trusted directory, never hangs on a FIFO,
// writes atomically with the mode asked for, and reports a symlink rather than its target.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, lstat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { UnsafePathError } from '../../../src/drivers/no-follow-fs.js';

let work: string;
let root: string;
let outside: string;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sc-files-'));
  root = path.join(work, 'root');
  outside = path.join(work, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret'), 'TOPSECRET-bytes\n');
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('files driver', () => {
  it('writes atomically with the mode asked for, creates directories, and skips an identical write', async () => {
    const files = createFilesDriver(root);
    const old = process.umask(0o077);
    try {
      expect(await files.write('/etc/srvctl/a.conf', 'one\n', { mode: 0o640 })).toBe(true);
    } finally {
      process.umask(old);
    }
    const file = path.join(root, 'etc/srvctl/a.conf');
    expect(await readFile(file, 'utf8')).toBe('one\n');
    expect((await stat(file)).mode & 0o7777).toBe(0o640);
    expect((await stat(path.join(root, 'etc/srvctl'))).mode & 0o7777).toBe(0o755);
    expect(await files.write('/etc/srvctl/a.conf', 'one\n', { mode: 0o640 })).toBe(false);
    expect(await files.write('/etc/srvctl/a.conf', 'one\n', { mode: 0o600 })).toBe(true);
    expect((await stat(file)).mode & 0o7777).toBe(0o600);
    expect(await files.read('/etc/srvctl/a.conf')).toBe('one\n');
    expect(await readdir(path.join(root, 'etc/srvctl'))).toEqual(['a.conf']); // no temp left
  });

  it('refuses to write through a symlinked directory and leaves the target alone', async () => {
    await symlink(outside, path.join(root, 'etc'));
    const files = createFilesDriver(root);
    await expect(files.write('/etc/secret', 'pwned')).rejects.toThrow(UnsafePathError);
    await expect(files.write('/etc/secret', 'pwned')).rejects.toThrow(/etc is a symlink/);
    await expect(files.mkdir('/etc/sub')).rejects.toThrow(UnsafePathError);
    expect(await readFile(path.join(outside, 'secret'), 'utf8')).toBe('TOPSECRET-bytes\n');
    expect(await readdir(outside)).toEqual(['secret']);
  });

  it('replaces a symlink at the file itself instead of writing through it', async () => {
    await mkdir(path.join(root, 'etc'));
    await symlink(path.join(outside, 'secret'), path.join(root, 'etc/hosts'));
    const files = createFilesDriver(root);
    expect(await files.write('/etc/hosts', 'mine\n')).toBe(true);
    expect((await lstat(path.join(root, 'etc/hosts'))).isFile()).toBe(true);
    expect(await readFile(path.join(outside, 'secret'), 'utf8')).toBe('TOPSECRET-bytes\n');
  });

  it('refuses to read a symlink and never shows its target bytes', async () => {
    await symlink(path.join(outside, 'secret'), path.join(root, 'users.json'));
    const files = createFilesDriver(root);
    const error = await files.read('/users.json').catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(UnsafePathError);
    expect(String((error as Error).message)).toMatch(/users\.json is a symlink/);
    expect(String((error as Error).message)).not.toMatch(/TOPSECRET/);
    expect(await files.stat('/users.json')).toMatchObject({ type: 'symlink' });
    expect(await files.list('/')).toEqual([{ name: 'users.json', type: 'symlink' }]);
  });

  it('refuses a FIFO without hanging, and a file over the size limit', async () => {
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
    await writeFile(path.join(root, 'big'), 'x'.repeat(5000));
    const files = createFilesDriver(root);
    await expect(files.read('/fifo')).rejects.toThrow(/is a FIFO/);
    await expect(files.write('/fifo', 'x')).rejects.toThrow(/is a FIFO/);
    await expect(files.read('/big', { maxBytes: 4096 })).rejects.toThrow(/5000 bytes, more than the limit of 4096/);
    expect(await files.read('/big', { maxBytes: 5000 })).toHaveLength(5000);
  });

  it('reads a missing file or directory as undefined', async () => {
    const files = createFilesDriver(root);
    expect(await files.read('/nope/x')).toBeUndefined();
    expect(await files.list('/nope')).toBeUndefined();
    expect(await files.stat('/nope')).toBeUndefined();
    expect(await files.remove('/nope/x')).toBe(false);
  });

  it('removes a symlink, not what it points to', async () => {
    await symlink(path.join(outside, 'secret'), path.join(root, 'link'));
    const files = createFilesDriver(root);
    expect(await files.remove('/link')).toBe(true);
    expect(await readFile(path.join(outside, 'secret'), 'utf8')).toBe('TOPSECRET-bytes\n');
  });

  it('trusts the components of `within` and nothing below it', async () => {
    // /srv/c/rootfs is a symlink the operator made (trusted); the container's /etc link is not.
    await mkdir(path.join(work, 'real-rootfs/etc'), { recursive: true });
    await mkdir(path.join(root, 'srv/c'), { recursive: true });
    await symlink(path.join(work, 'real-rootfs'), path.join(root, 'srv/c/rootfs'));
    const files = createFilesDriver(root);
    await expect(files.write('/srv/c/rootfs/etc/hostname', 'c\n')).rejects.toThrow(/rootfs is a symlink/);
    expect(await files.write('/srv/c/rootfs/etc/hostname', 'c\n', { within: '/srv/c/rootfs' })).toBe(true);
    expect(await readFile(path.join(work, 'real-rootfs/etc/hostname'), 'utf8')).toBe('c\n');
    await rm(path.join(work, 'real-rootfs/etc'), { recursive: true });
    await symlink(outside, path.join(work, 'real-rootfs/etc'));
    await expect(files.write('/srv/c/rootfs/etc/hostname', 'c\n', { within: '/srv/c/rootfs' })).rejects.toThrow(UnsafePathError);
    await expect(files.read('/srv/x', { within: '/srv/c' })).rejects.toThrow(/outside/);
  });

  it('never leaves --root, and sets the owner when asked', async () => {
    const files = createFilesDriver(root);
    expect(() => files.hostPath('/../../etc/passwd')).toThrow(/escapes the root/);
    await expect(files.write('/a/../../x', 'x')).rejects.toThrow();
    if (process.getuid?.() === 0) {
      await files.write('/owned', 'x', { mode: 0o600, uid: 4242, gid: 4343 });
      const s = await stat(path.join(root, 'owned'));
      expect([s.uid, s.gid, s.mode & 0o7777]).toEqual([4242, 4343, 0o600]);
      expect(await files.write('/owned', 'x', { mode: 0o600, uid: 4242, gid: 4343 })).toBe(false);
    }
  });
});
