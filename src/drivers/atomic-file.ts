// sc's one atomic writer for files it addresses by absolute path (the datastore, state records,
// unit files): readers see the old or the new bytes, never a mix, even when the writer is
// SIGKILLed. The write itself is no-follow-fs's (temp in the same directory, fsync, rename, fsync
// of the directory); this adds per-path ordering within the process and the sweep of temp files
// left by dead writers, which carry host+pid in their names so they can be told from a live one's.
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isProcessRunning } from './lock-file.js';
import { activeTemps, TEMP_MARK, thisHostTag, writeNoFollow } from './no-follow-fs.js';

/** Writes to one path from this process run one after the other (the rename order is the write order). */
const pendingWrites = new Map<string, Promise<unknown>>();

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
async function sweepStaleTempFiles(target: string): Promise<void> {
  const prefix = `.${basename(target)}${TEMP_MARK}${thisHostTag}.`;
  for (const path of await listTempFiles(target)) {
    const name = basename(path);
    if (!name.startsWith(prefix) || activeTemps.has(path)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (pid === process.pid || !isProcessRunning(pid)) await fs.unlink(path).catch(() => undefined);
  }
}

async function writeOnce(path: string, data: string | Uint8Array, mode: number | undefined): Promise<void> {
  // Replace the file a symlink points to, not the symlink (hand-managed datastores use them).
  const target = await fs.realpath(path).catch(() => path);
  await sweepStaleTempFiles(target);
  await writeNoFollow(dirname(target), basename(target), data, { createDirs: false, ...(mode === undefined ? {} : { mode }) });
}

/**
 * Replaces `path` with `data` atomically (its directory must exist). Keeps the existing
 * file's mode and owner unless `mode` is given (a new file: 0o644).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  const previous = pendingWrites.get(path) ?? Promise.resolve();
  const current = previous.catch(() => undefined).then(() => writeOnce(path, data, options.mode));
  pendingWrites.set(path, current);
  try {
    await current;
  } finally {
    if (pendingWrites.get(path) === current) pendingWrites.delete(path);
  }
}
