// sc's one lock: an exclusive lock file naming its holder (pid, host, boot id, process start time,
// command), used for the datastore's writers and for one apply per host.
//
// A lock is stale — and is taken over — when its holder is provably gone: on this host, and either
// the machine rebooted since (another boot id), or the pid no longer exists, is a zombie, or now
// belongs to another process (another start time: the pid was reused). A holder on another host
// (a shared datastore) is never judged. A live holder is named in the LockHeldError.
//
// The lock file only ever appears complete: the record is written to a private staging file and
// hard-linked into place (link(2) fails with EEXIST like O_EXCL). A stale lock is replaced by
// rename under an exclusive takeover marker, so of several processes that saw the same stale lock
// exactly one wins.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockHeldError, UserError } from '../errors.js';

/** What a lock file holds. */
export interface LockRecord {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly since: string;
  /** Unique per acquisition: tells our lock from a later holder's (same pid after reuse, too). */
  readonly token: string;
  /** /proc/sys/kernel/random/boot_id when taken: a lock from before a reboot is stale. */
  readonly bootId?: string;
  /** The holder's start time (clock ticks since boot, /proc/PID/stat field 22): tells pid reuse. */
  readonly startTime?: number;
}

export interface HeldLock {
  readonly path: string;
  /** Removes the lock if it is still ours; safe to call twice. */
  release(): Promise<void>;
}

export interface LockFileOptions {
  /** Who takes it, for the holder's record and messages (e.g. `sc apply`). */
  readonly command: string;
  /** How long to wait for a live holder before LockHeldError (0: fail at once). */
  readonly timeoutMs?: number;
  /** Create the lock's directory when missing (otherwise a missing directory is a UserError). */
  readonly createDir?: boolean;
  /** What is locked, for setup errors (`the datastore`). */
  readonly what?: string;
}

type Found = LockRecord | 'missing' | 'unreadable';

const POLL_MIN_MS = 20;
const POLL_JITTER_MS = 60;

const errnoCode = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code;

let cachedBootId: string | undefined | null = null;
export function currentBootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

/** The fields of /proc/PID/stat from the state on (the command name may hold spaces or ')'). */
function procStat(pid: number): string[] | undefined {
  try {
    // /proc is memory-backed; reading it synchronously keeps liveness a plain predicate.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process's start time in clock ticks since boot (field 22), undefined when it is gone. */
export function processStartTime(pid: number): number | undefined {
  const field = procStat(pid)?.[19];
  return field === undefined ? undefined : Number(field);
}

/** Alive unless the pid is gone (ESRCH) or a zombie nobody reaped (state Z). */
export function isProcessRunning(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (errnoCode(error) === 'ESRCH') return false;
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** Whether the holder of a lock may still be running (a holder on another host always may). */
export function isHolderAlive(holder: Pick<LockRecord, 'pid' | 'host' | 'bootId' | 'startTime'>): boolean {
  if (holder.host !== '' && holder.host !== hostname()) return true;
  const boot = currentBootId();
  if (holder.bootId !== undefined && boot !== undefined && holder.bootId !== boot) return false;
  if (!isProcessRunning(holder.pid)) return false;
  if (holder.startTime !== undefined) {
    const started = processStartTime(holder.pid);
    if (started !== undefined && started !== holder.startTime) return false;
  }
  return true;
}

export function describeHolder(found: Found): string {
  if (found === 'missing') return 'released';
  if (found === 'unreadable') return 'unreadable lock file; if no sc process is running, remove it';
  return `pid ${found.pid} on ${found.host || 'an unknown host'}, "${found.command}", since ${found.since}`;
}

async function readRecord(path: string): Promise<Found> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.pid !== 'number') return 'unreadable';
    // A lock without a token (written by hand or another tool) is identified by its content.
    const token = typeof v.token === 'string' ? v.token : createHash('sha256').update(text).digest('hex');
    const host = typeof v.host === 'string' ? v.host : typeof v.hostname === 'string' ? v.hostname : '';
    return {
      pid: v.pid,
      host,
      command: String(v.command ?? '?'),
      since: String(v.since ?? '?'),
      token,
      ...(typeof v.bootId === 'string' ? { bootId: v.bootId } : {}),
      ...(typeof v.startTime === 'number' ? { startTime: v.startTime } : {}),
    };
  } catch {
    return 'unreadable';
  }
}

async function linkExclusive(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  }
}

async function unlinkIfToken(path: string, token: string): Promise<void> {
  const current = await readRecord(path).catch(() => 'unreadable' as const);
  // Nobody but the holder replaces a live lock, so check-then-unlink cannot remove another's.
  if (current !== 'missing' && current !== 'unreadable' && current.token === token) await unlink(path).catch(() => undefined);
}

const safeToken = (token: string): string => token.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 80);

/** Replaces the stale lock `stale` by our staging file; true when we now hold the lock. */
async function takeOver(path: string, stale: LockRecord, staging: string): Promise<boolean> {
  const marker = `${path}.takeover-${safeToken(stale.token)}`;
  if (!(await linkExclusive(staging, marker))) {
    const taker = await readRecord(marker);
    if (taker === 'missing' || taker === 'unreadable' || isHolderAlive(taker)) return false;
    // The taker died between marker and rename: clear only its marker.
    await unlinkIfToken(marker, taker.token);
    return false;
  }
  try {
    const current = await readRecord(path);
    if (current === 'missing' || current === 'unreadable' || current.token !== stale.token) return false;
    await rename(staging, path);
    return true;
  } finally {
    await unlink(marker).catch(() => undefined);
  }
}

function setupError(what: string, dir: string, error: unknown): UserError {
  const code = errnoCode(error);
  if (code === 'ENOENT') return new UserError(`cannot lock ${what}: directory ${dir} does not exist`);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new UserError(`cannot lock ${what}: ${dir} is not writable (${code}); check its permissions`);
  }
  return new UserError(`cannot lock ${what} in ${dir}: ${(error as Error).message}`);
}

/** Staging files and takeover markers of holders that died, left next to the lock: removed. */
async function sweepLeftovers(path: string, ownStaging: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const full = join(dir, name);
    if (!name.startsWith(prefix) || full === ownStaging) continue;
    const found = await readRecord(full).catch(() => 'unreadable' as const);
    if (found !== 'missing' && found !== 'unreadable' && !isHolderAlive(found)) await unlink(full).catch(() => undefined);
  }
}

/** Takes the lock at `path`, waiting up to `timeoutMs` for a live holder, taking over a dead one's. */
export async function acquireLockFile(path: string, options: LockFileOptions): Promise<HeldLock> {
  const dir = dirname(path);
  const what = options.what ?? path;
  const pid = process.pid;
  const record: LockRecord = {
    pid,
    host: hostname(),
    command: options.command,
    since: new Date().toISOString(),
    token: randomUUID(),
    ...(currentBootId() !== undefined ? { bootId: currentBootId() as string } : {}),
    ...(processStartTime(pid) !== undefined ? { startTime: processStartTime(pid) as number } : {}),
  };
  const staging = `${path}.${record.token}`;
  try {
    if (options.createDir) await mkdir(dir, { recursive: true });
    await writeFile(staging, `${JSON.stringify(record)}\n`, { flag: 'wx', mode: 0o644 });
  } catch (error) {
    throw setupError(what, dir, error);
  }
  const deadline = Date.now() + (options.timeoutMs ?? 0);
  try {
    for (let round = 0; ; round++) {
      let held: boolean;
      try {
        held = await linkExclusive(staging, path);
      } catch (error) {
        throw setupError(what, dir, error);
      }
      if (held) {
        await sweepLeftovers(path, staging);
        return { path, release: () => unlinkIfToken(path, record.token) };
      }
      const found = await readRecord(path);
      if (found === 'missing') continue; // released in between: try again
      if (found !== 'unreadable' && !isHolderAlive(found)) {
        if (await takeOver(path, found, staging)) {
          await sweepLeftovers(path, staging);
          return { path, release: () => unlinkIfToken(path, record.token) };
        }
        if ((await readRecord(path)) === 'missing') continue;
      }
      if (Date.now() >= deadline || round > 100_000) throw new LockHeldError(path, describeHolder(found));
      await sleep(POLL_MIN_MS + Math.floor(Math.random() * POLL_JITTER_MS));
    }
  } finally {
    await unlink(staging).catch(() => undefined);
  }
}

/** Runs `fn` while holding the lock at `path`; released on success and failure. */
export async function withLockFile<T>(path: string, options: LockFileOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLockFile(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
