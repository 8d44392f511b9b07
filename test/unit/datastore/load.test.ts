// Finding and reading the datastore: location rules under --root, file discovery (.json/.yaml/.yml,
// static dir), parse errors with positions, every problem at once, the frozen model.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { assertWritable, resolveDatastoreLocation, type DatastoreLocation } from '../../../src/datastore/datastore-location.js';
import { loadDatastore, type LoadOptions } from '../../../src/datastore/load-datastore.js';
import { readSourceDocument, sourceDocumentFromText } from '../../../src/datastore/source-document.js';
import { loadYaml } from '../../../src/datastore/yaml-module.js';
import { formatDiagnostic, UserError } from '../../../src/errors.js';

let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'sc-load-test-'));
  // sourceDocumentFromText parses YAML text synchronously once the yaml package is loaded.
  await loadYaml();
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A fresh directory with `files` (relative path → text). */
function tree(files: Record<string, string> = {}, dirs: string[] = []): string {
  counter += 1;
  const base = join(scratch, `t${counter}`);
  mkdirSync(base, { recursive: true });
  for (const d of dirs) mkdirSync(join(base, d), { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(base, file, '..'), { recursive: true });
    writeFileSync(join(base, file), text);
  }
  return base;
}

const CLUSTERS = 'eu:\n  web1.example.net:\n    hostnet: 1\n    host_ip: 192.0.2.11\n    ca: true\n';
const USERS = 'alpha:\n  reseller: root\n  reseller_id: 1\n  user_id: 1\n  uid: 1001\nalice:\n  reseller: alpha\n  user_id: 3\n  uid: 1002\n';
const CONTAINERS = 'shop.example.com:\n  user: alice\n  host: web1.example.net\n  type: debian\n  ip: 10.17.3.20\n';
const VALID = { 'clusters.yaml': CLUSTERS, 'users.yaml': USERS, 'containers.yaml': CONTAINERS };

const option = (dir: string): DatastoreLocation => ({ dir, readOnly: false, origin: 'option' });

async function rejection(location: DatastoreLocation, options?: LoadOptions): Promise<UserError> {
  try {
    await loadDatastore(location, options);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error('the datastore was accepted');
}

async function locationError(opts: Parameters<typeof resolveDatastoreLocation>[0]): Promise<UserError> {
  try {
    await resolveDatastoreLocation(opts);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error('a location was found');
}

describe('resolveDatastoreLocation', () => {
  test('--datastore wins, is a single dir, and is writable', async () => {
    const root = tree({}, ['var/srvctl3/datastore/rw', 'etc/srvctl/data']);
    const dir = tree(VALID);
    const location = await resolveDatastoreLocation({ datastore: dir, root });
    expect(location).toEqual({ dir, readOnly: false, origin: 'option' });
    expect(() => assertWritable(location)).not.toThrow();
  });

  test('SC_DATASTORE is reported as such', async () => {
    const dir = tree(VALID);
    expect(await resolveDatastoreLocation({ datastore: dir, root: '/', datastoreOrigin: 'env' })).toMatchObject({ dir, origin: 'env' });
    const error = await locationError({ datastore: join(dir, 'nope'), root: '/', datastoreOrigin: 'env' });
    expect(error.message).toContain('SC_DATASTORE');
  });

  test('a relative --datastore is made absolute', async () => {
    const location = await resolveDatastoreLocation({ datastore: 'examples/datastore', root: '/' });
    expect(location.dir).toBe(resolve('examples/datastore'));
  });

  test('a --datastore that does not exist, or is a file, is a clear error', async () => {
    const base = tree({ 'file.json': '{}' });
    const missing = await locationError({ datastore: join(base, 'missing'), root: '/' });
    expect(missing.message).toMatch(/^--datastore .*missing: does not exist/);
    const file = await locationError({ datastore: join(base, 'file.json'), root: '/' });
    expect(file.message).toContain('is not a directory');
  });

  test('under --root: the read-write datastore, with the static dir when it exists', async () => {
    const root = tree({}, ['var/srvctl3/datastore/rw', 'var/srvctl3/datastore/ro', 'etc/srvctl/data']);
    expect(await resolveDatastoreLocation({ root })).toEqual({
      dir: join(root, 'var/srvctl3/datastore/rw'),
      staticDir: join(root, 'etc/srvctl/data'),
      readOnly: false,
      origin: 'rw',
    });
    const bare = tree({}, ['var/srvctl3/datastore/rw']);
    const location = await resolveDatastoreLocation({ root: bare });
    expect(location.staticDir).toBeUndefined();
    expect(location.origin).toBe('rw');
  });

  test('the read-only fallback when the read-write one is missing: a notice, and writes refused', async () => {
    const root = tree({}, ['var/srvctl3/datastore/ro', 'etc/srvctl/data']);
    const location = await resolveDatastoreLocation({ root });
    expect(location).toMatchObject({ dir: join(root, 'var/srvctl3/datastore/ro'), readOnly: true, origin: 'ro' });
    expect(location.staticDir).toBe(join(root, 'etc/srvctl/data'));
    expect(location.notice).toBe(
      `reading the read-only fallback ${join(root, 'var/srvctl3/datastore/ro')}: the read-write datastore ` +
        `${join(root, 'var/srvctl3/datastore/rw')} is unavailable (does not exist); writes are refused`,
    );
    expect(() => assertWritable(location)).toThrow(UserError);
    expect(() => assertWritable(location)).toThrow(/^the datastore is read-only: .*--datastore DIR/);
  });

  test('the read-only fallback when the read-write path is not a usable directory', async () => {
    const root = tree({ 'var/srvctl3/datastore/rw': 'not a dir' }, ['var/srvctl3/datastore/ro']);
    const location = await resolveDatastoreLocation({ root });
    expect(location.readOnly).toBe(true);
    expect(location.notice).toContain('is unavailable (is not a directory)');
  });

  test('neither: an error saying where sc looked and how to point it elsewhere', async () => {
    const root = tree({}, ['etc/srvctl/data']);
    const error = await locationError({ root });
    expect(error.message).toContain(join(root, 'var/srvctl3/datastore/rw'));
    expect(error.message).toContain(join(root, 'var/srvctl3/datastore/ro'));
    expect(error.message).toContain('--datastore DIR');
    expect(error.message).toContain('SC_DATASTORE');
  });
});

describe('loadDatastore: files', () => {
  test('an empty datastore dir is an empty, valid model', async () => {
    const loaded = await loadDatastore(option(tree()));
    expect(loaded.model).toEqual({ clusters: {}, users: {}, containers: {}, settings: {} });
    expect(loaded.documents).toEqual({});
  });

  test('.json, .yaml and .yml are read; an empty YAML file is {}', async () => {
    const dir = tree({
      'clusters.json': JSON.stringify({ eu: { 'web1.example.net': { hostnet: 1, host_ip: '192.0.2.11' } } }),
      'users.yml': USERS,
      'containers.yaml': CONTAINERS,
      'settings.yaml': '# nothing set yet\n',
    });
    const { documents, model } = await loadDatastore(option(dir));
    expect(documents.clusters?.format).toBe('json');
    expect(documents.users?.format).toBe('yaml');
    expect(documents.users?.path).toBe(join(dir, 'users.yml'));
    expect(model.settings).toEqual({});
    expect(model.containers['shop.example.com']?.ip).toBe('10.17.3.20');
  });

  test('the static dir supplies clusters next to the read-write datastore', async () => {
    const root = tree({
      'etc/srvctl/data/clusters.yaml': CLUSTERS,
      'var/srvctl3/datastore/rw/users.yaml': USERS,
      'var/srvctl3/datastore/rw/containers.yaml': CONTAINERS,
    });
    const location = await resolveDatastoreLocation({ root });
    const { documents, model } = await loadDatastore(location);
    expect(documents.clusters?.path).toBe(join(root, 'etc/srvctl/data/clusters.yaml'));
    expect(Object.keys(model.clusters.eu ?? {})).toEqual(['web1.example.net']);
  });

  test('the same kind in the datastore and the static dir is an error', async () => {
    const root = tree({
      'etc/srvctl/data/users.yaml': USERS,
      'var/srvctl3/datastore/rw/users.yaml': USERS,
      'var/srvctl3/datastore/rw/clusters.yaml': CLUSTERS,
      'var/srvctl3/datastore/rw/containers.yaml': CONTAINERS,
    });
    const error = await rejection(await resolveDatastoreLocation({ root }));
    expect(error.diagnostics.map(formatDiagnostic)).toEqual([expect.stringContaining('users is in both the datastore and the static data dir')]);
  });

  test('two formats of one kind in one dir is an error naming both files', async () => {
    const dir = tree({ ...VALID, 'users.yml': USERS });
    const error = await rejection(option(dir));
    expect(error.diagnostics).toHaveLength(1);
    expect(error.diagnostics[0]?.message).toMatch(/two files for users \(.*users\.yaml, .*users\.yml\); keep one of them/);
  });

  test('an unreadable file is reported, not thrown raw', async () => {
    const dir = tree({ 'clusters.yaml': CLUSTERS, 'users.yaml': USERS }, ['containers.json']);
    const error = await rejection(option(dir));
    expect(error.diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/containers\.json: refused: the file is a directory, not a regular file/),
    ]);
  });

  test('a datastore dir that vanished after it was found is a UserError', async () => {
    const dir = join(tree(), 'gone');
    await expect(loadDatastore(option(dir))).rejects.toThrow(/^cannot read the datastore directory .*gone \(ENOENT\)/);
  });
});

describe('loadDatastore: problems', () => {
  test('a syntax error names file:line:col; the other files are still schema-checked', async () => {
    const dir = tree({
      'clusters.yaml': 'eu:\n  web1.example.net:\n    hostnet: 99\n    host_ip: 192.0.2.11\n',
      'users.json': '{\n  "alpha": {\n    "reseller": "root",\n    "uid": 1001\n    "user_id": 1\n  }\n}\n',
      'containers.yaml': CONTAINERS,
    });
    const error = await rejection(option(dir));
    const lines = error.diagnostics.map(formatDiagnostic);
    expect(lines).toEqual([
      expect.stringMatching(/clusters\.yaml:3:5 \/eu\/web1\.example\.net\/hostnet: 99 is out of range/),
      expect.stringMatching(/users\.json:5:5: JSON syntax: expected ',' or '}' after a value, not '"'$/),
    ]);
    // Cross-checks are skipped while a file does not parse: no "unknown user alice" cascade.
    expect(lines.join('\n')).not.toContain('unknown user');
  });

  test('YAML syntax errors and duplicate keys carry positions', async () => {
    const dir = tree({ 'users.yaml': 'alpha:\n  uid: 1001\nalpha:\n  uid: 1002\n', 'containers.yaml': 'a: [1, 2\n' });
    const error = await rejection(option(dir));
    expect(error.diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/users\.yaml:3:1: YAML syntax: Map keys must be unique/),
      expect.stringMatching(/containers\.yaml:\d+:\d+: YAML syntax: /),
    ]);
  });

  test('a JSON duplicate key is an error at its path (JSON.parse would silently drop one)', async () => {
    const text = '{\n  "alpha": { "uid": 1001, "ssh_keys": [ { "a": 1 }, { "b": 1, "b": 2 } ] },\n  "alpha": {}\n}\n';
    const error = await rejection(option(tree({ 'users.json': text })));
    expect(error.diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringContaining('users.json:2:63 /alpha/ssh_keys/1/b: JSON: duplicate key "b"'),
      expect.stringContaining('users.json:3:3 /alpha: JSON: duplicate key "alpha"'),
    ]);
  });

  test('duplicate detection reads escaped keys right', async () => {
    const text = '{ "a\\\\": { "uid": 1 }, "b\\"c": {}, "b\\u0022c": {}, "d": ["\\"", "}"], "e": {} }\n';
    expect(JSON.parse(text)).toHaveProperty(['a\\']);
    const error = await rejection(option(tree({ 'users.json': text })));
    expect(error.diagnostics.filter((d) => d.message.startsWith('JSON:')).map((d) => `${d.path} ${d.message}`)).toEqual([
      '/b"c JSON: duplicate key "b\\"c" in one object (the first would be silently lost)',
    ]);
  });

  test('an empty JSON file is a syntax error that says what to write', async () => {
    const error = await rejection(option(tree({ 'settings.json': '\n' })));
    expect(error.diagnostics[0]?.message).toContain('an empty datastore file holds {}');
  });

  test('every problem is reported at once, in file order (3 mistakes → 3 errors)', async () => {
    const error = await rejection(option('test/fixtures/datastore/three-mistakes'));
    const errors = error.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    expect(errors).toEqual([
      'test/fixtures/datastore/three-mistakes/clusters.yaml:11:5 /eu/web2.example.net/hostnet: hostnet 1 is also used by web1.example.net; every host needs its own hostnet (1–15)',
      'test/fixtures/datastore/three-mistakes/users.yaml:12:3 /alice/reseller: unknown reseller "alfa"',
      'test/fixtures/datastore/three-mistakes/containers.yaml:10:3 /www.example.com/user: unknown user "bob"',
    ]);
    expect(error.message).toBe('the datastore test/fixtures/datastore/three-mistakes is invalid: 3 errors');
  });

  test('missing allocations fail unless allowUnallocated (sc allocate, the edit commands)', async () => {
    const dir = tree({
      'clusters.yaml': CLUSTERS,
      'users.yaml': 'alpha:\n  reseller: root\nalice:\n  reseller: alpha\n',
      'containers.yaml': 'shop.example.com:\n  user: alice\n  host: web1.example.net\n  type: debian\n',
    });
    const error = await rejection(option(dir));
    expect(error.diagnostics.map((d) => `${d.path} ${d.message}`)).toEqual([
      '/alpha missing reseller_id ("alpha" is the reseller of "alice"): run "sc allocate" to fill in missing ids and addresses',
      '/alpha missing user_id: run "sc allocate" to fill in missing ids and addresses',
      '/alpha missing uid: run "sc allocate" to fill in missing ids and addresses',
      '/alice missing user_id: run "sc allocate" to fill in missing ids and addresses',
      '/alice missing uid: run "sc allocate" to fill in missing ids and addresses',
      '/shop.example.com missing ip: run "sc allocate" to fill in missing ids and addresses',
    ]);
    const loaded = await loadDatastore(option(dir), { allowUnallocated: true });
    expect(loaded.model.containers['shop.example.com']?.ip).toBeUndefined();
  });

  test('warnings (unknown fields) never fail the load; srvctl 3 fields are known', async () => {
    const dir = tree({
      ...VALID,
      'containers.yaml': `${CONTAINERS}  creation_time: 2020.04.05-12:00:00\n  mapped_port: []\n`,
    });
    const loaded = await loadDatastore(option(dir));
    expect(loaded.warnings.map(formatDiagnostic)).toEqual([
      expect.stringMatching(
        /containers\.yaml:7:3 \/shop\.example\.com\/mapped_port: unknown field "mapped_port" on container "shop\.example\.com" is ignored \(did you mean "mapped_ports"\?\)$/,
      ),
    ]);
    expect(loaded.warnings[0]?.severity).toBe('warning');
  });

  test('strings and keys over the length limit are refused, in JSON and YAML alike', async () => {
    const long = 'x'.repeat(70_000);
    const containers = { 'shop.example.com': { user: 'alice', host: 'web1.example.net', type: long, ip: '10.17.3.20' }, [long]: {} };
    const messages = async (file: string, text: string): Promise<string[]> =>
      (await rejection(option(tree({ 'clusters.yaml': CLUSTERS, 'users.yaml': USERS, [file]: text })))).diagnostics
        .filter((d) => d.message.includes('over the limit'))
        .map((d) => `${d.path ?? ''}: ${d.message}`.slice(0, 100));
    const expected = [
      '/shop.example.com/type: a string of 70000 characters, over the limit of 65536',
      `/${long}: a string of 70000 characters, over the limit of 65536`.slice(0, 100),
    ];
    expect((await messages('containers.json', JSON.stringify(containers))).sort()).toEqual(expected.sort());
    expect((await messages('containers.yaml', JSON.stringify(containers))).sort()).toEqual(expected.sort());
  });

  test('a JSON string longer than the limit only as written (escapes) is no long string', async () => {
    // 65,536 characters once decoded, six times that in the text.
    const type = '\\u0061'.repeat(65_536);
    const text = `{"shop.example.com": {"user": "alice", "host": "web1.example.net", "type": "${type}", "ip": "10.17.3.20"}}`;
    const { diagnostics } = await rejection(option(tree({ 'clusters.yaml': CLUSTERS, 'users.yaml': USERS, 'containers.json': text })));
    expect(diagnostics.map((d) => d.message).filter((m) => m.includes('over the limit'))).toEqual([]);
    expect(diagnostics.map((d) => d.path)).toEqual(['/shop.example.com/type']);
  });

  test("the model is frozen; the documents stay the caller's", async () => {
    const { model, documents } = await loadDatastore(option(tree(VALID)));
    expect(Object.isFrozen(model.users.alice)).toBe(true);
    expect(Object.isFrozen(documents.users?.data)).toBe(false);
  });
});

describe('source documents', () => {
  const yamlText = 'shop.example.com:\n  user: alice\n  aliases:\n    - a.example.com\n    - b.example.com\n  base: &b\n    x: 1\n  copy: *b\n';

  test('positionOf points at keys, list items, and the nearest existing parent', () => {
    const doc = sourceDocumentFromText('containers', 'containers.yaml', yamlText);
    expect(doc.positionOf(['shop.example.com'])).toEqual({ line: 1, column: 1 });
    expect(doc.positionOf(['shop.example.com', 'user'])).toEqual({ line: 2, column: 3 });
    expect(doc.positionOf(['shop.example.com', 'aliases', 1])).toEqual({ line: 5, column: 7 });
    expect(doc.positionOf(['shop.example.com', 'aliases', '1'])).toEqual({ line: 5, column: 7 });
    expect(doc.positionOf(['shop.example.com', 'ip'])).toEqual({ line: 1, column: 1 });
    expect(doc.positionOf(['shop.example.com', 'aliases', 7])).toEqual({ line: 3, column: 3 });
    expect(doc.positionOf(['shop.example.com', 'copy', 'x'])).toEqual({ line: 7, column: 5 });
    expect(doc.positionOf([])).toEqual({ line: 1, column: 1 });
  });

  test('JSON documents give the same data and positions (the yaml document is built on demand)', () => {
    const json = JSON.stringify({ 'shop.example.com': { user: 'alice', aliases: ['a.example.com', 'b.example.com'] } }, null, 2);
    const doc = sourceDocumentFromText('containers', '/tmp/x/containers.json', json);
    expect(doc.format).toBe('json');
    expect(doc.data).toEqual(JSON.parse(json));
    expect(doc.positionOf(['shop.example.com', 'aliases', 1])).toEqual({ line: 6, column: 7 });
    expect(doc.document.getIn(['shop.example.com', 'user'])).toBe('alice');
    expect(doc.lineCounter.linePos(0)).toEqual({ line: 1, col: 1 });
  });

  test('a byte-order mark is ignored', () => {
    expect(sourceDocumentFromText('users', 'users.json', '\uFEFF{"a": {}}').data).toEqual({ a: {} });
  });

  test('displayPath is relative to the working directory when shorter', async () => {
    const here = await readSourceDocument('examples/datastore/users.yaml', 'users');
    expect(here.path).toBe(resolve('examples/datastore/users.yaml'));
    expect(here.displayPath).toBe('examples/datastore/users.yaml');
    const far = sourceDocumentFromText('users', '/users.yaml', '{}');
    expect(far.displayPath).toBe('/users.yaml');
  });

  test('YAML with many aliases is refused, not expanded', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`),
    ].join('\n');
    expect(() => sourceDocumentFromText('settings', 'settings.yaml', bomb)).toThrow(UserError);
  });
});
