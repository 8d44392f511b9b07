// Bad srvctl 3.2 input to `sc import srvctl3`: each mistake is named with file, line, entry and
// what is wrong, the command exits 1, and nothing is written (no --out, no temp directory).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HOSTS, srvctl3Fixture, writeSrvctl3Datastore, type Srvctl3Fixture } from '../../fixtures/srvctl3/srvctl3-datastore.js';
import { runCli } from './import-cli.js';

let work: string;
beforeAll(async () => {
  work = await fs.mkdtemp(path.join(tmpdir(), 'sc-import-bad-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

let counter = 0;
const execFileP = promisify(execFile);

interface Outcome {
  src: string;
  stderr: string;
  /** Each `error:` line that names a file: [file, line, path, message]. */
  errors: { file: string; line: number; path: string; message: string }[];
}

/** Imports a broken copy of the fixture and checks the common promises: exit 1, nothing written. */
async function importBroken(change: (f: Srvctl3Fixture) => void, raw?: (src: string) => Promise<void>, extra: string[] = []): Promise<Outcome> {
  const fixture = srvctl3Fixture();
  change(fixture);
  const src = path.join(work, `src${++counter}`);
  await writeSrvctl3Datastore(src, fixture);
  await raw?.(src);
  const parent = path.join(work, `parent${counter}`);
  await fs.mkdir(parent);
  const out = path.join(parent, 'farm');
  const result = await runCli(['import', 'srvctl3', src, '--out', out, '--container-host', `lan.example.com=${HOSTS.t1}`, ...extra]);
  expect(result.exitCode).toBe(1);
  expect(result.stdout).toBe('');
  expect(await fs.readdir(parent)).toEqual([]);
  const errors = result.stderr
    .split('\n')
    .map((line) => /^error: (\S+\.json):(\d+):\d+ (\S+): (.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ file: path.basename(m[1] as string), line: Number(m[2]), path: m[3] as string, message: m[4] as string }));
  expect(result.stderr).toMatch(/cannot be imported: \d+ errors?; nothing was written|is not a readable srvctl 3 datastore/);
  return { src, stderr: result.stderr, errors };
}

/** The line an error names holds the entry (or field) it is about. */
async function lineOf(src: string, file: string, line: number): Promise<string> {
  return ((await fs.readFile(path.join(src, file), 'utf8')).split('\n')[line - 1] ?? '').trim();
}

test('two containers with one address', async () => {
  const { src, errors } = await importBroken((f) => {
    (f.containers['tom.example.com'] as Record<string, unknown>).ip = '10.79.38.2';
  });
  expect(errors).toEqual([
    {
      file: 'containers.json',
      line: expect.any(Number),
      path: '/tom.example.com/ip',
      message: 'address 10.79.38.2 is also the address of "tina.example.com"',
    },
  ]);
  expect(await lineOf(src, 'containers.json', errors[0]?.line ?? 0)).toMatch(/^"ip": "10\.79\.38\.2",?$/);
});

test('an address whose hostnet matches no host', async () => {
  const { src, errors } = await importBroken((f) => {
    (f.containers['wiki.alice.example.com'] as Record<string, unknown>).ip = '10.77.25.6';
  });
  expect(errors).toEqual([
    {
      file: 'containers.json',
      line: expect.any(Number),
      path: '/wiki.alice.example.com/ip',
      message: 'address 10.77.25.6: hostnet 77 matches no host (hostnets: 20 d1.dev.vm, 78 t1.test.vm, 79 t2.test.vm)',
    },
  ]);
  expect(await lineOf(src, 'containers.json', errors[0]?.line ?? 0)).toMatch(/^"ip": "10\.77\.25\.6",?$/);
});

test("srvctl 3.2's new_reseller bug: a NaN address and a NaN uid", async () => {
  const { errors } = await importBroken((f) => {
    // JSON.stringify(NaN) is null: that is how 3.2 stored the uid it computed from a missing user_id.
    f.users.newco = { reseller_id: 26, uid: null, name: 'NewCo', reseller: 'newco', added_by_username: 'root' };
    f.containers['newco.example.com'] = { user: 'newco', ip: '10.78.NaN.2', creation_time: '2020.03.01-10:00:00', type: 'fedora' };
  });
  expect(errors.map((e) => [e.file, e.path, e.message])).toEqual([
    [
      'users.json',
      '/newco/uid',
      'uid null: srvctl 3.2 stored NaN here (its new_reseller bug counted from a user without user_id); set the uid the Linux account really has (`id -u newco`)',
    ],
    [
      'containers.json',
      '/newco.example.com/ip',
      'address "10.78.NaN.2" is not an address: srvctl 3.2\'s new_reseller bug (the owner\'s reseller had no user_id); set the address the container really has (`ip addr` inside it)',
    ],
  ]);
});

test('a user whose reseller does not exist, and one whose reseller is not one', async () => {
  const { src, errors } = await importBroken((f) => {
    (f.users.bob as Record<string, unknown>).reseller = 'zz';
    (f.users.bella as Record<string, unknown>).reseller = 'rita';
  });
  expect(errors.map((e) => [e.file, e.path, e.message])).toEqual([
    ['users.json', '/bob/reseller', 'reseller "zz" does not exist in users.json'],
    ['users.json', '/bella/reseller', '"rita" is named as reseller but is not one (it has no reseller_id)'],
  ]);
  expect(await lineOf(src, 'users.json', errors[0]?.line ?? 0)).toBe('"reseller": "zz",');
});

test('malformed JSON: every file that does not parse, with line and column', async () => {
  const { stderr } = await importBroken(
    () => undefined,
    async (src) => {
      const containers = await fs.readFile(path.join(src, 'containers.json'), 'utf8');
      await fs.writeFile(path.join(src, 'containers.json'), containers.replace('"type": "mail",', '"type": "mail",,'));
      await fs.writeFile(path.join(src, 'users.json'), '{\n  "root": {"uid": 0},\n  "a": {"uid": 1001}\n');
    },
  );
  const containersLine =
    (await fs.readFile(path.join(work, `src${counter}`, 'containers.json'), 'utf8')).split('\n').findIndex((l) => l.includes('"mail",,')) + 1;
  expect(stderr).toMatch(new RegExp(`error: \\S*users\\.json:4:1: JSON syntax: .+`));
  expect(stderr).toMatch(new RegExp(`error: \\S*containers\\.json:${containersLine}:\\d+: JSON syntax: .+`));
  expect(stderr).toContain('is not a readable srvctl 3 datastore: 2 errors');
});

test('a file that is not an object of records, and a missing one', async () => {
  const { stderr } = await importBroken(
    () => undefined,
    async (src) => {
      await fs.writeFile(path.join(src, 'containers.json'), '[]\n');
      await fs.rm(path.join(src, 'users.json'));
    },
  );
  expect(stderr).toMatch(/error: \S*users\.json: missing: a srvctl 3 datastore has this file/);
  expect(stderr).toMatch(/error: \S*containers\.json:1:1: must hold one JSON object \(name → record\)/);
});

test('a datastore file that is a symlink or a FIFO is refused, never followed or opened', async () => {
  const secret = path.join(work, 'outside-secret.json');
  await fs.writeFile(secret, '{"root": {"password": "never-read"}}\n');
  const { stderr } = await importBroken(
    () => undefined,
    async (src) => {
      await fs.rm(path.join(src, 'users.json'));
      await fs.symlink(secret, path.join(src, 'users.json'));
      await fs.rm(path.join(src, 'containers.json'));
      await execFileP('mkfifo', [path.join(src, 'containers.json')]);
    },
  );
  expect(stderr).toMatch(/error: \S*users\.json: not a regular file \(refused: .*symlink.*\)/);
  expect(stderr).toMatch(/error: \S*containers\.json: not a regular file/);
  expect(stderr).not.toContain('never-read');
});

test("a user's .pub key that is a symlink to a file outside is left behind, not read", async () => {
  const fixture = srvctl3Fixture();
  const src = path.join(work, `src${++counter}`);
  await writeSrvctl3Datastore(src, fixture);
  const userDir = (await fs.readdir(path.join(src, 'users')))[0] as string;
  const outside = path.join(work, 'outside.pub');
  await fs.writeFile(outside, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOutsideOutsideOutsideOutsideOutsideOutsideOut outside@elsewhere\n');
  await fs.symlink(outside, path.join(src, 'users', userDir, 'linked_key.pub'));
  const out = path.join(work, `parent${counter}`, 'farm');
  const result = await runCli(['import', 'srvctl3', src, '--out', out, '--container-host', `lan.example.com=${HOSTS.t1}`]);
  expect(result.exitCode).toBe(0);
  const report = await fs.readFile(path.join(out, 'srvctl3-migration.json'), 'utf8');
  expect(report).toContain(`users/${userDir}/linked_key.pub`);
  const imported = await fs.readFile(path.join(out, 'users.yaml'), 'utf8').catch(async () => fs.readFile(path.join(out, 'users.json'), 'utf8'));
  expect(imported).not.toContain('outside@elsewhere');
});

test('more than 15 resellers with users or containers: listed, with what they own', async () => {
  const { stderr } = await importBroken((f) => {
    for (const letter of 'efghijklmno') {
      const id = (f.users[letter] as { user_id: number }).user_id;
      f.containers[`${letter}.example.net`] = { user: letter, ip: `10.78.${id}.2`, type: 'fedora' };
    }
  });
  expect(stderr).toMatch(
    /error: \S*users\.json:1:1: 16 resellers own users or containers, but sc's network plan has room for 15: a \(reseller_id 1, 5 users, 19 containers\), b \(reseller_id 2, 3 users, 11 containers\), c \(reseller_id 3, 0 users, 4 containers\), d \(reseller_id 4, 2 users, 5 containers\), e \(reseller_id 5, 0 users, 1 containers\),.* webshop \(reseller_id 25, 3 users, 12 containers\); move the users and containers of the smaller ones to other resellers in srvctl 3 first/,
  );
});

test("two hosts with one hostnet (stranding the other's containers), a container of an unknown user, a duplicate uid", async () => {
  const { errors } = await importBroken((f) => {
    (f.clusters.test_cluster?.[HOSTS.t2] as Record<string, unknown>).hostnet = 78;
    (f.containers['tom.example.com'] as Record<string, unknown>).user = 'nobody';
    (f.users.tom as Record<string, unknown>).uid = 1039;
  });
  expect(errors.map((e) => [e.file, e.path, e.message])).toEqual([
    [
      'clusters.json',
      `/test_cluster/${HOSTS.t2}/hostnet`,
      `hostnet 78 is also the hostnet of ${HOSTS.t1}: the containers' addresses cannot tell the two hosts apart`,
    ],
    ['users.json', '/tom/uid', 'uid 1039 is also the uid of "tina"'],
    [
      'containers.json',
      '/tina.example.com/ip',
      'address 10.79.38.2: hostnet 79 matches no host (hostnets: 20 d1.dev.vm, 78 t1.test.vm); so do 5 more: blog.tina.example.com (10.79.38.3), shop.tina.example.com (10.79.38.4), tom.example.com (10.79.39.2), wiki.tom.example.com (10.79.39.3), mirror.charlie.example.org (10.79.3.2)',
    ],
    ['containers.json', '/tom.example.com/user', 'owner "nobody" is not in users.json'],
  ]);
});

test('a container name sc cannot take (the name is the machine and directory)', async () => {
  const { errors } = await importBroken((f) => {
    f.containers['Upper.Example.com'] = { user: 'tina', ip: '10.79.38.9', type: 'busybox' };
  });
  expect(errors.map((e) => [e.file, e.path, e.message])).toEqual([
    [
      'containers.json',
      '/Upper.Example.com',
      "sc cannot take this: invalid container name \"Upper.Example.com\": must be a lowercase DNS name (letters, digits, '-' and '.'), at most 64 characters",
    ],
  ]);
});

test('a host without hostnet (srvctl 3 silently used 250)', async () => {
  const { errors } = await importBroken((f) => {
    delete (f.clusters.dev_cluster?.[HOSTS.d1] as Record<string, unknown>).hostnet;
  });
  expect(errors.map((e) => [e.file, e.path])).toEqual([
    ['clusters.json', `/dev_cluster/${HOSTS.d1}`],
    ['containers.json', '/boris.example.com/ip'],
  ]);
  expect(errors[0]?.message).toMatch(/^no hostnet: give the host the hostnet srvctl 3 really used/);
  expect(errors[1]?.message).toMatch(
    /^address 10\.20\.32\.2: hostnet 20 matches no host \(hostnets: 78 t1\.test\.vm, 79 t2\.test\.vm\); so do 22 more: /,
  );
});
