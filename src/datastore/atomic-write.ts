// Atomic file replacement for the datastore: readers see the old or the new bytes, never a mix,
// even when the writer is SIGKILLed. Temp files carry host+pid so stale ones can be swept.
//
// Not write-file-atomic: its temp names (`file.<murmurhash>`) do not say which process made
// them, so temps left by a killed writer cannot be told from a live writer's and pile up on a
// datastore written many times; it also does not fsync the directory after the rename.
import { constants, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isProcessRunning as isProcessAlive } from '../drivers/lock-file.js';

const TEMP_MARK = '.sc-tmp.';
const thisHost = sanitizeHostForFileName(hostname());
let tempCounter = 0;
/** Writes to one path from this process run one after the other (the rename order is the write order). */
const pendingWrites = new Map<string, Promise<unknown>>();
/** Temp files this process is writing right now (a stale one of our own pid is a leftover of a failed write). */
const activeTemps = new Set<string>();

function sanitizeHostForFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 64) || 'host';
}

/** `.<base>.sc-tmp.<host>.<pid>.<n>` — hidden, in the target's directory so rename(2) stays atomic. */
function tempNameFor(target: string): string {
  tempCounter += 1;
  return join(dirname(target), `.${basename(target)}${TEMP_MARK}${thisHost}.${process.pid}.${tempCounter}`);
}

/** The temp files of `target` that some writer (live or dead) left in its directory. */
export async function listTempFiles(target: string): Promise<string[]> {
  const prefix = `.${basename(target)}${TEMP_MARK}`;
  const entries = await fs.readdir(dirname(target)).catch(() => [] as string[]);
  return entries.filter((e) => e.startsWith(prefix)).map((e) => join(dirname(target), e));
}

/**
 * Removes temp files of `target` left by dead writers on this host. Temps of other hosts (a
 * shared datastore) and of live processes stay; our own pid's temps are stale unless in flight.
 */
async function sweepStaleTempFiles(target: string, inFlight: string): Promise<void> {
  const prefix = `.${basename(target)}${TEMP_MARK}${thisHost}.`;
  for (const path of await listTempFiles(target)) {
    const name = basename(path);
    if (!name.startsWith(prefix) || path === inFlight) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    const stale = pid === process.pid ? !activeTemps.has(path) : !isProcessAlive(pid);
    if (stale) await fs.unlink(path).catch(() => undefined);
  }
}

async function existingMetadata(path: string): Promise<{ mode: number; uid: number; gid: number } | undefined> {
  try {
    const s = await fs.stat(path);
    return { mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** fsync of the directory makes the rename itself durable; some filesystems refuse it, which is fine. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch {
    // EINVAL/EISDIR/EACCES on some filesystems: the data itself is already synced.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function writeOnce(path: string, text: string): Promise<void> {
  // Replace the file a symlink points to, not the symlink (hand-managed datastores use them).
  const target = await fs.realpath(path).catch(() => path);
  const existing = await existingMetadata(target);
  const temp = tempNameFor(target);
  activeTemps.add(temp);
  try {
    await sweepStaleTempFiles(target, temp);
    const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, existing?.mode ?? 0o666);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
      if (existing) {
        // open()'s mode is filtered by the umask; the old file's mode is kept exactly.
        await handle.chmod(existing.mode);
        if (process.getuid?.() === 0) await handle.chown(existing.uid, existing.gid);
      }
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
    await syncDirectory(dirname(target));
  } catch (error) {
    await fs.unlink(temp).catch(() => undefined);
    throw error;
  } finally {
    activeTemps.delete(temp);
  }
}

/** Replaces `path` with `text` atomically: temp file in the same dir, fsync, rename, fsync dir. Keeps mode and owner. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const previous = pendingWrites.get(path) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(() => writeOnce(path, text));
  pendingWrites.set(path, current);
  try {
    await current;
  } finally {
    if (pendingWrites.get(path) === current) pendingWrites.delete(path);
  }
}
