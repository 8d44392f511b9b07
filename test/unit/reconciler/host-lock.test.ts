import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LockHeldError } from '../../../src/errors.js';
import { isProcessRunning } from '../../../src/drivers/lock-file.js';
import { acquireHostLock, hostLockPath } from '../../../src/reconciler/host-lock.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'sc-lock-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid as number;
}

async function writeLock(pid: number, extra: Record<string, unknown> = {}): Promise<void> {
  const path = hostLockPath(root);
  await mkdir(dirname(path), { recursive: true });
  const record = { pid, command: 'sc apply (old)', since: '2020-01-01T00:00:00.000Z', hostname: hostname(), token: `old-${pid}`, ...extra };
  await writeFile(path, JSON.stringify(record));
}

const holderPid = async (): Promise<number> => (JSON.parse(await readFile(hostLockPath(root), 'utf8')) as { pid: number }).pid;

describe('acquireHostLock', () => {
  it('creates <root>/run/srvctl/apply.lock naming the holder, and release removes it', async () => {
    const lock = await acquireHostLock(root, { command: 'sc apply' });
    expect(lock.path).toBe(join(root, 'run/srvctl/apply.lock'));
    const record = JSON.parse(await readFile(lock.path, 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ pid: process.pid, command: 'sc apply', host: hostname() });
    expect(new Date(String(record.since)).getTime()).not.toBeNaN();
    await lock.release();
    await lock.release();
    expect(await readdir(dirname(lock.path))).toEqual([]);
  });

  it('reports a live holder with its pid, command and start time', async () => {
    const first = await acquireHostLock(root, { command: 'sc apply --target bridge/sc-1' });
    const second = acquireHostLock(root, { command: 'sc apply' });
    await expect(second).rejects.toThrow(LockHeldError);
    await expect(acquireHostLock(root, { command: 'sc apply' })).rejects.toThrow(
      new RegExp(`pid ${process.pid} on ${hostname()}, "sc apply --target bridge/sc-1", since \\d{4}-`),
    );
    await first.release();
    const third = await acquireHostLock(root, { command: 'sc apply' });
    await third.release();
  });

  it('takes over the stale lock of a dead process', async () => {
    const pid = await deadPid();
    expect(isProcessRunning(pid)).toBe(false);
    await writeLock(pid);
    const lock = await acquireHostLock(root, { command: 'sc apply' });
    expect(await holderPid()).toBe(process.pid);
    await lock.release();
    expect(await readdir(dirname(lock.path))).toEqual([]);
  });

  it('takes over the lock of a zombie (exited, not yet reaped by its parent)', async () => {
    // sh starts a child that exits a little later, then becomes `sleep`, which never reaps it: the
    // child stays a zombie. (A child that exits at once can be reaped by sh before its exec.)
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [chunk] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(chunk.toString().trim());
      for (let waited = 0; !/\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')); waited += 20) {
        if (waited > 30_000) throw new Error(`process ${zombie} never became a zombie`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(isProcessRunning(zombie)).toBe(false);
      await writeLock(zombie);
      const lock = await acquireHostLock(root, { command: 'sc apply' });
      expect(await holderPid()).toBe(process.pid);
      await lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('lets exactly one of two concurrent acquirers win', async () => {
    const results = await Promise.allSettled([acquireHostLock(root, { command: 'a' }), acquireHostLock(root, { command: 'b' })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(lost?.reason).toBeInstanceOf(LockHeldError);
  });

  it('lets exactly one of several concurrent acquirers take over the same stale lock', async () => {
    for (let round = 0; round < 8; round++) {
      await writeLock(await deadPid(), { token: `stale-${round}` });
      const results = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => acquireHostLock(root, { command: `contender ${i}` })));
      const winners = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof acquireHostLock>>> => r.status === 'fulfilled');
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(LockHeldError);
      await (winners[0] as (typeof winners)[number]).value.release();
      // No temp files or takeover markers are left behind.
      expect(await readdir(dirname(hostLockPath(root)))).toEqual([]);
    }
  });

  it('takes over a stale lock that carries no token (written by another tool)', async () => {
    await writeLock(await deadPid(), { token: undefined });
    const lock = await acquireHostLock(root, { command: 'sc apply' });
    expect(await holderPid()).toBe(process.pid);
    await lock.release();
  });

  it('does not remove a lock that is no longer its own', async () => {
    const lock = await acquireHostLock(root, { command: 'sc apply' });
    await writeLock(process.pid, { token: 'someone-else' });
    await lock.release();
    expect(await holderPid()).toBe(process.pid);
  });

  it('refuses an unreadable lock file instead of guessing', async () => {
    await mkdir(dirname(hostLockPath(root)), { recursive: true });
    await writeFile(hostLockPath(root), 'garbage');
    await expect(acquireHostLock(root, { command: 'sc apply' })).rejects.toThrow(/unreadable lock file/);
  });
});
