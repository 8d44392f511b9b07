// Hostile input (issue 13): a table of bad datastores, git sources and CLI arguments, each run
// through the built CLI under GNU time. Every one: exit 1, a clear message, not a byte of a
// planted secret in the output, output bounded, nothing written in the datastore or under --root,
// no hang (FIFOs, devices), and a peak RSS under a bound (measured, reported; no timing asserted).
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT, SC_MAIN } from './sandbox.js';

const SECRET = 'TOPSECRET-7f3a9c';
/** Peak RSS sc may use while refusing (a 64 MiB file is read at most once; JSON.parse and the model). */
const RSS_BOUND_KIB = 1024 * 1024;

type Data = Record<string, Record<string, unknown>>;
interface Datastore {
  clusters: Data;
  users: Data;
  containers: Data;
  settings: Record<string, unknown>;
}

const example = async (): Promise<Datastore> => {
  const read = async (kind: string) => JSON.parse(await readFile(path.join(REPO_ROOT, 'examples/datastore-json', `${kind}.json`), 'utf8')) as Data;
  return { clusters: await read('clusters'), users: await read('users'), containers: await read('containers'), settings: await read('settings') };
};

let base: string;
let secretFile: string;
const measured: string[] = [];

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-hostile-'));
  secretFile = path.join(base, 'secret.txt');
  await writeFile(secretFile, `${SECRET}\nline two of the secret\n`);
});
afterAll(async () => {
  if (measured.length) process.stdout.write(`peak RSS of sc refusing hostile input:\n${measured.join('\n')}\n`);
  await rm(base, { recursive: true, force: true });
});

interface Context {
  /** The datastore dir (the four example files are written before `setup`). */
  readonly ds: string;
  readonly root: string;
  readonly data: Datastore;
}

interface Case {
  readonly what: string;
  /** Changes the example data (written as JSON after this) or the files (after they are written). */
  readonly mutate?: (data: Datastore) => void;
  readonly files?: (ctx: Context) => Promise<void>;
  /** sc's arguments (default: validate --datastore DS --root ROOT). */
  readonly args?: (ctx: Context) => Promise<string[]> | string[];
  readonly message: RegExp;
}

const first = (data: Data): string => Object.keys(data)[0] as string;
const firstContainer = (d: Datastore) => d.containers[first(d.containers)] as Record<string, unknown>;
const firstHost = (d: Datastore) => (d.clusters.eu as Data)['web1.example.net'] as Record<string, unknown>;
const renameContainer = (d: Datastore, name: string) => {
  const key = first(d.containers);
  d.containers[name] = d.containers[key] as Record<string, unknown>;
  delete d.containers[key];
};
const ports = (d: Datastore, hostPort: unknown) => {
  (firstContainer(d).mapped_ports as Record<string, unknown>[])[0]!.host_port = hostPort;
};

/** A bare repository (file://) with the example datastore and `change` made to its work tree. */
async function gitSource(name: string, change: (work: string) => Promise<void>): Promise<string> {
  const bare = path.join(base, `${name}.git`);
  const work = path.join(base, `${name}-work`);
  const env = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
  const git = (cwd: string, ...args: string[]) => execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, env });
  await execa('git', ['init', '-q', '--bare', '-b', 'main', bare], { env });
  await execa('git', ['init', '-q', '-b', 'main', work], { env });
  const data = await example();
  for (const kind of ['clusters', 'users', 'containers', 'settings'] as const)
    await writeFile(path.join(work, `${kind}.json`), JSON.stringify(data[kind]));
  await change(work);
  await git(work, 'add', '-A');
  await git(work, 'commit', '-q', '-m', 'x');
  await git(work, 'push', '-q', bare, 'HEAD:main');
  return `file://${bare}#main`;
}

const CASES: Case[] = [
  // `sc apply` on a fresh host takes its lock (making <root>/run/srvctl) before it loads the
  // datastore; refused input must still leave nothing under --root.
  {
    what: 'apply on a fresh --root with an invalid datastore',
    mutate: (data) => {
      (data.users[first(data.users)] as Record<string, unknown>).reseller = 12345;
    },
    args: ({ root, ds }) => ['--root', root, '--datastore', ds, '--netns', 'sc-hostile-none', 'apply'],
    message: /users\.json:\d+:\d+ \/[^ ]+\/reseller: must be a string/,
  },
  // Files that are not plain files.
  {
    what: 'users.json a symlink to a secret file',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await symlink(secretFile, path.join(ds, 'users.json'));
    },
    message: /users\.json: refused: the file is a symlink/,
  },
  {
    what: 'users.json a symlink to /dev/zero',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await symlink('/dev/zero', path.join(ds, 'users.json'));
    },
    message: /users\.json: refused: the file is a symlink/,
  },
  {
    what: 'containers.json a FIFO (must not hang)',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'containers.json'));
      execFileSync('mkfifo', [path.join(ds, 'containers.json')]);
    },
    message: /containers\.json: refused: the file is a FIFO/,
  },
  {
    what: 'clusters.json a character device',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'clusters.json'));
      execFileSync('mknod', [path.join(ds, 'clusters.json'), 'c', '1', '5']);
    },
    message: /clusters\.json: refused: the file is a character device/,
  },
  {
    what: 'settings.json a directory',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'settings.json'));
      await mkdir(path.join(ds, 'settings.json'));
    },
    message: /settings\.json: refused: the file is a directory/,
  },
  {
    what: 'settings.json a symlink (source.verify read from elsewhere)',
    files: async ({ ds }) => {
      await writeFile(path.join(base, 'verify-off.json'), '{"source":{"verify":false}}');
      await rm(path.join(ds, 'settings.json'));
      await symlink(path.join(base, 'verify-off.json'), path.join(ds, 'settings.json'));
    },
    message: /settings\.json is a symlink; sc does not follow symlinks here|settings\.json: refused: the file is a symlink/,
  },
  // Sizes and shapes.
  {
    what: 'a 70 MB users.json (sparse: refused by its size before reading)',
    files: async ({ ds }) => truncate(path.join(ds, 'users.json'), 70 * 1024 * 1024),
    message: /users\.json: the file is 73400320 bytes, over the JSON file size limit \(67108864 bytes\)/,
  },
  {
    what: 'a 17 MB users.yaml',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await writeFile(path.join(ds, 'users.yaml'), '');
      await truncate(path.join(ds, 'users.yaml'), 17 * 1024 * 1024);
    },
    message: /users\.yaml: the file is 17825792 bytes, over the YAML file size limit \(16777216 bytes\)/,
  },
  {
    what: "a 10 MB string as a user's name",
    mutate: (d) => {
      (d.users[first(d.users)] as Record<string, unknown>).name = `${SECRET}${'x'.repeat(10 * 1024 * 1024)}`;
    },
    message: /users\.json:\d+:\d+ \/root\/name: a string of 10485776 characters, over the limit of 65536$/m,
  },
  {
    what: 'a 10 MB container name',
    mutate: (d) => renameContainer(d, 'a'.repeat(10 * 1024 * 1024)),
    message: /containers\.json:\d+:\d+ \/a{100,}… \(\d+ more characters\): a string of 10485760 characters, over the limit of 65536$/m,
  },
  {
    what: '100,000 containers, one with an unknown user',
    mutate: (d) => {
      const template = firstContainer(d);
      for (let i = 0; i < 100_000; i++)
        d.containers[`c${i}.bulk.example.com`] = { ...template, ip: undefined, mapped_ports: undefined, aliases: undefined, altnames: undefined };
      (d.containers['c77.bulk.example.com'] as Record<string, unknown>).user = 'nobody';
    },
    message: /\/c77\.bulk\.example\.com\/user: .*nobody/,
  },
  {
    what: 'JSON nested 100,000 deep',
    files: async ({ ds }) => writeFile(path.join(ds, 'users.json'), `{"a": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    message: /users\.json:1:70: JSON: nesting deeper than 64 levels/,
  },
  {
    what: 'YAML nested 100,000 deep (flow)',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await writeFile(path.join(ds, 'users.yaml'), `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
    },
    message: /users\.yaml:\d+:\d+: YAML syntax: nesting deeper than 64 levels/,
  },
  {
    what: 'YAML nested 200 deep (block)',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await writeFile(
        path.join(ds, 'users.yaml'),
        ['a:', ...Array.from({ length: 199 }, (_, i) => `${'  '.repeat(i + 1)}k:`), `${'  '.repeat(200)}v: 1`].join('\n'),
      );
    },
    message: /users\.yaml:1:1: YAML: nesting deeper than 64 levels/,
  },
  {
    what: 'YAML aliases expanding exponentially',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      const lines = [
        'a: &a [x,x,x,x,x,x,x,x,x]',
        ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`),
      ];
      await writeFile(path.join(ds, 'users.yaml'), `${lines.join('\n')}\n`);
    },
    message: /users\.yaml:1:1: YAML: Excessive alias count/,
  },
  // Syntax.
  {
    what: 'duplicate keys in JSON',
    files: async ({ ds }) => writeFile(path.join(ds, 'users.json'), '{\n  "alice": {"name": "A"},\n  "alice": {"name": "B"}\n}\n'),
    message: /users\.json:3:3 \/alice: JSON: duplicate key "alice"/,
  },
  {
    what: 'duplicate keys in YAML',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await writeFile(path.join(ds, 'users.yaml'), 'alice:\n  name: A\nalice:\n  name: B\n');
    },
    message: /users\.yaml:3:1: YAML syntax: Map keys must be unique/,
  },
  {
    what: 'two YAML documents in one file',
    files: async ({ ds }) => {
      await rm(path.join(ds, 'users.json'));
      await writeFile(path.join(ds, 'users.yaml'), 'a: 1\n---\nb: 2\n');
    },
    message: /one YAML document/,
  },
  {
    what: 'a secret file copied over users.json (not JSON)',
    files: async ({ ds }) => writeFile(path.join(ds, 'users.json'), `${SECRET}\n-----BEGIN PRIVATE KEY-----\nMIIEvQ\n`),
    message: /users\.json:1:1: JSON syntax: unexpected 'T'$/m,
  },
  {
    what: 'binary garbage',
    files: async ({ ds }) => writeFile(path.join(ds, 'users.json'), Buffer.from([0x00, 0xff, 0xfe, 0x07, ...Buffer.from(SECRET)])),
    message: /users\.json:1:1: JSON syntax: unexpected U\+0000$/m,
  },
  {
    what: 'an empty users.json',
    files: async ({ ds }) => writeFile(path.join(ds, 'users.json'), ''),
    message: /users\.json:1:1: JSON syntax: the file is empty/,
  },
  // Names.
  { what: 'a container name with /', mutate: (d) => renameContainer(d, 'a/b.example.com'), message: /\/a~1b\.example\.com: invalid container name/ },
  { what: 'a container name ..', mutate: (d) => renameContainer(d, '..'), message: /\/\.\.: invalid container name/ },
  {
    what: 'a container name with NUL',
    mutate: (d) => renameContainer(d, 'a\u0000b.example.com'),
    message: /\/a\\u0000b\.example\.com: invalid container name/,
  },
  {
    what: 'a container name with a newline',
    mutate: (d) => renameContainer(d, 'a\nb.example.com'),
    message: /\/a\\nb\.example\.com: invalid container name/,
  },
  {
    what: 'a container name with a Cyrillic lookalike',
    mutate: (d) => renameContainer(d, 'www.ex\u0430mple.com'),
    message: /\/www\.exаmple\.com: invalid container name/,
  },
  {
    what: 'a user name with ../',
    mutate: (d) => {
      d.users['../../etc'] = d.users.alpha as Record<string, unknown>;
      delete d.users.alpha;
    },
    message: /\/\.\.~1\.\.~1etc: invalid user name/,
  },
  // Numbers and addresses.
  {
    what: 'hostnet as a string',
    mutate: (d) => {
      firstHost(d).hostnet = '1';
    },
    message: /\/eu\/web1\.example\.net\/hostnet: must be an integer, not "1"/,
  },
  { what: 'a negative host port', mutate: (d) => ports(d, -22), message: /host_port: -22 is out of range/ },
  { what: 'host port 0', mutate: (d) => ports(d, 0), message: /host_port: 0 is out of range/ },
  { what: 'host port 65536', mutate: (d) => ports(d, 65536), message: /host_port: 65536 is out of range/ },
  {
    what: 'a negative uid',
    mutate: (d) => {
      (d.users.alpha as Record<string, unknown>).uid = -1;
    },
    message: /\/alpha\/uid: -1 is out of range/,
  },
  {
    what: 'host_ip 0.0.0.0',
    mutate: (d) => {
      firstHost(d).host_ip = '0.0.0.0';
    },
    message: /\/eu\/web1\.example\.net\/host_ip: 0\.0\.0\.0 is not a usable host address/,
  },
  {
    what: 'host_ip 127.0.0.1',
    mutate: (d) => {
      firstHost(d).host_ip = '127.0.0.1';
    },
    message: /\/eu\/web1\.example\.net\/host_ip: 127\.0\.0\.1 is not a usable host address/,
  },
  // The source and the command line.
  {
    what: 'a ref that is an option (--upload-pack=…)',
    args: ({ root }) => ['--root', root, '--source', `file://${base}/none.git#--upload-pack=touch ${base}/pwned`, 'validate'],
    message: /REF "--upload-pack=touch .*" is not a branch, tag or commit name/,
  },
  {
    what: 'a source URL that is an option',
    args: ({ root }) => ['--root', root, '--source', '-oProxyCommand=touch /tmp/pwned', 'validate'],
    message: /expected a git URL or path/,
  },
  {
    what: 'a token in the source URL (unreachable)',
    args: ({ root }) => ['--root', root, '--source', `http://deploy:${SECRET}@127.0.0.1:1/farm.git#main`, 'validate'],
    message: /cannot fetch the source http:\/\/deploy:\*\*\*@127\.0\.0\.1:1\/farm\.git#main/,
  },
  {
    what: 'a source revision with users.json a symlink to a secret',
    args: async ({ root }) => [
      '--root',
      root,
      '--source',
      await gitSource('link-users', async (w) => {
        await rm(path.join(w, 'users.json'));
        await symlink(secretFile, path.join(w, 'users.json'));
      }),
      'validate',
    ],
    message: /has a symbolic link at "users\.json", where sc reads plain files/,
  },
  {
    what: 'a source revision with pki a symlinked directory',
    args: async ({ root }) => [
      '--root',
      root,
      '--source',
      await gitSource('link-pki', async (w) => symlink('/etc', path.join(w, 'pki'))),
      'validate',
    ],
    message: /has a symbolic link at "pki", where sc reads plain files/,
  },
  {
    what: '--datastore a FIFO',
    args: async ({ root }) => {
      const fifo = path.join(base, `fifo-${Date.now()}`);
      execFileSync('mkfifo', [fifo]);
      return ['--root', root, '--datastore', fifo, 'validate'];
    },
    message: /--datastore .*fifo-\d+: /,
  },
];

/** Every path below `dir` with type, size and mtime, never following links: "nothing written" is this, unchanged. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = path.join(d, name);
      const s = await lstat(p);
      out.push(`${path.relative(dir, p)} ${s.mode.toString(8)} ${s.size} ${s.mtimeMs}`);
      if (s.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

test('the table holds at least 30 hostile inputs', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(30);
});

let n = 0;
describe.each(CASES.map((c) => [c.what, c] as const))('%s', (_what, c) => {
  test('exit 1, a clear message, no secret, nothing written, bounded memory', async () => {
    n += 1;
    const ds = path.join(base, `ds${n}`);
    const root = path.join(base, `root${n}`);
    await mkdir(ds);
    await mkdir(root);
    const data = await example();
    c.mutate?.(data);
    for (const kind of ['clusters', 'users', 'containers', 'settings'] as const)
      await writeFile(path.join(ds, `${kind}.json`), JSON.stringify(data[kind], null, 2));
    const ctx = { ds, root, data };
    await c.files?.(ctx);
    const args = c.args ? await c.args(ctx) : ['--root', root, '--datastore', ds, 'validate'];
    const source = args.includes('--source');
    const before = await snapshot(ds);
    const rootBefore = await snapshot(root);

    const result = await execa('/usr/bin/time', ['-v', process.execPath, SC_MAIN, ...args], {
      reject: false,
      timeout: 240_000,
      env: { NO_COLOR: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
      stdin: 'ignore',
    });
    // GNU time's report is the tail of stderr; sc's own stderr comes before it.
    const stderr = String(result.stderr);
    const timeAt = stderr.lastIndexOf('\tCommand being timed:');
    const scStderr = timeAt >= 0 ? stderr.slice(0, timeAt) : stderr;
    const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1]);
    const output = `${String(result.stdout)}${scStderr}`;
    measured.push(`  ${String(Math.round(rss / 1024)).padStart(5)} MiB  ${c.what}`);

    expect({ exit: result.exitCode, output: output.slice(0, 2000) }).toMatchObject({ exit: 1 });
    expect(output).toMatch(c.message);
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain('line two of the secret');
    expect(output.length).toBeLessThan(16_000);
    expect(rss).toBeGreaterThan(0);
    expect(rss).toBeLessThan(RSS_BOUND_KIB);
    expect(await snapshot(ds)).toEqual(before);
    // A --source run caches what it fetched under --root (git's own objects, never checked out when refused).
    if (!source) expect(await snapshot(root)).toEqual(rootBefore);
    else await expect(lstat(path.join(root, 'var/lib/srvctl/source/users.json'))).rejects.toThrow(/ENOENT/);
    await expect(lstat(path.join(base, 'pwned'))).rejects.toThrow(/ENOENT/);
  }, 300_000);
});
