// sc's one lock: a lock whose holder is provably gone (reboot, pid gone, zombie, pid reused) is
// taken over; a live holder is named; the record carries what makes those checks possible.
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockHeldError } from '../../../src/errors.js';
import { acquireLockFile, currentBootId, isHolderAlive, processStartTime, withLockFile } from '../../../src/drivers/lock-file.js';

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sc-lockfile-'));
  path = join(dir, 'x.lock');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A live process that is not us: our parent (jest's worker parent). */
const livePid = process.ppid;

async function plant(extra: Record<string, unknown>): Promise<void> {
  await writeFile(
    path,
    JSON.stringify({ pid: livePid, host: hostname(), command: 'sc apply (old)', since: '2026-01-01T00:00:00Z', token: 'old', ...extra }),
  );
}

describe('lock file', () => {
  it('records pid, host, boot id and process start time', async () => {
    const lock = await acquireLockFile(path, { command: 'sc apply' });
    const record = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({
      pid: process.pid,
      host: hostname(),
      command: 'sc apply',
      bootId: currentBootId(),
      startTime: processStartTime(process.pid),
    });
    expect(typeof record.startTime).toBe('number');
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes over a lock taken before a reboot (another boot id), though its pid runs now', async () => {
    await plant({ bootId: '00000000-0000-0000-0000-000000000000', startTime: processStartTime(livePid) });
    expect(isHolderAlive({ pid: livePid, host: hostname(), bootId: '00000000-0000-0000-0000-000000000000' })).toBe(false);
    const ran = await withLockFile(path, { command: 'sc apply' }, async () => JSON.parse(await readFile(path, 'utf8')) as { pid: number });
    expect(ran.pid).toBe(process.pid);
  });

  it('takes over a lock whose pid was reused by another process (another start time)', async () => {
    const started = processStartTime(livePid) as number;
    await plant({ bootId: currentBootId(), startTime: started + 12345 });
    const lock = await acquireLockFile(path, { command: 'sc apply' });
    expect((JSON.parse(await readFile(path, 'utf8')) as { pid: number }).pid).toBe(process.pid);
    await lock.release();
  });

  it('names a live holder (same boot, same start time) and leaves its lock alone', async () => {
    await plant({ bootId: currentBootId(), startTime: processStartTime(livePid) });
    const attempt = acquireLockFile(path, { command: 'sc apply', timeoutMs: 100 });
    await expect(attempt).rejects.toBeInstanceOf(LockHeldError);
    await expect(acquireLockFile(path, { command: 'sc apply' })).rejects.toThrow(
      new RegExp(`pid ${livePid} on ${hostname()}, "sc apply \\(old\\)", since 2026-01-01`),
    );
    expect((JSON.parse(await readFile(path, 'utf8')) as { token: string }).token).toBe('old');
    expect(await readdir(dir)).toEqual(['x.lock']);
  });

  it('never judges a holder on another host', async () => {
    await plant({ host: `not-${hostname()}`, pid: 999_999_999, bootId: 'other' });
    await expect(acquireLockFile(path, { command: 'sc apply' })).rejects.toThrow(/on not-/);
  });

  it('a missing directory is a UserError unless asked to create it', async () => {
    await expect(acquireLockFile(join(dir, 'no/x.lock'), { command: 'c', what: 'the datastore' })).rejects.toThrow(
      /cannot lock the datastore: directory .* does not exist/,
    );
    const lock = await acquireLockFile(join(dir, 'no/x.lock'), { command: 'c', createDir: true });
    await lock.release();
  });
});
