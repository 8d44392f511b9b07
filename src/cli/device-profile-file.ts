// The device profile file of `sc add-vpn-client … --out FILE` and `sc vpn-config … --update FILE`: it
// holds a private key, so it is created exclusively with mode 0600 (never over an existing file, never
// through a link) and later replaced whole by a rename of a 0600 sibling.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { FileTooLargeError, readTextNoFollow } from '../drivers/no-follow-fs.js';
import { UnsafePathError, UserError } from '../errors.js';

const PROFILE_MAX_BYTES = 64 * 1024;

/** Creates FILE (0600, O_EXCL: refused when anything is there, a link included); the caller writes it. */
export async function createProfileFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${file} exists: sc never overwrites a file with a key; give another --out path (or remove it)`);
    throw new UserError(`cannot create ${file}: ${(error as Error).message}`);
  }
}

/** The text of a profile FILE: a regular file (not a link), small. */
export async function readProfileFile(file: string): Promise<string> {
  // One no-follow, bounded read (no window between a check and the open for a link or a FIFO).
  const absolute = path.resolve(file);
  let text: string | undefined;
  try {
    text = await readTextNoFollow(path.dirname(absolute), path.basename(absolute), { maxBytes: PROFILE_MAX_BYTES });
  } catch (error) {
    if (error instanceof FileTooLargeError) throw new UserError(`${file}: ${error.size} bytes is too big for a device profile`);
    if (error instanceof UnsafePathError) throw new UserError(`${file}: not a regular file`);
    throw error;
  }
  if (text === undefined) throw new UserError(`${file}: no such file`);
  return text;
}

/** Replaces FILE whole: a 0600 sibling written exclusively, then renamed over it. */
export async function replaceProfileFile(file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(tmp, file);
}
