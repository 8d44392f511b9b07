// File access that never follows a symlink and never opens a special file, for trees whose content
// is not trusted (a datastore dir, the checkout of a git source, a container's root). A path is
// walked one component at a time from an opened base directory: each directory is opened with
// O_DIRECTORY|O_NOFOLLOW and its children are addressed through /proc/self/fd/N/NAME, so no
// component can be swapped for a symlink between the check and the use. Regular files are opened
// with O_NOFOLLOW|O_NONBLOCK (a FIFO never blocks) and checked with fstat after opening.
import { constants, promises as fs, type Dirent } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** A file that is a symlink, a FIFO, a device or a socket where sc wants a regular file or a directory. */
export class UnsafeFileError extends UserError {
  constructor(
    readonly file: string,
    readonly what: string,
    wanted: 'file' | 'directory' = 'file',
  ) {
    super(`${file} is ${what}; sc reads only plain ${wanted === 'file' ? 'files' : 'directories'} here and never follows links: replace it with a plain ${wanted === 'file' ? 'file' : 'directory'}`, [
      { severity: 'error', file, message: `refused: ${what} (sc never follows links or opens special files here)` },
    ]);
  }
}

/** A file over its size limit: refused before its content is read. */
export class FileTooLargeError extends UserError {
  constructor(
    readonly file: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`${file} is ${size} bytes, over the limit of ${limit} bytes; sc refuses it`, [
      { severity: 'error', file, message: `the file is ${size} bytes, over the limit of ${limit} bytes` },
    ]);
  }
}

/** What an lstat result is, in words for messages. */
export function kindOf(stats: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  return 'a special file';
}

const code = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

/** One opened directory; `at(name)` is a path that reaches its child through the descriptor. */
export class OpenedDir {
  private constructor(
    private readonly handle: fs.FileHandle,
    /** The directory's path, for messages only (never used to reach it again). */
    readonly path: string,
  ) {}

  static async open(dirPath: string, options: { noFollow?: boolean } = {}): Promise<OpenedDir> {
    const flags = O_RDONLY | O_DIRECTORY | (options.noFollow ? O_NOFOLLOW : 0);
    return new OpenedDir(await fs.open(dirPath, flags), dirPath);
  }

  get fd(): number {
    return this.handle.fd;
  }

  at(name: string): string {
    checkName(name, this.path);
    return `/proc/self/fd/${this.handle.fd}/${name}`;
  }

  /** Display path of a child. */
  show(name: string): string {
    return path.join(this.path, name);
  }

  /** A child directory, opened without following a link; undefined when it does not exist. */
  async child(name: string, options: { create?: boolean; mode?: number } = {}): Promise<OpenedDir | undefined> {
    const info = await lstatOrUndefined(this.at(name));
    if (info === undefined) {
      if (!options.create) return undefined;
      try {
        await fs.mkdir(this.at(name), options.mode ?? 0o755);
      } catch (error) {
        if (code(error) !== 'EEXIST') throw error;
      }
    } else if (!info.isDirectory()) {
      throw new UnsafeFileError(this.show(name), kindOf(info), 'directory');
    }
    try {
      return new OpenedDir(await fs.open(this.at(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW), this.show(name));
    } catch (error) {
      // Swapped for a link or a file between the check and the open.
      if (code(error) === 'ELOOP' || code(error) === 'ENOTDIR') throw new UnsafeFileError(this.show(name), 'not a plain directory (it changed while sc opened it)', 'directory');
      if (code(error) === 'ENOENT' && !options.create) return undefined;
      throw error;
    }
  }

  /** Entries with their types (d_type; a symlink is reported as one, never followed). */
  async entries(): Promise<Dirent[]> {
    return fs.readdir(`/proc/self/fd/${this.handle.fd}`, { withFileTypes: true });
  }

  /**
   * A regular file's text, read with O_NOFOLLOW; undefined when it does not exist. A symlink or
   * special file is refused before it is opened (a FIFO or device is never opened), and again
   * after opening (fstat), should it have been swapped in between.
   */
  async readText(name: string, options: { maxBytes?: number } = {}): Promise<string | undefined> {
    const bytes = await this.readBytes(name, options);
    return bytes === undefined ? undefined : bytes.toString('utf8');
  }

  async readBytes(name: string, options: { maxBytes?: number } = {}): Promise<Buffer | undefined> {
    const shown = this.show(name);
    const info = await lstatOrUndefined(this.at(name));
    if (info === undefined) return undefined;
    if (!info.isFile()) throw new UnsafeFileError(shown, kindOf(info));
    const limit = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (info.size > limit) throw new FileTooLargeError(shown, info.size, limit);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.at(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      if (code(error) === 'ENOENT') return undefined;
      if (code(error) === 'ELOOP') throw new UnsafeFileError(shown, 'a symbolic link');
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new UnsafeFileError(shown, kindOf(stats));
      if (stats.size > limit) throw new FileTooLargeError(shown, stats.size, limit);
      // Read at most limit + 1 bytes: a file growing while it is read is still bounded.
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const want = Math.min(1 << 20, limit + 1 - total);
        if (want <= 0) break;
        const buffer = Buffer.allocUnsafe(want);
        const { bytesRead } = await handle.read(buffer, 0, want, null);
        if (bytesRead === 0) break;
        chunks.push(buffer.subarray(0, bytesRead));
        total += bytesRead;
      }
      if (total > limit) throw new FileTooLargeError(shown, total, limit);
      return Buffer.concat(chunks, total);
    } finally {
      await handle.close();
    }
  }

  /** lstat of a child (never follows); undefined when missing. */
  async lstat(name: string): Promise<import('node:fs').Stats | undefined> {
    return lstatOrUndefined(this.at(name));
  }

  /**
   * Replaces the child `name` with `text` atomically (temp file created O_EXCL|O_NOFOLLOW in this
   * directory, fsync, rename, fsync of the directory). A symlink at `name` is replaced, never
   * written through. Mode: `mode`, else the existing regular file's, else 0644.
   */
  async writeText(name: string, text: string | Buffer, options: { mode?: number } = {}): Promise<void> {
    const existing = await lstatOrUndefined(this.at(name));
    if (existing?.isDirectory()) throw new UnsafeFileError(this.show(name), 'a directory');
    const mode = options.mode ?? (existing?.isFile() ? existing.mode & 0o7777 : 0o644);
    tempCounter += 1;
    const temp = `.${name.slice(0, 100)}.sc-tmp.${thisHost}.${process.pid}.${tempCounter}`;
    const handle = await fs.open(this.at(temp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 0o777);
    try {
      try {
        await handle.writeFile(text);
        await handle.chmod(mode);
        if (existing?.isFile() && options.mode === undefined && process.getuid?.() === 0) await handle.chown(existing.uid, existing.gid);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(this.at(temp), this.at(name));
    } catch (error) {
      await fs.unlink(this.at(temp)).catch(() => undefined);
      throw error;
    }
    await this.handle.sync().catch(() => undefined);
  }

  /** Removes a child file or link (never what a link points to); a missing one is fine. */
  async remove(name: string): Promise<void> {
    try {
      await fs.unlink(this.at(name));
    } catch (error) {
      if (code(error) !== 'ENOENT') throw error;
    }
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

let tempCounter = 0;
const thisHost = hostname().replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64) || 'host';

function checkName(name: string, dir: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new UserError(`${JSON.stringify(name.slice(0, 80))} is not a file name in ${dir}`);
  }
}

async function lstatOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fs.lstat(p);
  } catch (error) {
    if (code(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** `a/b/c` → ['a', 'b', 'c']; refuses absolute paths, `..`, empty and NUL components. */
export function relativeParts(rel: string): string[] {
  if (rel.includes('\0') || path.isAbsolute(rel)) throw new UserError(`${JSON.stringify(rel.slice(0, 80))} is not a relative path`);
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UserError(`${JSON.stringify(rel.slice(0, 80))} leaves its directory (..)`);
  return parts;
}

/**
 * Opens `base` (the trusted starting point: followed like any path the operator gives) and walks
 * `rel` below it without following links. Undefined when a component does not exist (and
 * `create` is not set). The caller closes the result.
 */
export async function openDirBeneath(base: string, rel: string, options: { create?: boolean; mode?: number } = {}): Promise<OpenedDir | undefined> {
  let dir: OpenedDir;
  try {
    dir = await OpenedDir.open(base);
  } catch (error) {
    if (code(error) === 'ENOENT' && !options.create) return undefined;
    if (code(error) === 'ENOENT') {
      await fs.mkdir(base, { recursive: true, mode: options.mode ?? 0o755 });
      dir = await OpenedDir.open(base);
    } else {
      throw error;
    }
  }
  for (const part of relativeParts(rel)) {
    let next: OpenedDir | undefined;
    try {
      next = await dir.child(part, options);
    } finally {
      await dir.close();
    }
    if (next === undefined) return undefined;
    dir = next;
  }
  return dir;
}

/** The text of `base/rel` read without following any link below `base`; undefined when missing. */
export async function readTextBeneath(base: string, rel: string, options: { maxBytes?: number } = {}): Promise<string | undefined> {
  const parts = relativeParts(rel);
  const name = parts.pop();
  if (name === undefined) throw new UserError(`${JSON.stringify(rel)} names no file`);
  const dir = await openDirBeneath(base, parts.join('/'));
  if (dir === undefined) return undefined;
  try {
    return await dir.readText(name, options);
  } finally {
    await dir.close();
  }
}

/** Writes `base/rel` atomically, creating parent directories, without following any link below `base`. */
export async function writeTextBeneath(base: string, rel: string, text: string | Buffer, options: { mode?: number; dirMode?: number } = {}): Promise<void> {
  const parts = relativeParts(rel);
  const name = parts.pop();
  if (name === undefined) throw new UserError(`${JSON.stringify(rel)} names no file`);
  const dir = await openDirBeneath(base, parts.join('/'), { create: true, mode: options.dirMode ?? 0o755 });
  if (dir === undefined) throw new Error(`cannot create ${path.join(base, ...parts)}`);
  try {
    await dir.writeText(name, text, options.mode !== undefined ? { mode: options.mode } : {});
  } finally {
    await dir.close();
  }
}

/** Names and types of the entries of `base/rel` (a link is listed as a link, never followed); undefined when missing. */
export async function listBeneath(base: string, rel: string): Promise<Dirent[] | undefined> {
  const dir = await openDirBeneath(base, rel);
  if (dir === undefined) return undefined;
  try {
    return await dir.entries();
  } finally {
    await dir.close();
  }
}
