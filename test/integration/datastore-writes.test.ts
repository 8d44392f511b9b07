// Datastore writes under real processes (compiled code in dist/, built by `npm test`):
// (1) a writer SIGKILLed at random moments never leaves a half-written file or a pile of temps;
// (2) eight concurrent `add-user` processes all land, with distinct ids, in a valid datastore.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATASTORE_LOCK_NAME } from '../../src/datastore/datastore-lock.js';
import { loadDatastore } from '../../src/datastore/load-datastore.js';
import { makeDatastore, SMALL_YAML, writableLocation } from '../fixtures/edit/small-datastore.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = join(repo, 'test/fixtures/edit');
const compiled = ['dist/drivers/atomic-file.js', 'dist/datastore/datastore-edits.js'].map((f) => join(repo, f));

beforeAll(() => {
  const missing = compiled.filter((f) => !existsSync(f));
  if (missing.length) throw new Error(`compiled modules missing (${missing.join(', ')}): run "npm run build" first (npm test does)`);
});

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => done({ code, signal }));
  });
}

/** Resolves with the number of completed writes once the child said "ready". */
function whenReady(child: ChildProcess): { ready: Promise<void>; writes: () => number } {
  let writes = 0;
  let buffered = '';
  const ready = new Promise<void>((done, fail) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') {
          writes += 1;
          done();
        } else if (line === 'w') writes += 1;
      }
    });
    child.once('exit', (code) => fail(new Error(`writer exited (${code}) before it was ready`)));
  });
  return { ready, writes: () => writes };
}

test('a writer SIGKILLed at random moments leaves the old or the new version, never a mix', async () => {
  const dir = await fs.mkdtemp(join(tmpdir(), 'sc-atomic-kill-'));
  dirs.push(dir);
  const data = join(dir, 'data');
  await fs.mkdir(data);
  // Two ~1 MB versions of different lengths: a torn write could not pass for either.
  const versionA = `${JSON.stringify({ version: 'A', users: Array.from({ length: 9000 }, (_, i) => ({ name: `a${i}`, uid: 1000 + i, key: 'A'.repeat(80) })) }, null, 2)}\n`;
  const versionB = `${JSON.stringify({ version: 'B', users: Array.from({ length: 9500 }, (_, i) => ({ name: `b${i}`, uid: 5000 + i, key: 'B'.repeat(80) })) }, null, 2)}\n`;
  expect(versionA.length).toBeGreaterThan(1_000_000);
  const fileA = join(dir, 'A.json');
  const fileB = join(dir, 'B.json');
  await fs.writeFile(fileA, versionA);
  await fs.writeFile(fileB, versionB);
  const target = join(data, 'users.json');
  await fs.writeFile(target, versionA);

  const kills = 50;
  let completedWrites = 0;
  for (let i = 0; i < kills; i++) {
    const child = spawn(process.execPath, [join(fixtures, 'atomic-writer.mjs'), target, fileA, fileB], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const progress = whenReady(child);
      await progress.ready;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 40)));
      child.kill('SIGKILL');
      const { signal } = await exited(child);
      expect(signal).toBe('SIGKILL');
      completedWrites += progress.writes();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const text = await fs.readFile(target, 'utf8');
    expect(text === versionA || text === versionB).toBe(true);
    expect(['A', 'B']).toContain((JSON.parse(text) as { version: string }).version);
    const others = (await fs.readdir(data)).filter((f) => f !== 'users.json');
    // At most the temp file of the write the kill interrupted; the next writer sweeps it.
    expect(others.length).toBeLessThanOrEqual(1);
    for (const f of others) expect(f).toMatch(/^\.users\.json\.sc-tmp\./);
  }
  // Every writer completed at least one write before it was killed: the kills hit a busy writer.
  expect(completedWrites).toBeGreaterThanOrEqual(kills);
});

test('eight concurrent add-user processes all land with distinct ids in a valid datastore', async () => {
  const dir = await makeDatastore(SMALL_YAML, 'sc-concurrent-');
  dirs.push(dir);
  const names = Array.from({ length: 8 }, (_, i) => `user${i + 1}`);
  const children = names.map((name, i) =>
    spawn(process.execPath, [join(fixtures, 'add-user.mjs'), dir, name, i % 2 === 0 ? 'alpha' : 'root'], { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const stderr = children.map((c) => {
    let text = '';
    c.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return () => text;
  });
  try {
    const results = await Promise.all(children.map(exited));
    results.forEach((r, i) => expect({ name: names[i], ...r, stderr: stderr[i]?.() }).toEqual({ name: names[i], code: 0, signal: null, stderr: '' }));
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  const { model } = await loadDatastore(writableLocation(dir)); // strict: throws if invalid
  for (const name of names) expect(model.users[name]).toBeDefined();
  const users = Object.entries(model.users);
  const idKeys = users.map(([, u]) => `${u.reseller ?? 'root'}/${u.user_id}`);
  expect(new Set(idKeys).size).toBe(users.length);
  const uids = users.map(([, u]) => u.uid);
  expect(new Set(uids).size).toBe(users.length);
  expect(uids.filter((u) => (u ?? 0) > 1003).sort()).toEqual([1004, 1005, 1006, 1007, 1008, 1009, 1010, 1011]);
  const leftovers = (await fs.readdir(dir)).filter((f) => f === DATASTORE_LOCK_NAME || f.includes('.sc-tmp.'));
  expect(leftovers).toEqual([]);
  // The users file is still the hand-written one plus the additions.
  expect((await fs.readFile(join(dir, 'users.yaml'), 'utf8')).startsWith(SMALL_YAML['users.yaml'] as string)).toBe(true);
});

test('a write that fails half-way (a full disk) keeps the old file and leaves no temp, also as root', async () => {
  // Root writes into read-only directories, so the failure is a full filesystem: a 64 KiB tmpfs in
  // a private mount namespace (nothing is mounted outside it), written 1 MiB.
  const dir = await fs.mkdtemp(join(tmpdir(), 'sc-atomic-full-'));
  dirs.push(dir);
  const probe = `
    const [, target] = process.argv;
    const { writeFileAtomic } = await import(${JSON.stringify(compiled[0])});
    const { readFileSync, readdirSync } = await import('node:fs');
    const { dirname } = await import('node:path');
    let code = 'none';
    try { await writeFileAtomic(target, 'x'.repeat(1 << 20)); } catch (e) { code = e.code ?? String(e); }
    console.log(JSON.stringify({ code, text: readFileSync(target, 'utf8'), entries: readdirSync(dirname(target)) }));
  `;
  const script =
    'mount -t tmpfs -o size=64k sc-test-full "$1" && printf \'old\\n\' > "$1/users.json" && exec "$2" --input-type=module -e "$3" "$1/users.json"';
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', dir, process.execPath, probe], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const { code } = await exited(child);
  expect(code).toBe(0);
  expect(JSON.parse(out)).toEqual({ code: 'ENOSPC', text: 'old\n', entries: ['users.json'] });
  expect(await fs.readdir(dir)).toEqual([]); // the tmpfs was private to the child's namespace
});
