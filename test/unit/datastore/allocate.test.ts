// `sc allocate`: fills in missing reseller_id, user_id, uid and ip in document order around the
// stored values, writes them back (YAML comments kept), and is a no-op the second time.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { allocateMissing } from '../../../src/datastore/allocate.js';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import { UserError } from '../../../src/errors.js';
import { CLUSTERS_YAML, asJson, editContext, makeDatastore, snapshot, writableLocation, type Files } from '../../fixtures/edit/small-datastore.js';

const HAND_EDITED: Files = {
  'clusters.yaml': CLUSTERS_YAML,
  'users.yaml': `# added by hand, ids missing
alpha: # named as reseller below, so it becomes one
  reseller: root
bravo:
  reseller: root
  reseller_id: 1
  user_id: 1
  uid: 1005
alice:
  reseller: alpha
bob:
  reseller: alpha
  user_id: 1
  uid: 1001
carol: {}
`,
  'containers.yaml': `# containers
bob1.example.com:
  user: bob
  host: web1.example.net
  type: debian
  ip: 10.18.1.21 # stored: .20 is a hole
bob2.example.com:
  user: bob
  host: web1.example.net
  type: debian
alice1.example.com:
  user: alice
  host: web1.example.net
  type: debian
carol1.example.com:
  user: carol
  host: web2.example.net
  type: busybox
root1.example.com:
  user: root
  host: web2.example.net
  type: busybox
`,
};

const dirs: string[] = [];
async function datastore(files: Files): Promise<string> {
  const dir = await makeDatastore(files, 'sc-allocate-');
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

test('fills in every missing allocation deterministically and the result validates strictly', async () => {
  const dir = await datastore(HAND_EDITED);
  const result = await allocateMissing(editContext(dir));
  const users = parseYaml(await fs.readFile(join(dir, 'users.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
  // alpha: lowest free reseller_id (bravo has 1); root's users alpha, bravo(1), carol → 2, 3.
  expect(users.alpha).toEqual({ reseller: 'root', reseller_id: 2, user_id: 2, uid: 1006 });
  expect(users.alice).toEqual({ reseller: 'alpha', user_id: 2, uid: 1007 });
  expect(users.carol).toEqual({ user_id: 3, uid: 1008 });
  expect(users.bob).toEqual({ reseller: 'alpha', user_id: 1, uid: 1001 });
  const loaded = await loadDatastore(writableLocation(dir));
  const ips = Object.fromEntries(Object.entries(loaded.model.containers).map(([n, c]) => [n, c.ip]));
  expect(ips).toEqual({
    'bob1.example.com': '10.18.1.21',
    'bob2.example.com': '10.18.1.20',
    'alice1.example.com': '10.18.2.20',
    'carol1.example.com': '10.32.3.20',
    'root1.example.com': '10.32.0.20',
  });
  expect(result.files).toEqual([join(dir, 'users.yaml'), join(dir, 'containers.yaml')]);
  expect(result.changes).toContainEqual({ kind: 'containers', key: 'bob2.example.com', action: 'update', value: { ip: '10.18.1.20' } });
  expect(result.message).toMatch(/^allocated 11 value\(s\):/);
});

test('keeps the comments of the hand-edited YAML files', async () => {
  const dir = await datastore(HAND_EDITED);
  await allocateMissing(editContext(dir));
  const users = await fs.readFile(join(dir, 'users.yaml'), 'utf8');
  expect(users).toContain('alpha: # named as reseller below, so it becomes one\n');
  expect(users.startsWith('# added by hand, ids missing\n')).toBe(true);
  const containers = await fs.readFile(join(dir, 'containers.yaml'), 'utf8');
  expect(containers).toContain('  ip: 10.18.1.21 # stored: .20 is a hole\n');
});

test('a second run allocates nothing and writes nothing', async () => {
  const dir = await datastore(HAND_EDITED);
  await allocateMissing(editContext(dir));
  const after = await snapshot(dir);
  const again = await allocateMissing(editContext(dir));
  expect(again).toMatchObject({ changes: [], files: [] });
  expect(again.message).toMatch(/nothing to allocate/);
  expect(await snapshot(dir)).toEqual(after);
});

test('--dry-run reports the same allocations and writes nothing, even on a read-only datastore', async () => {
  const dir = await datastore(asJson(HAND_EDITED));
  const before = await snapshot(dir);
  const ctx = { ...editContext(dir), location: { dir, readOnly: true, origin: 'ro' as const } };
  const dry = await allocateMissing(ctx, { dryRun: true });
  expect(dry.dryRun).toBe(true);
  expect(dry.files).toEqual([]);
  expect(dry.message).toMatch(/^would allocate 11 value\(s\)/);
  expect(await snapshot(dir)).toEqual(before);
  await expect(allocateMissing(ctx)).rejects.toThrow(/read-only/);
  const real = await allocateMissing(editContext(dir));
  expect(real.changes).toEqual(dry.changes);
});

test('an impossible allocation is reported with its place and nothing is written', async () => {
  const resellers = Array.from(
    { length: 15 },
    (_, i) => `r${i + 1}:\n  reseller: root\n  reseller_id: ${i + 1}\n  user_id: ${i + 1}\n  uid: ${2000 + i}\n`,
  ).join('');
  const files: Files = {
    'clusters.yaml': CLUSTERS_YAML,
    'users.yaml': `${resellers}extra:\n  reseller: root\ncustomer:\n  reseller: extra\n`,
  };
  const dir = await datastore(files);
  const error = await allocateMissing(editContext(dir)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  const [first] = (error as UserError).diagnostics;
  expect(first).toMatchObject({ path: '/extra', file: expect.stringMatching(/users\.yaml$/), line: 76 });
  expect(first?.message).toMatch(/cannot allocate reseller_id for extra: no free reseller_id/);
  expect(await snapshot(dir)).toEqual(files);
});
