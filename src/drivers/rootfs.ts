// Root filesystems on the host: base images under /var/srvctl3/rootfs, container trees under /srv,
// and the small generated files sc keeps inside them. Every path goes through --root; commands
// (cp, builders) go through the exec layer and never into the --netns (they are file work).
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { ScError, UserError } from '../errors.js';
import { UnsafePathError, writeNoFollow } from './no-follow-fs.js';
import type { Drivers, ExecOptions, ExecResult } from './types.js';

export const IMAGES_DIR = '/var/srvctl3/rootfs';
export const IMAGE_MARKER = '.srvctl-image.json';
/** Build and swap directories next to the images: hidden, so observe never takes them for images. */
const IMAGE_WORK_PREFIX = '.build-';
const IMAGE_TRASH_PREFIX = '.old-';

/** Builders download whole distributions: far longer than the exec layer's default timeout. */
const BUILD_TIMEOUT_MS = 60 * 60_000;
const COPY_TIMEOUT_MS = 30 * 60_000;

/** What `.srvctl-image.json` holds: written last, so an image without it is not complete. */
export interface ImageMarker {
  readonly builder: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly built_at: string;
}

export interface ImageEntry {
  readonly type: string;
  /** Absent: a directory under the images dir that sc did not finish (or did not make). */
  readonly marker?: ImageMarker;
}

/** One thing to put into a tree being built (paths relative to the tree, no `..`). */
export type TreeEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly text: string; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'copy'; readonly path: string; readonly from: string; readonly mode?: number };

/** A file as observed: a regular file's text, or what else sits at the path. */
export type ObservedFile = { readonly kind: 'file'; readonly text: string } | { readonly kind: 'other' | 'missing' };

export interface RootfsDriver {
  /** Host path (under --root) of the image of `type`. */
  imagePath(type: string): string;
  /** Every directory in the images dir, with its marker when complete. One readdir + one read each. */
  listImages(): Promise<ImageEntry[]>;
  /**
   * Builds an image in a fresh work directory next to its final place, writes the marker, then
   * renames it into place (replacing an older image only after the new one is complete).
   */
  buildImage(type: string, marker: ImageMarker, build: (workDir: string) => Promise<void>): Promise<void>;
  removeImage(type: string): Promise<void>;
  /** Creates dirs, files, symlinks and copies of host files inside a tree sc is building. */
  populateTree(dir: string, entries: readonly TreeEntry[]): Promise<void>;
  /** Runs a builder program on the host (not in --netns), with a build-sized timeout. */
  runBuilder(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Copies a tree (`cp -a --reflink=auto`) to a temp dir next to `to`, then renames it to `to`. */
  copyTree(from: string, to: string): Promise<void>;
  /** Reads a file without following a symlink at its last component (a container's own link is not sc's file). */
  readFile(absPath: string): Promise<ObservedFile>;
  /**
   * Writes `text` atomically (temp file + rename) when the file's content differs. `within` is a
   * directory the file must stay inside after resolving symlinks of its parents (a container
   * cannot redirect sc's write out of its rootfs). Returns whether it wrote.
   */
  writeFileIfChanged(absPath: string, text: string, options?: { within?: string; mode?: number }): Promise<boolean>;
  exists(absPath: string): Promise<boolean>;
  /** Names of the non-directory entries of a directory ([] when it does not exist). */
  listFiles(dir: string): Promise<string[]>;
  remove(absPath: string): Promise<void>;
  /** Whether `absPath` is a statically linked ELF executable (no PT_INTERP); undefined if not ELF / missing. */
  isStaticExecutable(absPath: string): Promise<boolean | undefined>;
}

const isNotFound = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

const workName = (prefix: string, type: string): string => `${prefix}${type}-${process.pid}-${randomBytes(3).toString('hex')}`;

/** Builds the rootfs driver from the run's exec and files drivers. */
export function rootfsDriver(drivers: Pick<Drivers, 'exec' | 'files'>): RootfsDriver {
  const { exec, files } = drivers;
  const imagesDir = files.hostPath(IMAGES_DIR);

  const imagePath = (type: string): string => {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(type) || type.includes('..')) {
      throw new UserError(`"${type}" is not a valid container type (image name): use lowercase letters, digits, '.', '_' and '-'`);
    }
    return path.join(imagesDir, type);
  };

  const readMarker = async (dir: string): Promise<ImageMarker | undefined> => {
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, IMAGE_MARKER), 'utf8');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    try {
      const value = JSON.parse(text) as Partial<ImageMarker>;
      if (typeof value.builder !== 'string') return undefined;
      return { builder: value.builder, params: value.params ?? {}, built_at: String(value.built_at ?? '') };
    } catch {
      // A marker sc cannot read does not vouch for anything.
      return undefined;
    }
  };

  const runBuilder = (command: string, args: readonly string[], options: ExecOptions = {}) =>
    exec.run(command, args, { timeoutMs: BUILD_TIMEOUT_MS, ...options, inNetns: false });

  const removeTree = (dir: string) => fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });

  return {
    imagePath,

    async listImages(): Promise<ImageEntry[]> {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(imagesDir, { withFileTypes: true });
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
      const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.'));
      return Promise.all(
        dirs.map(async (e) => {
          const marker = await readMarker(path.join(imagesDir, e.name));
          return marker ? { type: e.name, marker } : { type: e.name };
        }),
      );
    },

    async buildImage(type, marker, build): Promise<void> {
      const target = imagePath(type);
      await fs.mkdir(imagesDir, { recursive: true });
      const work = path.join(imagesDir, workName(IMAGE_WORK_PREFIX, type));
      await fs.mkdir(work, { mode: 0o755 });
      try {
        await build(work);
        await fs.writeFile(path.join(work, IMAGE_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
        // rename(2) cannot replace a non-empty directory: move the old image aside first.
        const trash = path.join(imagesDir, workName(IMAGE_TRASH_PREFIX, type));
        let hadOld = false;
        try {
          await fs.rename(target, trash);
          hadOld = true;
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
        await fs.rename(work, target);
        if (hadOld) await removeTree(trash);
      } catch (error) {
        await removeTree(work);
        throw error;
      }
    },

    async removeImage(type): Promise<void> {
      const target = imagePath(type);
      // Renamed away first, so a half-deleted tree is never mistaken for the image.
      const trash = path.join(imagesDir, workName(IMAGE_TRASH_PREFIX, type));
      try {
        await fs.rename(target, trash);
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      await removeTree(trash);
    },

    runBuilder,

    async populateTree(dir, entries): Promise<void> {
      for (const entry of entries) {
        const target = path.resolve(dir, entry.path);
        if (!target.startsWith(dir + path.sep)) throw new ScError(`tree entry ${entry.path} leaves ${dir}`);
        if (entry.kind === 'dir') {
          await fs.mkdir(target, { recursive: true, mode: 0o755 });
          if (entry.mode !== undefined) await fs.chmod(target, entry.mode); // mkdir's mode passes the umask
          continue;
        }
        await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
        if (entry.kind === 'symlink') {
          await fs.rm(target, { force: true });
          await fs.symlink(entry.target, target);
        } else if (entry.kind === 'file') {
          await fs.writeFile(target, entry.text, { mode: entry.mode ?? 0o644 });
          await fs.chmod(target, entry.mode ?? 0o644);
        } else {
          await fs.copyFile(entry.from, target);
          await fs.chmod(target, entry.mode ?? 0o755);
        }
      }
    },

    async copyTree(from, to): Promise<void> {
      const partial = path.join(path.dirname(to), `.${path.basename(to)}.partial-${process.pid}-${randomBytes(3).toString('hex')}`);
      await fs.mkdir(path.dirname(to), { recursive: true, mode: 0o755 });
      try {
        // `from/.` copies the contents, so the copy is `partial` itself, with the image's mode and owner.
        await exec.run('cp', ['-a', '--reflink=auto', '--', `${from}/.`, partial], { inNetns: false, timeoutMs: COPY_TIMEOUT_MS });
        await fs.rename(partial, to);
      } catch (error) {
        await removeTree(partial);
        throw error;
      }
    },

    readFile: readObservedFile,

    async writeFileIfChanged(absPath, text, options = {}): Promise<boolean> {
      // Below `within` (a container's root) every component is opened without following links,
      // relative to the directory opened before it: a container racing on its own /etc cannot
      // swap a component for a link between a check and the write (no-follow-fs.ts).
      const trusted = options.within ?? path.dirname(absPath);
      const rel = path.relative(trusted, absPath);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
        throw new ScError(`refusing to write ${absPath}: it is not inside ${trusted}`);
      }
      const current = await readObservedFile(absPath);
      if (current.kind === 'file' && current.text === text) return false;
      try {
        return await writeNoFollow(trusted, rel, text, options.mode !== undefined ? { mode: options.mode } : {});
      } catch (error) {
        if (error instanceof UnsafePathError) throw new ScError(`refusing to write into ${trusted}: ${error.message}`, { cause: error });
        if (current.kind === 'other') {
          throw new ScError(`cannot replace ${absPath}: something other than a regular file is there (${(error as Error).message})`, {
            cause: error,
          });
        }
        throw error;
      }
    },

    async exists(absPath): Promise<boolean> {
      try {
        await fs.lstat(absPath);
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },

    async listFiles(dir): Promise<string[]> {
      try {
        return (await fs.readdir(dir, { withFileTypes: true }))
          .filter((e) => !e.isDirectory())
          .map((e) => e.name)
          .sort();
      } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
      }
    },

    remove: (absPath) => removeTree(absPath),

    isStaticExecutable,
  };
}

async function readObservedFile(absPath: string): Promise<ObservedFile> {
  try {
    const stat = await fs.lstat(absPath);
    if (!stat.isFile()) return { kind: 'other' };
    return { kind: 'file', text: await fs.readFile(absPath, 'utf8') };
  } catch (error) {
    if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return { kind: 'missing' };
    throw error;
  }
}

const PT_INTERP = 3;

/** Reads the ELF program headers: a dynamically linked program names its loader in PT_INTERP. */
export async function isStaticExecutable(absPath: string): Promise<boolean | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(absPath, constants.O_RDONLY);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    const header = Buffer.alloc(64);
    const { bytesRead } = await handle.read(header, 0, 64, 0);
    if (bytesRead < 52 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = header[4] === 2;
    const little = header[5] === 1;
    const u16 = (b: Buffer, o: number) => (little ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (little ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const phoff = is64 ? Number(little ? header.readBigUInt64LE(32) : header.readBigUInt64BE(32)) : u32(header, 28);
    const phentsize = u16(header, is64 ? 54 : 42);
    const phnum = u16(header, is64 ? 56 : 44);
    if (phnum === 0 || phentsize < 4) return undefined;
    const table = Buffer.alloc(phentsize * phnum);
    await handle.read(table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) {
      if (u32(table, i * phentsize) === PT_INTERP) return false;
    }
    return true;
  } finally {
    await handle.close();
  }
}
