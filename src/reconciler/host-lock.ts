// One apply per host at a time: <root>/run/srvctl/apply.lock names its holder. A lock left by a
// dead process is taken over; a live holder is reported, never waited for or broken.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { LockHeldError } from '../errors.js';

export interface HostLock {
  readonly path: string;
  /** Removes the lock if it is still ours; safe to call twice. */
  release(): Promise<void>;
}

interface LockRecord {
  pid: number;
  command: string;
  since: string;
  hostname: string;
  /** Unique per acquisition: tells our lock from a later holder's, and names its takeover. */
  token: string;
}

export const hostLockPath = (root: string): string => join(root, 'run/srvctl/apply.lock');

export async function acquireHostLock(root: string, info: { command: string }): Promise<HostLock> {
  const path = hostLockPath(root);
  await mkdir(dirname(path), { recursive: true });
  const record: LockRecord = { pid: process.pid, command: info.command, since: new Date().toISOString(), hostname: hostname(), token: randomUUID() };
  // The lock only ever appears complete: written to a private file, then linked into place.
  const temp = `${path}.${record.token}.tmp`;
  await writeFile(temp, `${JSON.stringify(record)}\n`, { mode: 0o644 });
  try {
    for (let round = 0; round < 5; round++) {
      if (await linkExclusive(temp, path)) return heldLock(path, record.token);
      const holder = await readRecord(path);
      if (holder === 'missing') continue; // released in between: try again
      if (holder === 'unreadable' || isHolderAlive(holder)) throw new LockHeldError(path, describe(holder));
      if (await takeOver(path, holder, temp)) return heldLock(path, record.token);
    }
    throw new LockHeldError(path, 'kept changing hands while sc tried to take it');
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Replaces the stale lock `stale` by ours. Only one process may take over a given stale lock:
 * the marker `<path>.takeover-<token>` is created exclusively, and the stale token is checked
 * again after holding it, so a process that saw the same stale lock earlier cannot later
 * overwrite the new holder. The marker is removed only after the new lock is in place.
 */
async function takeOver(path: string, stale: LockRecord, ours: string): Promise<boolean> {
  const marker = `${path}.takeover-${safeToken(stale.token)}`;
  if (!(await linkExclusive(ours, marker))) {
    const taker = await readRecord(marker);
    if (taker === 'missing' || taker === 'unreadable' || isHolderAlive(taker)) return false;
    // The taker died in the few instructions between marker and rename: clear only its marker.
    await unlinkIfToken(marker, taker.token);
    return false;
  }
  try {
    const current = await readRecord(path);
    if (current === 'missing' || current === 'unreadable' || current.token !== stale.token) return false;
    await rename(ours, path);
    return true;
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

function heldLock(path: string, token: string): HostLock {
  return { path, release: () => unlinkIfToken(path, token) };
}

async function unlinkIfToken(path: string, token: string): Promise<void> {
  const current = await readRecord(path);
  // Nobody but the holder replaces a live lock, so check-then-unlink cannot remove another's.
  if (current !== 'missing' && current !== 'unreadable' && current.token === token) await unlink(path).catch(() => undefined);
}

async function linkExclusive(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function readRecord(path: string): Promise<LockRecord | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<LockRecord>;
    if (typeof value.pid !== 'number') return 'unreadable';
    // A lock without a token (written by hand or another tool) is identified by its content.
    const token = typeof value.token === 'string' ? value.token : createHash('sha256').update(text).digest('hex');
    return { pid: value.pid, token, command: String(value.command ?? '?'), since: String(value.since ?? '?'), hostname: String(value.hostname ?? '') };
  } catch {
    return 'unreadable';
  }
}

/** A holder on another machine (shared --root) cannot be checked, so it counts as alive. */
function isHolderAlive(holder: LockRecord): boolean {
  if (holder.hostname !== '' && holder.hostname !== hostname()) return true;
  return isProcessRunning(holder.pid);
}

/** Alive unless the pid is gone (ESRCH) or a zombie nobody reaped (state Z in /proc/PID/stat). */
export function isProcessRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  return processState(pid) !== 'Z';
}

function processState(pid: number): string | undefined {
  let stat: string;
  try {
    // /proc is memory-backed; reading it synchronously keeps this a plain predicate.
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name in parentheses may hold spaces or ')': the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ', 1)[0];
}

function describe(holder: LockRecord | 'unreadable'): string {
  if (holder === 'unreadable') return 'unreadable lock file; if no sc is running, remove it';
  const where = holder.hostname && holder.hostname !== hostname() ? ` on ${holder.hostname}` : '';
  return `pid ${holder.pid}${where}, "${holder.command}", since ${holder.since}`;
}

function safeToken(token: string): string {
  return token.replace(/[^A-Za-z0-9-]/g, '_');
}
