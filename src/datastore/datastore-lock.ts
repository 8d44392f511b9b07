// Serializes the writers of one datastore: an exclusive lock file `<dir>/.sc-datastore.lock`
// naming its holder; a lock left by a dead process on this host is taken over.
//
// The lock file is created complete-or-not-at-all: the holder record is written to a private
// temp file and hard-linked into place (link(2) fails with EEXIST like O_EXCL does), so no
// reader ever sees an empty lock whose creator may have died before writing its name.
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError, UserError } from '../errors.js';
import { isProcessAlive } from './process-liveness.js';

export const DATASTORE_LOCK_NAME = '.sc-datastore.lock';
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
const POLL_MIN_MS = 20;
const POLL_JITTER_MS = 60;

/** What the lock file holds. `token` tells two holders with the same pid (pid reuse) apart. */
export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
  token: string;
}

export interface LockOptions {
  /** How long to wait for another writer before giving up with LockHeldError (default 10 s). */
  timeoutMs?: number;
}

type ReadHolder = { holder: LockHolder } | { unreadable: string } | undefined;

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function lockSetupError(dir: string, error: unknown): UserError {
  const code = errnoCode(error);
  if (code === 'ENOENT') return new UserError(`cannot lock the datastore: directory ${dir} does not exist`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new UserError(`cannot lock the datastore: ${dir} is not writable (${code}); check its permissions or point --datastore elsewhere`);
  }
  return new UserError(`cannot lock the datastore in ${dir}: ${(error as Error).message}`);
}

/** Creates `path` holding `holder` only if it does not exist yet. False when someone else has it. */
async function createExclusive(dir: string, path: string, holder: LockHolder): Promise<boolean> {
  const staging = `${path}.${holder.token}`;
  try {
    await fs.writeFile(staging, `${JSON.stringify(holder)}\n`, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    throw lockSetupError(dir, error);
  }
  try {
    await fs.link(staging, path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw lockSetupError(dir, error);
  } finally {
    await fs.unlink(staging).catch(() => undefined);
  }
}

function isLockHolder(value: unknown): value is LockHolder {
  const v = value as Partial<LockHolder> | null;
  return (
    typeof v === 'object' && v !== null && typeof v.pid === 'number' && typeof v.host === 'string' &&
    typeof v.command === 'string' && typeof v.since === 'string' && typeof v.token === 'string'
  );
}

async function readHolder(path: string): Promise<ReadHolder> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (isLockHolder(parsed)) return { holder: parsed };
  } catch {
    // fall through: a lock file sc did not write
  }
  return { unreadable: text.trim().slice(0, 200) };
}

/** Only a holder on this host can be proven dead; other hosts' pids mean nothing here. */
function isStale(holder: LockHolder): boolean {
  return holder.host === hostname() && !isProcessAlive(holder.pid);
}

export function describeHolder(found: ReadHolder): string {
  if (found === undefined) return 'released';
  if ('unreadable' in found) return `unreadable lock file (${JSON.stringify(found.unreadable)}); remove it if no sc process is running`;
  const h = found.holder;
  return `pid ${h.pid} on ${h.host}, "${h.command}", since ${h.since}`;
}

/**
 * Removes a stale lock — but only the very lock judged stale (same token): between reading it and
 * removing it another process may already have taken it over and created a fresh one. A short-lived
 * `.break` lock keeps two processes from doing this at the same time.
 */
async function breakStaleLock(dir: string, lockPath: string, staleToken: string, me: LockHolder): Promise<void> {
  const breakPath = `${lockPath}.break`;
  const breaker = { ...me, token: randomUUID() };
  if (!(await createExclusive(dir, breakPath, breaker))) {
    const other = await readHolder(breakPath);
    if (other && 'holder' in other && isStale(other.holder)) await fs.unlink(breakPath).catch(() => undefined);
    return;
  }
  try {
    const current = await readHolder(lockPath);
    if (current && 'holder' in current && current.holder.token === staleToken) await fs.unlink(lockPath);
  } finally {
    await fs.unlink(breakPath).catch(() => undefined);
  }
}

async function acquire(dir: string, command: string, timeoutMs: number): Promise<{ lockPath: string; me: LockHolder }> {
  const lockPath = join(dir, DATASTORE_LOCK_NAME);
  const me: LockHolder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString(), token: randomUUID() };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await createExclusive(dir, lockPath, me)) return { lockPath, me };
    const found = await readHolder(lockPath);
    if (found === undefined) continue; // released between our attempt and the read
    if ('holder' in found && isStale(found.holder)) {
      await breakStaleLock(dir, lockPath, found.holder.token, me);
      continue;
    }
    if (Date.now() >= deadline) throw new LockHeldError(lockPath, describeHolder(found));
    await sleep(POLL_MIN_MS + Math.floor(Math.random() * POLL_JITTER_MS));
  }
}

const STAGING_SUFFIX = /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Staging files of writers killed between writing and linking them: removed once we hold the lock. */
async function sweepStaleStagingFiles(dir: string): Promise<void> {
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of entries) {
    if (!name.startsWith(`${DATASTORE_LOCK_NAME}.`) || !STAGING_SUFFIX.test(name)) continue;
    const found = await readHolder(join(dir, name)).catch(() => undefined);
    if (found && 'holder' in found && isStale(found.holder)) await fs.unlink(join(dir, name)).catch(() => undefined);
  }
}

async function release(lockPath: string, me: LockHolder): Promise<void> {
  const current = await readHolder(lockPath).catch(() => undefined);
  if (current && 'holder' in current && current.holder.token === me.token) {
    await fs.unlink(lockPath).catch(() => undefined);
  }
}

/**
 * Runs `fn` while holding the datastore's writer lock. Waits up to `timeoutMs` for another writer,
 * then throws LockHeldError naming the holder. Not re-entrant: a nested call for the same dir waits
 * for the outer one and times out.
 */
export async function withDatastoreLock<T>(dir: string, command: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const { lockPath, me } = await acquire(dir, command, opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  try {
    await sweepStaleStagingFiles(dir);
    return await fn();
  } finally {
    await release(lockPath, me);
  }
}
