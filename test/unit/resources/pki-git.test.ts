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
async function applyFromSource(name: Name, spec: GitSourceSpec) {
  const root = path.join(base, 'roots', name);
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
