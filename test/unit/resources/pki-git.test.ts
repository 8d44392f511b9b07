// The cluster PKI publishing through git, with real git and openssl in temp dirs: from a --source
// checkout the public files are pushed to the source branch (racing pushes are rebuilt on the new
// tip, a tag-pinned source refuses clearly); a datastore that is a git work tree of its own gets a
// commit of exactly the published files.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { syncGitSource, type GitSourceSpec } from '../../../src/datastore/git-source.js';
import type { Model } from '../../../src/datastore/model.js';
import { createExec } from '../../../src/drivers/exec.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { createOpensslDriver } from '../../../src/drivers/openssl.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { applyHost } from '../../../src/reconciler/host-pass.js';
import { pkiHandler } from '../../../src/resources/pki.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';
import { pkiExchange } from '../../../src/datastore/pki-exchange.js';
import { publishToGitSource } from '../../../src/datastore/git-publish.js';

const handlers = { pki: pkiHandler };
const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
    'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
  },
};
const model = { clusters, users: {}, containers: {}, settings: {} } as unknown as Model;
type Name = keyof typeof clusters.test;
const IDENTITY = ['-c', 'user.name=operator', '-c', 'user.email=operator@test'];

let base: string;
const git = (cwd: string, ...args: string[]) => execa('git', [...IDENTITY, ...args], { cwd });
const gitOut = async (cwd: string, ...args: string[]) => (await git(cwd, ...args)).stdout.trim();

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-pki-git-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

function driversFor(root: string): Drivers {
  const exec = createExec();
  return {
    ...baseDrivers(exec, createFilesDriver(root)),
    openssl: createOpensslDriver(exec),
    ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
  };
}

/** A bare repository holding a minimal datastore, and an operator's clone of it. */
async function sourceRepo(name: string): Promise<{ bare: string; work: string }> {
  const bare = path.join(base, `${name}.git`);
  const work = path.join(base, `${name}-work`);
  await execa('git', ['init', '--quiet', '--bare', '-b', 'main', bare]);
  await execa('git', ['clone', '--quiet', bare, work]);
  await writeFile(path.join(work, 'clusters.json'), JSON.stringify(clusters));
  await git(work, 'add', '-A');
  await git(work, 'commit', '--quiet', '-m', 'datastore');
  await git(work, 'push', '--quiet', 'origin', 'HEAD:main');
  return { bare, work };
}

/** One `sc apply`-like pass of a host whose desired state is the source (synced first, as the CLI does). */
async function applyFromSource(name: Name, spec: GitSourceSpec, rootName: string = name) {
  const root = path.join(base, 'roots', rootName);
  await mkdir(root, { recursive: true });
  const checkout = await syncGitSource(spec, { root });
  const host: HostContext = {
    name,
    cluster: 'test',
    host: clusters.test[name],
    root,
    pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, name, root),
  };
  return applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' });
}

describe('cluster PKI published to a --source repository', () => {
  it('converges in two rounds: every published file is a commit pushed to the branch by the host that made it', async () => {
    const { bare } = await sourceRepo('src');
    const spec: GitSourceSpec = { url: `file://${bare}`, ref: 'main' };
    expect((await applyFromSource('h1.test', spec)).converged).toBe(true); // the CA certifies itself at once
    expect((await applyFromSource('h2.test', spec)).converged).toBe(false); // request pushed, waiting
    expect((await applyFromSource('h1.test', spec)).converged).toBe(true); // signs h2
    expect((await applyFromSource('h2.test', spec)).converged).toBe(true);
    expect((await applyFromSource('h2.test', spec)).report.results).toEqual([]); // nothing left to do

    const tree = (await gitOut(bare, 'ls-tree', '-r', '--name-only', 'main')).split('\n').sort();
    expect(tree).toEqual([
      'clusters.json',
      'pki/ca.crt',
      'pki/certs/h1.test.crt',
      'pki/certs/h2.test.crt',
      'pki/requests/h1.test.csr',
      'pki/requests/h2.test.csr',
    ]);
    const log = await gitOut(bare, 'log', '--format=%an|%s', 'main');
    expect(log).toContain('sc on h2.test|sc apply (cluster PKI) on h2.test: publish pki/requests/h2.test.csr');
    expect(log).toContain('sc on h1.test|sc apply (cluster PKI) on h1.test: publish pki/certs/h2.test.crt');
    expect(await gitOut(bare, 'log', '-p', '--all')).not.toContain('PRIVATE KEY');
  }, 90_000);

  it('a push that lost a race against an operator commit is rebuilt on the new tip; the operator commit stays', async () => {
    const { bare, work } = await sourceRepo('race');
    const spec: GitSourceSpec = { url: `file://${bare}`, ref: 'main' };
    const root = path.join(base, 'roots', 'h2-race');
    await mkdir(root, { recursive: true });
    const checkout = await syncGitSource(spec, { root });
    // The operator pushes after the host fetched: the host's first push is rejected.
    await writeFile(path.join(work, 'users.json'), '{}\n');
    await git(work, 'add', 'users.json');
    await git(work, 'commit', '--quiet', '-m', 'operator: users');
    await git(work, 'push', '--quiet', 'origin', 'HEAD:main');
    const host: HostContext = {
      name: 'h2.test',
      cluster: 'test',
      host: clusters.test['h2.test'],
      root,
      pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, 'h2.test', root),
    };
    await applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' });
    const subjects = (await gitOut(bare, 'log', '--format=%s', 'main')).split('\n');
    expect(subjects.slice(0, 2)).toEqual(['sc apply (cluster PKI) on h2.test: publish pki/requests/h2.test.csr', 'operator: users']);
  }, 60_000);

  it("a waiting host takes the CA host's signature pushed after its pass fetched: converged in that pass, not the next", async () => {
    const { bare } = await sourceRepo('wait');
    const spec: GitSourceSpec = { url: `file://${bare}`, ref: 'main' };
    expect((await applyFromSource('h1.test', spec, 'h1-wait')).converged).toBe(true);
    expect((await applyFromSource('h2.test', spec, 'h2-wait')).converged).toBe(false); // request pushed
    // h2's next pass fetches before the CA host's pass signs (timers firing together) …
    const root = path.join(base, 'roots', 'h2-wait');
    const checkout = await syncGitSource(spec, { root });
    expect((await applyFromSource('h1.test', spec, 'h1-wait')).converged).toBe(true); // … which pushes h2's certificate
    const host: HostContext = {
      name: 'h2.test',
      cluster: 'test',
      host: clusters.test['h2.test'],
      root,
      pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, 'h2.test', root, { timeoutMs: 20_000, pollMs: 100 }),
    };
    const result = await applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' });
    expect(result.converged).toBe(true);
    const installed = await readFile(path.join(root, 'etc/srvctl/pki/host.crt'), 'utf8');
    expect(installed).toBe(await gitOut(bare, 'show', 'main:pki/certs/h2.test.crt').then((t) => `${t}\n`));
    // Without the wait (sc apply), the same pass would have stayed pending.
    const plain = { ...host, pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, 'h2.test', root) };
    await rm(path.join(root, 'etc/srvctl/pki/host.crt'));
    expect((await applyHost({ model, host: plain, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' })).converged).toBe(false);
  }, 90_000);

  it("a waiting host does not take a certificate from the branch tip that the revision's CA did not issue", async () => {
    const { bare, work } = await sourceRepo('rogue');
    const spec: GitSourceSpec = { url: `file://${bare}`, ref: 'main' };
    expect((await applyFromSource('h1.test', spec, 'h1-rogue')).converged).toBe(true);
    expect((await applyFromSource('h2.test', spec, 'h2-rogue')).converged).toBe(false);
    const root = path.join(base, 'roots', 'h2-rogue');
    const checkout = await syncGitSource(spec, { root });
    // Someone pushes a certificate for h2's own key, issued by a CA of their own.
    const openssl = createOpensslDriver(createExec());
    const rogueKey = path.join(base, 'rogue-ca.key');
    await writeFile(rogueKey, await openssl.generateKey(), { mode: 0o600 });
    const rogueCa = path.join(base, 'rogue-ca.crt');
    await writeFile(rogueCa, await openssl.createCaCertificate(rogueKey, 'srvctl cluster CA test', 30));
    await git(work, 'pull', '--quiet', 'origin', 'main');
    const request = await readFile(path.join(work, 'pki/requests/h2.test.csr'), 'utf8');
    await mkdir(path.join(work, 'pki/certs'), { recursive: true });
    await writeFile(
      path.join(work, 'pki/certs/h2.test.crt'),
      await openssl.signRequest({ request, caCertPath: rogueCa, caKeyPath: rogueKey, days: 100 }),
    );
    await git(work, 'add', '-A');
    await git(work, 'commit', '--quiet', '-m', 'rogue certificate');
    await git(work, 'push', '--quiet', 'origin', 'HEAD:main');
    const host: HostContext = {
      name: 'h2.test',
      cluster: 'test',
      host: clusters.test['h2.test'],
      root,
      pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, 'h2.test', root, { timeoutMs: 500, pollMs: 100 }),
    };
    const result = await applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' });
    expect(result.converged).toBe(false);
    expect(result.report.results.find((r) => r.ref.id === 'host-cert')?.error).toMatch(/waiting for a certificate/);
    await expect(readFile(path.join(root, 'etc/srvctl/pki/host.crt'), 'utf8')).rejects.toThrow();
  }, 90_000);

  it('ten hosts publishing at the same moment all get their commit onto the branch (lost races retried)', async () => {
    const { bare } = await sourceRepo('crowd');
    const spec: GitSourceSpec = { url: `file://${bare}`, ref: 'main' };
    const names = Array.from({ length: 10 }, (_, i) => `r${i + 1}.test`);
    const roots = await Promise.all(
      names.map(async (name) => {
        const root = path.join(base, 'roots', `crowd-${name}`);
        await mkdir(root, { recursive: true });
        await syncGitSource(spec, { root });
        return root;
      }),
    );
    await Promise.all(
      names.map((name, i) =>
        publishToGitSource({
          root: roots[i] as string,
          spec,
          files: { [`pki/requests/${name}.csr`]: `request of ${name}\n` },
          message: `publish ${name}`,
          actor: `sc on ${name}`,
          host: name,
        }),
      ),
    );
    const tree = (await gitOut(bare, 'ls-tree', '-r', '--name-only', 'main')).split('\n');
    expect(names.filter((name) => !tree.includes(`pki/requests/${name}.csr`))).toEqual([]);
  }, 120_000);

  it('a source pinned to a tag cannot take the files: the host says how to fix it', async () => {
    const { bare, work } = await sourceRepo('tagged');
    await git(work, 'tag', 'v1');
    await git(work, 'push', '--quiet', 'origin', 'v1');
    const result = await applyFromSource('h2.test', { url: `file://${bare}`, ref: 'v1' });
    const failure = result.report.results.find((r) => r.ref.id === 'host-cert');
    expect(failure?.error).toMatch(/pinned to a tag or commit.*pin a branch/);
    expect(await gitOut(bare, 'ls-tree', '-r', '--name-only', 'main')).toBe('clusters.json');
  }, 60_000);
});

describe('cluster PKI in a datastore that is a git work tree', () => {
  it("commits exactly the published files; the operator's dirty files stay uncommitted", async () => {
    const dir = path.join(base, 'worktree');
    await mkdir(dir);
    await execa('git', ['init', '--quiet', '-b', 'main', dir]);
    await writeFile(path.join(dir, 'clusters.json'), JSON.stringify(clusters));
    await git(dir, 'add', '-A');
    await git(dir, 'commit', '--quiet', '-m', 'datastore');
    await writeFile(path.join(dir, 'users.json'), '{}\n'); // the operator's work in progress
    const root = path.join(base, 'roots', 'h2-worktree');
    const host: HostContext = {
      name: 'h2.test',
      cluster: 'test',
      host: clusters.test['h2.test'],
      root,
      pki: pkiExchange({ dir, readOnly: false }, 'h2.test', root),
    };
    await applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'sc apply' });
    expect(await gitOut(dir, 'log', '-1', '--format=%an|%s', '--name-only')).toBe(
      'sc on h2.test|sc apply (cluster PKI) on h2.test: publish pki/requests/h2.test.csr\n\npki/requests/h2.test.csr',
    );
    expect(await gitOut(dir, 'status', '--porcelain')).toBe('?? users.json');
    expect(await readFile(path.join(dir, 'pki/requests/h2.test.csr'), 'utf8')).toMatch(/BEGIN CERTIFICATE REQUEST/);
  }, 60_000);
});

describe('waiting for a published file (the exchange sc reconcile uses)', () => {
  it('returns the file once it is there and accepted, skips what is not accepted, and stops when the pass is stopped', async () => {
    const dir = path.join(base, 'await');
    await mkdir(path.join(dir, 'pki/certs'), { recursive: true });
    const abort = new AbortController();
    const exchange = pkiExchange({ dir, readOnly: false }, 'h2.test', path.join(base, 'roots', 'await'), {
      timeoutMs: 600_000,
      pollMs: 20,
      signal: abort.signal,
    });
    expect(exchange.awaitPublished).toBeDefined();
    const file = path.join(dir, 'pki/certs/h2.test.crt');
    const waiting = exchange.awaitPublished?.('pki/certs/h2.test.crt', (text) => text.startsWith('good'));
    await writeFile(file, 'bad\n'); // not accepted: the wait goes on
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writeFile(file, 'good\n');
    await expect(waiting).resolves.toBe('good\n');

    const stopped = exchange.awaitPublished?.('pki/certs/h3.test.crt', () => true);
    abort.abort();
    await expect(stopped).resolves.toBeUndefined();
    // Without a wait (sc apply), the exchange does not offer one.
    expect(pkiExchange({ dir, readOnly: false }, 'h2.test', base).awaitPublished).toBeUndefined();
  }, 30_000);
});
