// withDatastoreLock: mutual exclusion, release on success and failure, takeover of a dead
// holder's lock, and a LockHeldError naming a live (or foreign-host) holder.
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATASTORE_LOCK_NAME, withDatastoreLock } from '../../../src/datastore/datastore-lock.js';
import { LockHeldError, UserError } from '../../../src/errors.js';

let dir: string;
let lockPath: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), 'sc-lock-'));
  lockPath = join(dir, DATASTORE_LOCK_NAME);
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  if (child.pid === undefined) throw new Error('could not start a child process');
  return child.pid;
}

async function writeHolder(holder: Record<string, unknown>): Promise<void> {
  await fs.writeFile(lockPath, JSON.stringify(holder));
}

test('holds the lock file while fn runs and removes it afterwards', async () => {
  const seen = await withDatastoreLock(
    dir,
    'sc add-user bob',
    async () => JSON.parse(await fs.readFile(lockPath, 'utf8')) as Record<string, unknown>,
  );
  expect(seen).toMatchObject({ pid: process.pid, host: hostname(), command: 'sc add-user bob' });
  expect(typeof seen.since).toBe('string');
  await expect(fs.access(lockPath)).rejects.toThrow(/ENOENT/);
  expect(await fs.readdir(dir)).toEqual([]);
});

test('removes staging files of writers that died before linking them, keeps live ones', async () => {
  const dead = join(dir, `${DATASTORE_LOCK_NAME}.${randomUUID()}`);
  const live = join(dir, `${DATASTORE_LOCK_NAME}.${randomUUID()}`);
  const holder = (pid: number): string => JSON.stringify({ pid, host: hostname(), command: 'c', since: 's', token: 't' });
  await fs.writeFile(dead, holder(deadPid()));
  await fs.writeFile(live, holder(process.ppid));
  await withDatastoreLock(dir, 'x', async () => undefined);
  expect(await fs.readdir(dir)).toEqual([live.slice(dir.length + 1)]);
});

test('releases the lock when fn throws', async () => {
  await expect(withDatastoreLock(dir, 'x', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  await expect(fs.access(lockPath)).rejects.toThrow(/ENOENT/);
});

test('serializes holders: critical sections never overlap', async () => {
  const events: string[] = [];
  let inside = 0;
  let maxInside = 0;
  await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      withDatastoreLock(dir, `job ${i}`, async () => {
        inside += 1;
        maxInside = Math.max(maxInside, inside);
        events.push(`enter ${i}`);
        await new Promise((r) => setTimeout(r, 5));
        events.push(`leave ${i}`);
        inside -= 1;
      }),
    ),
  );
  expect(maxInside).toBe(1);
  expect(events).toHaveLength(10);
  for (let k = 0; k < events.length; k += 2) expect(events[k + 1]).toBe(events[k]?.replace('enter', 'leave'));
});

test('takes over the lock of a dead process on this host', async () => {
  await writeHolder({ pid: deadPid(), host: hostname(), command: 'sc add-ve x', since: '2020-01-01T00:00:00Z', token: randomUUID() });
  const ran = await withDatastoreLock(dir, 'sc add-user y', async () => 'ran', { timeoutMs: 2000 });
  expect(ran).toBe('ran');
  await expect(fs.access(lockPath)).rejects.toThrow(/ENOENT/);
});

test('a live holder makes it wait, then LockHeldError names the holder; the lock stays', async () => {
  await writeHolder({ pid: process.ppid, host: hostname(), command: 'sc add-ve busy.example.com', since: '2024-05-01T10:00:00Z', token: 'other' });
  const attempt = withDatastoreLock(dir, 'sc add-user z', async () => 'ran', { timeoutMs: 150 });
  await expect(attempt).rejects.toBeInstanceOf(LockHeldError);
  await expect(withDatastoreLock(dir, 'sc add-user z', async () => 'ran', { timeoutMs: 50 })).rejects.toThrow(
    new RegExp(`pid ${process.ppid} on ${hostname()}, "sc add-ve busy.example.com", since 2024-05-01T10:00:00Z`),
  );
  expect(JSON.parse(await fs.readFile(lockPath, 'utf8'))).toMatchObject({ token: 'other' });
});

test('a holder on another host is never taken over (its pid means nothing here)', async () => {
  await writeHolder({ pid: deadPid(), host: `not-${hostname()}`, command: 'sc allocate', since: '2024-05-01T10:00:00Z', token: 't' });
  await expect(withDatastoreLock(dir, 'x', async () => 'ran', { timeoutMs: 50 })).rejects.toThrow(/on not-/);
});

test('an unreadable lock file is reported, not removed', async () => {
  await fs.writeFile(lockPath, 'garbage');
  await expect(withDatastoreLock(dir, 'x', async () => 'ran', { timeoutMs: 50 })).rejects.toThrow(/unreadable lock file/);
  expect(await fs.readFile(lockPath, 'utf8')).toBe('garbage');
});

test('waits for a holder that finishes within the timeout', async () => {
  let release!: (v: string) => void;
  const held = new Promise<string>((r) => (release = r));
  const order: string[] = [];
  const first = withDatastoreLock(dir, 'first', async () => {
    order.push('first in');
    const v = await held;
    order.push('first out');
    return v;
  });
  while ((await fs.readFile(lockPath, 'utf8').catch(() => '')).includes('"first"') === false) await new Promise((r) => setTimeout(r, 5));
  const second = withDatastoreLock(dir, 'second', async () => (order.push('second'), 'second'), { timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 50));
  release('first');
  await expect(Promise.all([first, second])).resolves.toEqual(['first', 'second']);
  expect(order).toEqual(['first in', 'first out', 'second']);
});

test('a missing datastore directory is a UserError', async () => {
  await expect(withDatastoreLock(join(dir, 'nope'), 'x', async () => 'ran')).rejects.toThrow(UserError);
  await expect(withDatastoreLock(join(dir, 'nope'), 'x', async () => 'ran')).rejects.toThrow(/does not exist/);
});
