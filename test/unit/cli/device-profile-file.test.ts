// The device profile file holds a private key: created exclusively with mode 0600 (never over a
// file or through a link), replaced whole keeping 0600.
import { lstat, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createProfileFile, readProfileFile, replaceProfileFile } from '../../../src/cli/device-profile-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sc-profile-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('device profile file', () => {
  it('is created 0600 and never over an existing file or a link', async () => {
    const file = path.join(dir, 'phone.ovpn');
    const handle = await createProfileFile(file);
    await handle.writeFile('secret');
    await handle.close();
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    await expect(createProfileFile(file)).rejects.toThrow(/exists: sc never overwrites/);
    const target = path.join(dir, 'target');
    await writeFile(target, 'x');
    await symlink(target, path.join(dir, 'link.ovpn'));
    await expect(createProfileFile(path.join(dir, 'link.ovpn'))).rejects.toThrow(/exists/);
    expect(await readFile(target, 'utf8')).toBe('x');
    await expect(readProfileFile(path.join(dir, 'link.ovpn'))).rejects.toThrow(/not a regular file/);
  });

  it('is replaced whole, still 0600, with no temp file left', async () => {
    const file = path.join(dir, 'phone.ovpn');
    await (await createProfileFile(file)).close();
    await replaceProfileFile(file, 'new text');
    expect(await readProfileFile(file)).toBe('new text');
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['phone.ovpn']);
  });
});
