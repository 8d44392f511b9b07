// `sc import srvctl3` on a generated, realistic srvctl 3.2 datastore: the mapping of hosts,
// resellers, users and containers onto sc's plan, every field carried or reported dropped, no
// secret copied, a report that validates against its schema, byte-identical re-imports, and the
// command line (--out, --force, --hostnet, --container-host, -o json).
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateDocuments, type Documents } from '../../../src/datastore/load-datastore.js';
import { sourceDocumentFromText } from '../../../src/datastore/source-document.js';
import { MIGRATION_REPORT_FILE, reportSchemaErrors, type MigrationReport } from '../../../src/migration/migration-report.js';
import { importSrvctl3 } from '../../../src/migration/srvctl3-import.js';
import { readSrvctl3Source } from '../../../src/migration/srvctl3-source.js';
import { HOSTS, srvctl3Fixture, writeSrvctl3Datastore, type Srvctl3Fixture } from '../../fixtures/srvctl3/srvctl3-datastore.js';
import { runCli } from './import-cli.js';

type Rec = Record<string, unknown>;
const BRIDGE = ['--container-host', `lan.example.com=${HOSTS.t1}`];

let work: string;
beforeAll(async () => {
  work = await fs.mkdtemp(path.join(tmpdir(), 'sc-import-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

let counter = 0;
async function sourceDir(fixture: Srvctl3Fixture = srvctl3Fixture()): Promise<string> {
  counter += 1;
  const dir = path.join(work, `src${counter}`);
  await writeSrvctl3Datastore(dir, fixture);
  return dir;
}
const outDir = (): string => path.join(work, `out${++counter}`);

async function readOut(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await fs.readdir(dir)).sort()) files[name] = await fs.readFile(path.join(dir, name), 'utf8');
  return files;
}

describe('a realistic srvctl 3.2 datastore', () => {
  let fixture: Srvctl3Fixture;
  let src: string;
  let out: string;
  let files: Record<string, string>;
  let report: MigrationReport;
  let stdout: string;
  const doc = (name: string): Record<string, Rec> => JSON.parse(files[name] as string) as Record<string, Rec>;

  beforeAll(async () => {
    fixture = srvctl3Fixture();
    src = await sourceDir(fixture);
    out = outDir();
    const result = await runCli(['import', 'srvctl3', src, '--out', out, ...BRIDGE]);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    stdout = result.stdout;
    files = await readOut(out);
    report = JSON.parse(files[MIGRATION_REPORT_FILE] as string) as MigrationReport;
  });

  test('has the size the acceptance asks for', () => {
    expect(Object.keys(fixture.users).length).toBeGreaterThanOrEqual(31);
    expect(Object.keys(fixture.containers).length).toBeGreaterThanOrEqual(60);
    expect(report.summary).toMatchObject({ clusters: 2, hosts: 3, resellers: 5, users: 41, containers: 61 });
  });

  test('writes a datastore that sc validates, and the report in it', () => {
    expect(Object.keys(files)).toEqual(['clusters.json', 'containers.json', 'settings.json', 'srvctl3-migration.json', 'users.json']);
    const documents: Documents = {};
    for (const kind of ['clusters', 'users', 'containers', 'settings'] as const) {
      documents[kind] = sourceDocumentFromText(kind, path.join(out, `${kind}.json`), files[`${kind}.json`] as string);
    }
    const errors = validateDocuments(documents).diagnostics.filter((d) => d.severity === 'error');
    expect(errors).toEqual([]);
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.files).toEqual(['clusters.json', 'users.json', 'containers.json', 'settings.json', 'srvctl3-migration.json']);
  });

  test('hosts: hostnets 20/78/79 become 1/2/3 in order; every other host field is carried', () => {
    expect(report.hosts.map((h) => [h.name, h.old_hostnet, h.hostnet, h.containers])).toEqual([
      [HOSTS.d1, 20, 1, 23],
      [HOSTS.t1, 78, 2, 32],
      [HOSTS.t2, 79, 3, 6],
    ]);
    const clusters = doc('clusters.json') as Record<string, Record<string, Rec>>;
    for (const [cluster, hosts] of Object.entries(fixture.clusters)) {
      for (const [name, host] of Object.entries(hosts)) {
        const { hostnet: _old, ...rest } = host;
        expect(clusters[cluster]?.[name]).toEqual({ hostnet: report.hosts.find((h) => h.name === name)?.hostnet, ...rest });
      }
    }
  });

  test('resellers: only those with users or containers, renumbered 1–15 in order; the others become users of root', () => {
    expect(report.resellers.map((r) => [r.name, r.old_reseller_id, r.reseller_id, r.users, r.containers])).toEqual([
      ['a', 1, 1, 5, 19],
      ['b', 2, 2, 3, 11],
      ['c', 3, 3, 0, 4],
      ['d', 4, 4, 2, 5],
      ['webshop', 25, 5, 3, 12],
    ]);
    const users = doc('users.json');
    expect(users.e).toEqual({
      name: 'Echo',
      reseller: 'root',
      user_id: 5,
      uid: 1005,
      ssh_keys: [expect.stringMatching(/^ssh-rsa \S+ e@t1\.test\.vm$/)],
    });
    expect(report.users.find((u) => u.name === 'e')?.note).toMatch(/reseller without users or containers/);
    // new_reseller's reseller without user_id gets the lowest free one under root.
    expect(users.webshop).toMatchObject({ reseller: 'root', reseller_id: 5, user_id: 25, uid: 1025, added_by_username: 'root' });
  });

  test('users: in their reseller, old user_id kept where free, uid kept, srvctl 3 fields carried', () => {
    const users = doc('users.json');
    expect(users.root).toEqual({ name: 'root', reseller_id: 0, user_id: 0, uid: 0 });
    expect(users.alice).toMatchObject({ name: 'Alice Smith', reseller: 'a', user_id: 25, uid: 1026, added_by_username: 'a' });
    expect(users.amy).toMatchObject({ reseller: 'a', codepad: 'all-access' });
    expect(users.rita).toMatchObject({ reseller: 'root', user_id: 36, uid: 1037 });
    expect(users.tina).toMatchObject({ reseller: 'd', user_id: 38, uid: 1039 });
    for (const [name, user] of Object.entries(fixture.users)) expect(users[name]?.uid).toBe(user.uid);
  });

  test("public keys become ssh_keys, deduplicated; srvctl's internal keys and symlinked reseller keys do not", () => {
    const users = doc('users.json');
    const keys = users.alice?.ssh_keys as string[];
    expect(keys).toHaveLength(3);
    expect(keys.map((k) => k.split(' ').pop())).toEqual(['alice@laptop', 'alice@work', 'alice@t1.test.vm']);
    expect((users.a?.ssh_keys as string[]).map((k) => k.split(' ').pop())).toEqual(['a@t1.test.vm']);
    const all = files['users.json'] as string;
    expect(all).not.toMatch(/srvctl@/);
    expect(report.left_behind).toContainEqual({ path: 'users/alice/reseller_id_rsa.pub', what: 'symlink' });
    expect(report.left_behind).toContainEqual({ path: 'users/alice/srvctl_id_rsa.pub', what: 'internal key' });
    expect(report.left_behind).toContainEqual({ path: 'users/ghost', what: 'unknown user' });
  });

  test('passwords, hashes and private keys are never copied, only listed as left behind', () => {
    const secrets = Object.values(fixture.userFiles).flatMap((userFiles) =>
      Object.entries(userFiles)
        .filter(([name, text]) => typeof text === 'string' && !name.endsWith('.pub'))
        .map(([, text]) => (text as string).trim()),
    );
    expect(secrets.length).toBeGreaterThan(100);
    const written = [...Object.values(files), stdout].join('\n');
    for (const secret of secrets) for (const line of secret.split('\n')) if (!line.startsWith('-----')) expect(written).not.toContain(line);
    const kinds = new Map<string, number>();
    for (const l of report.left_behind) kinds.set(l.what, (kinds.get(l.what) ?? 0) + 1);
    expect(Object.fromEntries(kinds)).toMatchObject({ password: 40, 'password hash': 40, 'private key': 80 });
    expect(report.left_behind).toContainEqual({ path: 'users/alice/.password', what: 'password' });
    expect(report.left_behind).toContainEqual({ path: 'users/alice/id_rsa', what: 'private key' });
  });

  test("containers: host from the old address, a new address from .20 in the owner's /24, bridge kept", () => {
    const containers = doc('containers.json');
    const row = (name: string) => report.containers.find((c) => c.name === name);
    expect(row('alice.example.com')).toEqual({
      name: 'alice.example.com',
      user: 'alice',
      host: HOSTS.t1,
      type: 'fedora',
      old_ip: '10.78.25.2',
      ip: '10.33.25.20',
      mapped_ports: [{ proto: 'tcp', host_port: 2022, container_port: 22 }],
    });
    expect(row('old.alice.example.com')?.ip).toBe('10.33.25.25');
    expect(row('srvctl.example.com')).toMatchObject({ user: 'root', old_ip: '10.78.0.2', ip: '10.32.0.20' });
    expect(row('guide.arthur.example.com')).toMatchObject({ host: HOSTS.d1, old_ip: '10.20.27.2', ip: '10.17.27.20' });
    expect(row('mirror.charlie.example.org')).toMatchObject({ host: HOSTS.t2, old_ip: '10.79.3.2', ip: '10.48.3.20' });
    expect(row('lan.example.com')).toMatchObject({ host: HOSTS.t1, old_ip: '192.168.88.50', ip: '10.32.0.22', bridge: 'br0' });
    expect(containers['lan.example.com']).toMatchObject({ bridge: 'br0', ip: '10.32.0.22' });
    expect(containers['mail.alice.example.com']?.type).toBe('mail');
    expect(containers['codepad.amy.example.com']?.type).toBe('codepad');
  });

  test('every container field sc or srvctl 3 knows is carried; the rest is reported dropped', () => {
    const containers = doc('containers.json');
    for (const [name, old] of Object.entries(fixture.containers)) {
      const { ip: _ip, br: _br, gateway: _gw, interface: _if, notes: _notes, ...rest } = old;
      const expected: Rec = { ...rest };
      if (Array.isArray(rest.aliases)) expected.aliases = (rest.aliases as string[]).map((a) => a.toLowerCase());
      if (typeof rest.https_port === 'string') expected.https_port = Number(rest.https_port);
      const row = report.containers.find((c) => c.name === name);
      expect(containers[name]).toEqual({ ...expected, host: row?.host, ip: row?.ip });
    }
    expect(containers['bob.example.com']?.aliases).toEqual(['www.bob.example.com']);
    expect(report.dropped).toEqual([
      { file: 'containers.json', entry: 'old.alice.example.com', field: 'notes', reason: 'neither sc nor srvctl 3.2 defines this field' },
      ...['br', 'gateway', 'interface'].map((field) => ({
        file: 'containers.json',
        entry: 'engine.ada.example.com',
        field,
        reason: 'srvctl 3 network override: sc derives the bridge, gateway and interface from its plan',
      })),
    ]);
  });

  test("settings: dnf image builders for srvctl 3's types, and a warning to review them", () => {
    expect(doc('settings.json')).toEqual({
      images: {
        codepad: { builder: 'dnf', packages: ['git', 'nodejs', 'openssh-server'] },
        fedora: { builder: 'dnf', packages: ['httpd', 'mod_ssl', 'openssh-server', 'postfix'] },
        mail: { builder: 'dnf', packages: ['dovecot', 'postfix', 'openssh-server'] },
      },
    });
    expect(report.warnings.map((w) => w.message)).toEqual([
      expect.stringMatching(/^bridge container: its address 192\.168\.88\.50 came from the bridge's own network/),
      expect.stringMatching(/^settings\.json: dnf image builders for codepad, fedora, mail/),
      expect.stringMatching(/^cluster "test_cluster" has 2 hosts but none with ca: true/),
    ]);
  });

  test('the text report names every mapping, what was dropped and left behind', () => {
    expect(stdout).toContain('2 clusters, 3 hosts, 5 resellers, 41 users, 61 containers');
    expect(stdout).toMatch(/alice\.example\.com\s+t1\.test\.vm\s+alice\s+10\.78\.25\.2\s+10\.33\.25\.20\s+tcp:2022→22/);
    expect(stdout).toMatch(/lan\.example\.com\s+t1\.test\.vm\s+root\s+192\.168\.88\.50\s+10\.32\.0\.22 \(bridge br0\)/);
    expect(stdout).toMatch(/webshop\s+root\s+-\s+25\s+1025\s+1\s+had no user_id/);
    expect(stdout).toContain('containers.json engine.ada.example.com gateway: srvctl 3 network override');
    expect(stdout).toContain('password (40): users/a/.password');
    expect(stdout).toContain(`Next: sc validate --datastore ${out}`);
  });

  test('-o json prints the report that is in the datastore; a second import is byte-identical', async () => {
    const again = outDir();
    // From another working directory and through a relative path: the same bytes.
    const cwd = process.cwd();
    process.chdir(path.dirname(src));
    let json;
    try {
      json = await runCli(['-o', 'json', 'import', 'srvctl3', path.basename(src), '--out', again, ...BRIDGE]);
    } finally {
      process.chdir(cwd);
    }
    expect(json.exitCode).toBe(0);
    expect(await readOut(again)).toEqual(files);
    expect(json.stdout).toBe(files[MIGRATION_REPORT_FILE]);
    expect(report.source).toBe(src);
  });
});

describe('the output directory', () => {
  test('the same source imported again with --force gives the same bytes; without --force a non-empty --out is refused', async () => {
    const src = await sourceDir();
    const out = outDir();
    expect((await runCli(['import', 'srvctl3', src, '--out', out, ...BRIDGE])).exitCode).toBe(0);
    const first = await readOut(out);
    await fs.writeFile(path.join(out, 'README.md'), 'my notes\n');

    const refused = await runCli(['import', 'srvctl3', src, '--out', out, ...BRIDGE]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`--out ${out} is not empty (6 entries): choose a new directory, or pass --force`);
    expect(await readOut(out)).toEqual({ ...first, 'README.md': 'my notes\n' });

    const forced = await runCli(['import', 'srvctl3', src, '--out', out, '--force', ...BRIDGE]);
    expect(forced.exitCode).toBe(0);
    expect(await readOut(out)).toEqual({ ...first, 'README.md': 'my notes\n' });
    // No temp directory is left next to --out.
    expect((await fs.readdir(work)).filter((e) => e.includes('.sc-import-'))).toEqual([]);
  });

  test('--force removes the files of an earlier import that this one no longer writes', async () => {
    const fixture = srvctl3Fixture();
    const src = await sourceDir(fixture);
    const out = outDir();
    expect((await runCli(['import', 'srvctl3', src, '--out', out, ...BRIDGE])).exitCode).toBe(0);
    // Without fedora, mail and codepad containers there are no image builders to write.
    for (const [name, c] of Object.entries(fixture.containers)) if (c.type !== 'busybox') delete fixture.containers[name];
    const src2 = await sourceDir(fixture);
    const again = await runCli(['import', 'srvctl3', src2, '--out', out, '--force']);
    expect(again.stderr).toBe('');
    expect(again.stdout).toContain('removed settings.json of the earlier import');
    expect(Object.keys(await readOut(out))).toEqual(['clusters.json', 'containers.json', 'srvctl3-migration.json', 'users.json']);
  });

  test('an existing empty directory is fine; a file is not', async () => {
    const src = await sourceDir();
    const out = outDir();
    await fs.mkdir(out);
    expect((await runCli(['import', 'srvctl3', src, '--out', out, ...BRIDGE])).exitCode).toBe(0);
    const file = path.join(work, 'a-file');
    await fs.writeFile(file, 'x');
    const result = await runCli(['import', 'srvctl3', src, '--out', file, ...BRIDGE]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`--out ${file} exists and is not a directory`);
  });
});

describe('options', () => {
  test('--hostnet OLD=NEW puts a host where it says; the others follow in order', async () => {
    const src = await sourceDir();
    const source = await readSrvctl3Source(src);
    const { report } = importSrvctl3(source, { hostnets: new Map([[79, 1]]), containerHosts: new Map([['lan.example.com', HOSTS.t1]]) });
    expect(report.hosts.map((h) => [h.old_hostnet, h.hostnet])).toEqual([
      [79, 1],
      [20, 2],
      [78, 3],
    ]);
    expect(report.containers.find((c) => c.name === 'tina.example.com')?.ip).toBe('10.20.38.20');
  });

  test('a bridge container on a farm of several hosts needs --container-host', async () => {
    const src = await sourceDir();
    const out = outDir();
    const result = await runCli(['import', 'srvctl3', src, '--out', out]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(
      /containers\.json:\d+:\d+ \/lan\.example\.com: bridge container \(bridge br0\) without a srvctl 3 address: its host cannot be told from the datastore; pass --container-host lan\.example\.com=HOST/,
    );
    await expect(fs.access(out)).rejects.toThrow();
    const unknown = await runCli(['import', 'srvctl3', src, '--out', out, '--container-host', 'lan.example.com=nowhere.vm', '--hostnet', '99=2']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain('--container-host lan.example.com=nowhere.vm: there is no host "nowhere.vm" in the clusters');
    expect(unknown.stderr).toContain('--hostnet 99=2: no host has hostnet 99 (hosts: 20 d1.dev.vm, 78 t1.test.vm, 79 t2.test.vm)');
    const usage = await runCli(['import', 'srvctl3', src, '--out', out, '--hostnet', '78=16']);
    expect(usage.exitCode).toBe(1);
    expect(usage.stderr).toContain('expected OLD=NEW: a srvctl 3 hostnet (0–255) = an sc hostnet (1–15)');
  });

  test("the datastore's own hosts.json (no clusters.json) becomes one cluster", async () => {
    const fixture = srvctl3Fixture();
    const src = await sourceDir(fixture);
    await fs.rm(path.join(src, 'clusters.json'));
    await fs.writeFile(path.join(src, 'hosts.json'), JSON.stringify(fixture.clusters.test_cluster, null, 2));
    for (const [name, c] of Object.entries(fixture.containers)) if (String(c.ip).startsWith('10.20.')) delete fixture.containers[name];
    await fs.writeFile(path.join(src, 'containers.json'), JSON.stringify(fixture.containers, null, 2));
    const { report, files } = importSrvctl3(await readSrvctl3Source(src, { cluster: 'test_cluster' }), {
      containerHosts: new Map([['lan.example.com', HOSTS.t1]]),
    });
    expect(Object.keys(JSON.parse(files['clusters.json'] as string) as Rec)).toEqual(['test_cluster']);
    expect(report.hosts.map((h) => [h.name, h.hostnet])).toEqual([
      [HOSTS.t1, 1],
      [HOSTS.t2, 2],
    ]);
  });
});
