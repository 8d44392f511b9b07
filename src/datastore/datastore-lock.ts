// Serializes the writers of one datastore: the lock file `<dir>/.sc-datastore.lock` (sc's one
// lock, drivers/lock-file.ts) naming its holder; a lock left by a dead process is taken over.
import { join } from 'node:path';
import { withLockFile } from '../drivers/lock-file.js';

export const DATASTORE_LOCK_NAME = '.sc-datastore.lock';
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

export interface LockOptions {
  /** How long to wait for another writer before giving up with LockHeldError (default 10 s). */
  timeoutMs?: number;
}

/**
 * Runs `fn` while holding the datastore's writer lock. Waits up to `timeoutMs` for another writer,
 * then throws LockHeldError naming the holder. Not re-entrant: a nested call for the same dir waits
 * for the outer one and times out.
 */
export async function withDatastoreLock<T>(dir: string, command: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  return withLockFile(join(dir, DATASTORE_LOCK_NAME), { command, timeoutMs: opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, what: 'the datastore' }, fn);
}
