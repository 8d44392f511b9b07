// A git source is hostile input: real git in temp dirs. A revision with a symlink or submodule
// where sc reads files is refused before checkout (naming it); symlinks elsewhere are checked out as
// plain files (core.symlinks=false); credentials in the URL are never shown.
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parseGitSource, sourceLabel, syncGitSource } from '../../../src/datastore/git-source.js';
import { hasCredentials, redactUrl, urlWithoutCredentials } from '../../../src/drivers/url-credentials.js';
import { gitErrorText } from '../../../src/drivers/git.js';
import { LIMITS } from '../../../src/datastore/limits.js';

const IDENTITY = ['-c', 'user.name=operator', '-c', 'user.email=operator@test'];
let base: string;
let secretFile: string;
const git = (cwd: string, ...args: string[]) => execa('git', [...IDENTITY, ...args], { cwd });

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-hostile-source-'));
  secretFile = path.join(base, 'secret');
  await writeFile(secretFile, 'TOPSECRET-bytes\n');
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

let n = 0;
/** A bare repo with one commit made by `populate` in a work tree; returns the bare path. */
async function repo(populate: (work: string) => Promise<unknown>, staged?: (work: string) => Promise<unknown>): Promise<string> {
  n += 1;
  const bare = path.join(base, `r${n}.git`);
  const work = path.join(base, `r${n}-work`);
  await execa('git', ['init', '--quiet', '--bare', '-b', 'main', bare]);
  await execa('git', ['init', '--quiet', '-b', 'main', work]);
  await writeFile(path.join(work, 'clusters.json'), '{}\n');
  await populate(work);
  await git(work, 'add', '-A');
  await staged?.(work);
  await git(work, 'commit', '--quiet', '-m', 'x');
  await git(work, 'push', '--quiet', bare, 'HEAD:main');
  return bare;
}

const freshRoot = async () => mkdtemp(path.join(base, 'root-'));

describe('symlinks and submodules in a source revision', () => {
  test.each([
    ['users.json', async (w: string) => symlink(secretFile, path.join(w, 'users.json'))],
    ['settings.yaml', async (w: string) => symlink('/dev/zero', path.join(w, 'settings.yaml'))],
    ['pki', async (w: string) => symlink('/etc', path.join(w, 'pki'))],
    [
      'pki/requests/h1.test.csr',
      async (w: string) => {
        await mkdir(path.join(w, 'pki/requests'), { recursive: true });
        await symlink(secretFile, path.join(w, 'pki/requests/h1.test.csr'));
      },
    ],
  ])('a symlink at %s is refused before checkout, naming it; nothing of the target shown', async (name, populate) => {
    const bare = await repo(populate);
    const root = await freshRoot();
    const error = await syncGitSource(parseGitSource(`${bare}#main`), { root }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(`has a symbolic link at "${name}", where sc reads plain files`);
    expect(error.message).toContain('nothing applied');
    expect(error.message).not.toContain('TOPSECRET');
    // Nothing checked out.
    await expect(lstat(path.join(root, 'var/lib/srvctl/source/clusters.json'))).rejects.toThrow(/ENOENT/);
  });

  test('a submodule (gitlink) at pki is refused', async () => {
    const bare = await repo(
      async () => undefined,
      async (w) => {
        const sha = (await execa('git', ['hash-object', '-w', '--stdin'], { cwd: w, input: 'x' })).stdout.trim();
        await git(w, 'update-index', '--add', '--cacheinfo', `160000,${sha},pki`);
      },
    );
    const error = await syncGitSource(parseGitSource(`${bare}#main`), { root: await freshRoot() }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toContain('has a submodule at "pki"');
  });

  test('a symlink where sc reads nothing is checked out as a plain file holding the link text', async () => {
    const bare = await repo(async (w) => symlink(secretFile, path.join(w, 'docs-link')));
    const root = await freshRoot();
    const checkout = await syncGitSource(parseGitSource(`${bare}#main`), { root });
    const link = path.join(checkout.dir, 'docs-link');
    expect((await lstat(link)).isFile()).toBe(true);
    expect(await readFile(link, 'utf8')).toBe(secretFile);
    expect(((await lstat(checkout.dir)).mode & 0o777).toString(8)).toBe('700');
  });
});

describe('credentials in source URLs', () => {
  test.each([
    [
      'https://alice:s3cr3t-token@git.example.net/farm.git#main',
      'https://alice:***@git.example.net/farm.git#main',
      'https://alice@git.example.net/farm.git',
    ],
    ['https://ghp_TOKEN123@github.com/o/farm.git', 'https://***@github.com/o/farm.git', 'https://github.com/o/farm.git'],
    ['http://u:p%40ss@127.0.0.1:8080/r.git', 'http://u:***@127.0.0.1:8080/r.git', 'http://u@127.0.0.1:8080/r.git'],
    ['ssh://git@git.example.net/farm.git', 'ssh://git@git.example.net/farm.git', 'ssh://git@git.example.net/farm.git'],
    ['git@git.example.net:farm.git', 'git@git.example.net:farm.git', 'git@git.example.net:farm.git'],
  ])('%s is shown as %s and stored as %s', (given, shown, stored) => {
    const spec = parseGitSource(given);
    expect(sourceLabel(spec)).toBe(shown);
    expect(urlWithoutCredentials(spec.url)).toBe(stored);
    expect(hasCredentials(spec.url)).toBe(shown !== given);
  });

  test('git messages quoting the remote are redacted; a bad --source is shown redacted', async () => {
    expect(gitErrorText(new Error("fatal: unable to access 'https://bob:tok3n@127.0.0.1:1/x.git/': Failed to connect"))).toBe(
      "fatal: unable to access 'https://bob:***@127.0.0.1:1/x.git/': Failed to connect",
    );
    expect(() => parseGitSource('https://bob:tok3n@h/x#--upload-pack=evil')).toThrow(/^--source "https:\/\/bob:\*\*\*@h\/x#--upload-pack=evil": REF/);
    expect(redactUrl('see https://a:b@h and https://c:d@i')).toBe('see https://a:***@h and https://c:***@i');
  });

  test('a clone that fails with a token URL never shows the token', async () => {
    const error = await syncGitSource(parseGitSource('http://bob:SECRETTOKEN@127.0.0.1:1/x.git#main'), { root: await freshRoot() }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toMatch(/^cannot fetch the source http:\/\/bob:\*\*\*@127\.0\.0\.1:1\/x\.git#main/);
    expect(error.message).not.toContain('SECRETTOKEN');
  });
});

describe('size limits of a source', () => {
  // The real limits (256 MiB of files, 100,000 entries, a 1 GiB object store) lowered for the test.
  const limits = LIMITS as unknown as Record<string, number>;
  const saved = { ...limits };
  afterEach(() => Object.assign(limits, saved));

  test.each([
    ['sourceTreeBytes', 4000, /holds \d+ bytes of files, more than the limit of 4000; nothing applied/],
    ['sourceTreeEntries', 3, /has \d+ files and directories, more than the limit of 3; nothing applied/],
    ['sourceRepositoryBytes', 1000, /takes \d+ bytes in .*, more than the limit of 1000; nothing applied/],
  ])('over %s (%i) a revision is refused before checkout', async (limit, value, message) => {
    const bare = await repo(async (w) => {
      await writeFile(path.join(w, 'users.json'), JSON.stringify({ pad: 'x'.repeat(5000) }));
      await mkdir(path.join(w, 'docs'));
      await writeFile(path.join(w, 'docs/a.md'), 'a');
    });
    const root = await freshRoot();
    limits[limit] = value;
    const error = await syncGitSource(parseGitSource(`${bare}#main`), { root }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(error.message).toMatch(message);
    await expect(lstat(path.join(root, 'var/lib/srvctl/source/users.json'))).rejects.toThrow(/ENOENT/);
  });
});
