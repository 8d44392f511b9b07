// One apply per host at a time: <root>/run/srvctl/apply.lock (sc's one lock, drivers/lock-file.ts)
// names its holder. A lock left by a dead process is taken over; a live holder is reported, never
// waited for or broken.
import { join } from 'node:path';
import { acquireLockFile, type HeldLock } from '../drivers/lock-file.js';

export type HostLock = HeldLock;

export const hostLockPath = (root: string): string => join(root, 'run/srvctl/apply.lock');

export async function acquireHostLock(root: string, info: { command: string }): Promise<HostLock> {
  return acquireLockFile(hostLockPath(root), { command: info.command, timeoutMs: 0, createDir: true, what: 'this host' });
}
