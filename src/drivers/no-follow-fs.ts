// File access that never follows a symlink below a trusted directory, race-free.
//
// A container's root, a datastore checkout or a --root tree can hold symlinks planted to make sc
// (running as root) read or write outside them, and a container can swap a path component while
// sc works on it. So every path below the trusted directory is walked one component at a time,
// each directory opened with O_DIRECTORY|O_NOFOLLOW and the next component addressed relative to
// that open directory (through /proc/self/fd/N, which names the opened inode, not a path): no
// component can be swapped for a symlink between the check and the use. The last component is
// opened with O_NOFOLLOW (O_NONBLOCK, so a FIFO never hangs a read) and must be a regular file;
// writes go to a temp file in the opened directory and are renamed over the target (atomic:
// readers see the old or the new bytes), then the directory is fsynced.
import { constants, promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { UnsafePathError } from '../errors.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;
/** Temp files are `.<name>.sc-tmp.<host>.<pid>.<n>`: hidden, next to the target, naming their writer. */
export const TEMP_MARK = '.sc-tmp.';
export const thisHostTag =
  hostname()
    .replace(/[^A-Za-z0-9-]/g, '_')
    .slice(0, 64) || 'host';
let tempCounter = 0;
/** Temp files this process is writing right now (another temp of our pid is a leftover). */
export const activeTemps = new Set<string>();

/** A path sc refused because a component is a symlink or not the kind of file expected. */
export { UnsafePathError };

/** A file over the size limit its reader set: refused before its content is read. */
export class FileTooLargeError extends UnsafePathError {
  constructor(
    readonly file: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${file} is ${size} bytes, more than the limit of ${limit}`);
  }
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface DirEntry {
  readonly name: string;
  readonly type: EntryType;
}

export interface FileStat {
  readonly type: EntryType;
  readonly size: number;
  /** Permission bits (e.g. 0o600). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface WriteOptions {
  /** Permission bits of the file (default 0o644); applied whatever the umask. */
  /** Default: the existing file's mode (and owner, as root), 0o644 for a new file. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Mode of directories created on the way (default 0o755). */
  readonly dirMode?: number;
  /** Owner of directories created on the way (default: the process's). */
  readonly dirUid?: number;
  readonly dirGid?: number;
  /** Create missing directories on the way (default true). */
  readonly createDirs?: boolean;
}

/** `/proc/self/fd/N/name`: `name` inside the directory open as `dir`, not wherever a path leads now. */
const inDir = (dir: FileHandle, name: string): string => `/proc/self/fd/${dir.fd}/${name}`;

function typeOf(stat: Stats): EntryType {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  return 'other';
}

function describeType(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symlink';
  return 'not a regular file';
}

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

/** The components of `rel` (relative, normalised); refuses `..` and empty names. */
export function splitRelative(rel: string): string[] {
  if (rel.includes('\0')) throw new UnsafePathError(`path ${JSON.stringify(rel)} contains a NUL byte`);
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new UnsafePathError(`path ${JSON.stringify(rel)} must not contain ".."`);
  return parts;
}

async function openDirAt(parent: FileHandle | string, name: string | undefined): Promise<FileHandle> {
  const where = name === undefined ? (parent as string) : inDir(parent as FileHandle, name);
  return fs.open(where, O_RDONLY | O_DIRECTORY | (name === undefined ? 0 : O_NOFOLLOW));
}

/**
 * Opens `trusted/rel...` as a directory, refusing a symlink at any component below `trusted`.
 * Missing components: undefined, or created (mode `dirMode`) when `create` is set.
 */
export async function openDirNoFollow(
  trusted: string,
  rel: readonly string[],
  options: { create?: boolean; dirMode?: number; dirUid?: number; dirGid?: number } = {},
): Promise<FileHandle | undefined> {
  let dir: FileHandle;
  try {
    dir = await openDirAt(trusted, undefined);
  } catch (error) {
    if (errno(error) === 'ENOENT' && options.create) {
      await fs.mkdir(trusted, { recursive: true, mode: options.dirMode ?? 0o755 });
      dir = await openDirAt(trusted, undefined);
    } else if (errno(error) === 'ENOENT') {
      return undefined;
    } else {
      throw error;
    }
  }
  let walked = trusted;
  for (const name of rel) {
    walked = path.join(walked, name);
    let next: FileHandle | undefined;
    try {
      next = await openDirAt(dir, name);
    } catch (error) {
      const code = errno(error);
      if (code === 'ENOENT' && options.create) {
        let made = false;
        try {
          await fs.mkdir(inDir(dir, name), { mode: options.dirMode ?? 0o755 });
          made = true;
        } catch (mkdirError) {
          if (errno(mkdirError) !== 'EEXIST') {
            await dir.close();
            throw mkdirError;
          }
        }
        try {
          next = await openDirAt(dir, name);
        } catch (retryError) {
          const failure = await refusal(walked, retryError, dir, name);
          await dir.close();
          throw failure;
        }
        if (made) {
          await next.chmod(options.dirMode ?? 0o755); // mkdir's mode passes the umask
          if (options.dirUid !== undefined || options.dirGid !== undefined) await next.chown(options.dirUid ?? -1, options.dirGid ?? -1);
        }
      } else {
        const failure = code === 'ENOENT' ? undefined : await refusal(walked, error, dir, name);
        await dir.close();
        if (failure === undefined) return undefined;
        throw failure;
      }
    }
    await dir.close();
    dir = next;
  }
  return dir;
}

const symlinkRefusal = (where: string) => new UnsafePathError(`${where} is a symlink; sc does not follow symlinks here`);

/** The error for a component that could not be opened: a symlink (O_NOFOLLOW) or not a directory. */
async function refusal(where: string, error: unknown, dir?: FileHandle, name?: string): Promise<Error> {
  const code = errno(error);
  if (code === 'ELOOP') return symlinkRefusal(where);
  if (code === 'ENOTDIR') {
    // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR: say which it was.
    const stat = dir !== undefined && name !== undefined ? await lstatIn(dir, name).catch(() => undefined) : undefined;
    if (stat?.isSymbolicLink()) return symlinkRefusal(where);
    return new UnsafePathError(`${where} is not a directory`);
  }
  return error as Error;
}

async function lstatIn(dir: FileHandle, name: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(inDir(dir, name));
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Splits `rel` into its directory components and its last name. */
function dirAndName(rel: string): { dirs: string[]; name: string } {
  const parts = splitRelative(rel);
  const name = parts.pop();
  if (name === undefined) throw new UnsafePathError(`path ${JSON.stringify(rel)} names no file`);
  return { dirs: parts, name };
}

/** Reads a regular file; undefined when it (or a directory on the way) does not exist. */
export async function readNoFollow(trusted: string, rel: string, options: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
  const { dirs, name } = dirAndName(rel);
  const where = path.join(trusted, rel);
  const dir = await openDirNoFollow(trusted, dirs);
  if (dir === undefined) return undefined;
  let file: FileHandle;
  try {
    // A special file is refused before it is opened (opening a device can have effects of its
    // own); the fstat below catches one swapped in between.
    const before = await lstatIn(dir, name);
    if (before === undefined) return undefined;
    if (!before.isFile()) throw new UnsafePathError(`${where} is ${describeType(before)}, not a regular file`);
    if (options.maxBytes !== undefined && before.size > options.maxBytes) throw new FileTooLargeError(where, before.size, options.maxBytes);
    file = await fs.open(inDir(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    if (error instanceof UnsafePathError) throw error;
    throw await refusal(where, error, dir, name);
  } finally {
    await dir.close();
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw new UnsafePathError(`${where} is ${describeType(stat)}, not a regular file`);
    const limit = options.maxBytes;
    if (limit !== undefined && stat.size > limit) throw new FileTooLargeError(where, stat.size, limit);
    if (limit === undefined) return await file.readFile();
    // At most limit + 1 bytes: a file growing while it is read is still bounded.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(1 << 20, limit + 1 - total);
      if (want <= 0) break;
      const buffer = Buffer.allocUnsafe(want);
      const { bytesRead } = await file.read(buffer, 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total > limit) throw new FileTooLargeError(where, total, limit);
    return Buffer.concat(chunks, total);
  } finally {
    await file.close();
  }
}

/** The text of a regular file (UTF-8); undefined when missing. See readNoFollow. */
export async function readTextNoFollow(trusted: string, rel: string, options: { maxBytes?: number } = {}): Promise<string | undefined> {
  return (await readNoFollow(trusted, rel, options))?.toString('utf8');
}

/** The type, size, mode and owner of `rel` itself (a symlink is reported, not followed). */
export async function statNoFollow(trusted: string, rel: string): Promise<FileStat | undefined> {
  const { dirs, name } = dirAndName(rel);
  const dir = await openDirNoFollow(trusted, dirs);
  if (dir === undefined) return undefined;
  try {
    const stat = await lstatIn(dir, name);
    if (stat === undefined) return undefined;
    return { type: typeOf(stat), size: stat.size, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid };
  } finally {
    await dir.close();
  }
}

/**
 * Replaces `rel` atomically with `data` (mode and owner set before the rename), creating missing
 * directories. Returns false and writes nothing when the file already has these bytes, mode and owner.
 */
export async function writeNoFollow(trusted: string, rel: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<boolean> {
  const { dirs, name } = dirAndName(rel);
  const where = path.join(trusted, rel);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
  const create = options.createDirs ?? true;
  const dir = await openDirNoFollow(trusted, dirs, {
    create,
    ...(options.dirMode !== undefined ? { dirMode: options.dirMode } : {}),
    ...(options.dirUid !== undefined ? { dirUid: options.dirUid } : {}),
    ...(options.dirGid !== undefined ? { dirGid: options.dirGid } : {}),
  });
  if (dir === undefined) throw Object.assign(new Error(`ENOENT: no such directory for ${where}`), { code: 'ENOENT' });
  try {
    const existing = await lstatIn(dir, name);
    if (existing !== undefined && !existing.isFile() && !existing.isSymbolicLink()) {
      throw new UnsafePathError(`${where} is ${describeType(existing)}; sc only replaces regular files`);
    }
    const kept = existing?.isFile() ? existing : undefined;
    const mode = options.mode ?? (kept ? kept.mode & 0o7777 : 0o644);
    // Rewriting a root-owned host file keeps its owner unless told otherwise (as write-file-atomic does).
    const uid = options.uid ?? (kept && process.getuid?.() === 0 ? kept.uid : undefined);
    const gid = options.gid ?? (kept && process.getuid?.() === 0 ? kept.gid : undefined);
    if (
      kept &&
      kept.size === bytes.length &&
      (kept.mode & 0o7777) === mode &&
      (uid === undefined || kept.uid === uid) &&
      (gid === undefined || kept.gid === gid)
    ) {
      const current = await readNoFollow(trusted, rel);
      if (current !== undefined && current.equals(bytes)) return false;
    }
    tempCounter += 1;
    const temp = `.${name.slice(0, 128)}${TEMP_MARK}${thisHostTag}.${process.pid}.${tempCounter}`;
    const tempPath = path.join(trusted, ...dirs, temp);
    activeTemps.add(tempPath);
    const handle = await fs.open(inDir(dir, temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode).catch((error: unknown) => {
      activeTemps.delete(tempPath);
      throw error;
    });
    try {
      try {
        await handle.writeFile(bytes);
        await handle.chmod(mode);
        if (uid !== undefined || gid !== undefined) await handle.chown(uid ?? -1, gid ?? -1);
        await handle.sync();
      } finally {
        await handle.close();
      }
      // A symlink at the target is replaced, not followed: rename(2) acts on the name.
      await fs.rename(inDir(dir, temp), inDir(dir, name));
    } catch (error) {
      await fs.rm(inDir(dir, temp), { force: true });
      throw error;
    } finally {
      activeTemps.delete(tempPath);
    }
    // fsync of the directory makes the rename durable; some filesystems refuse it, which is fine.
    await dir.sync().catch(() => undefined);
    return true;
  } finally {
    await dir.close();
  }
}

/** Removes the file (or symlink, never its target) `rel`; false when it was not there. */
export async function removeNoFollow(trusted: string, rel: string): Promise<boolean> {
  const { dirs, name } = dirAndName(rel);
  const dir = await openDirNoFollow(trusted, dirs);
  if (dir === undefined) return false;
  try {
    const stat = await lstatIn(dir, name);
    if (stat === undefined) return false;
    if (stat.isDirectory()) throw new UnsafePathError(`${path.join(trusted, rel)} is a directory; sc removes files only here`);
    await fs.unlink(inDir(dir, name));
    await dir.sync().catch(() => undefined);
    return true;
  } finally {
    await dir.close();
  }
}

/** The entries of directory `rel` (sorted by name), undefined when it does not exist. */
export async function listNoFollow(trusted: string, rel: string): Promise<DirEntry[] | undefined> {
  const dir = await openDirNoFollow(trusted, splitRelative(rel));
  if (dir === undefined) return undefined;
  try {
    const entries = await fs.readdir(`/proc/self/fd/${dir.fd}`, { withFileTypes: true });
    return entries
      .map((e): DirEntry => ({
        name: e.name,
        type: e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'other',
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } finally {
    await dir.close();
  }
}

/** Creates directory `rel` and its missing parents (mode `mode`, default 0o755), never through a symlink. */
export async function mkdirNoFollow(trusted: string, rel: string, options: { mode?: number } = {}): Promise<void> {
  const dir = await openDirNoFollow(trusted, splitRelative(rel), { create: true, ...(options.mode !== undefined ? { dirMode: options.mode } : {}) });
  await dir?.close();
}
