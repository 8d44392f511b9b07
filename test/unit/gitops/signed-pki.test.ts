// source.verify and the cluster PKI together, with real git, ssh-keygen and openssl in temp dirs:
// hosts sign their own PKI commits with their SSH key; a verifying host accepts them only as far as
// pki/host-signers (changed by operators alone) lists the key and the commit touches only the
// signer's own files. Unsigned commits, host-signed commits outside the host's own files and a
// request published in another host's name are refused.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { syncGitSource, type GitSourceSpec } from '../../../src/datastore/git-source.js';
import type { Model } from '../../../src/datastore/model.js';
import { HOST_SIGNERS_FILE, HOST_SIGNING_KEY } from '../../../src/datastore/source-signers.js';
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
    'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
  },
};
const model = { clusters, users: {}, containers: {}, settings: { source: { verify: true } } } as unknown as Model;
type Name = keyof typeof clusters.test;
const NAMES = Object.keys(clusters.test) as Name[];

let base: string;
let bare: string;
let work: string;
let spec: GitSourceSpec;
let savedConfig: string | undefined;
const git = async (cwd: string, ...args: string[]) => (await execa('git', args, { cwd })).stdout.trim();
const rootOf = (name: Name) => path.join(base, 'roots', name);

function driversFor(root: string): Drivers {
  const exec = createExec();
  return {
    ...baseDrivers(exec, createFilesDriver(root)),
    openssl: createOpensslDriver(exec),
    ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
  };
}

beforeAll(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'sc-signed-pki-'));
  // The operator's key, trusted by every host's git (gpg.ssh.allowedSignersFile), as in gitops-verify.
  const operatorKey = path.join(base, 'operator');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'operator', '-f', operatorKey]);
  await writeFile(path.join(base, 'allowed_signers'), `operator@example.invalid ${(await readFile(`${operatorKey}.pub`, 'utf8')).trim()}\n`);
  const config = path.join(base, 'gitconfig');
  await writeFile(
    config,
    [
      '[user]',
      '\tname = Operator',
      '\temail = operator@example.invalid',
      `\tsigningkey = ${operatorKey}`,
      '[gpg]',
      '\tformat = ssh',
      '[gpg "ssh"]',
      `\tallowedSignersFile = ${path.join(base, 'allowed_signers')}`,
      '',
    ].join('\n'),
  );
  savedConfig = process.env.GIT_CONFIG_GLOBAL;
  process.env.GIT_CONFIG_GLOBAL = config;
  process.env.GIT_CONFIG_NOSYSTEM = '1';

  bare = path.join(base, 'farm.git');
  work = path.join(base, 'work');
  await execa('git', ['init', '--quiet', '--bare', '-b', 'main', bare]);
  await execa('git', ['clone', '--quiet', bare, work]);
  await git(work, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  await writeFile(path.join(work, 'clusters.json'), JSON.stringify(clusters));
  await writeFile(path.join(work, 'settings.json'), JSON.stringify({ source: { verify: true } }));
  await git(work, 'add', '-A');
  await git(work, 'commit', '--quiet', '-S', '-m', 'operator: three hosts, signatures required');
  await git(work, 'push', '--quiet', 'origin', 'main');
  spec = { url: `file://${bare}`, ref: 'main' };
}, 60_000);

afterAll(async () => {
  if (savedConfig === undefined) delete process.env.GIT_CONFIG_GLOBAL;
  else process.env.GIT_CONFIG_GLOBAL = savedConfig;
  delete process.env.GIT_CONFIG_NOSYSTEM;
  await rm(base, { recursive: true, force: true });
});

/** A verifying host's pass: sync (signatures checked) and apply the PKI. */
async function applyFrom(name: Name) {
  const root = rootOf(name);
  await mkdir(root, { recursive: true });
  const checkout = await syncGitSource(spec, { root, verify: true });
  const host: HostContext = {
    name,
    cluster: 'test',
    host: clusters.test[name],
    root,
    pki: pkiExchange({ dir: checkout.dir, readOnly: true, gitSource: spec }, name, root),
  };
  return applyHost({ model, host, drivers: driversFor(root), handlers, concurrency: 2, command: 'test' });
}

const errorsOf = (result: Awaited<ReturnType<typeof applyFrom>>) => result.report.results.flatMap((r) => (r.error ? [r.error] : []));

/** A commit on main made in the operator's clone: signed by `key` (or unsigned), pushed (forced). */
async function commitOnMain(change: (dir: string) => Promise<void>, key: string | undefined, message: string): Promise<string> {
  await git(work, 'fetch', '--quiet', 'origin');
  await git(work, 'reset', '--quiet', '--hard', 'origin/main');
  await change(work);
  await git(work, 'add', '-A');
  const sign = key === undefined ? ['commit', '--no-gpg-sign'] : ['-c', `user.signingKey=${key}`, 'commit', '-S'];
  await git(work, ...sign, '--quiet', '-m', message);
  await git(work, 'push', '--quiet', '--force', 'origin', 'HEAD:main');
  return git(work, 'rev-parse', 'HEAD');
}

describe('source.verify with the cluster PKI', () => {
  let good: string;

  it('a host whose signing key is not in pki/host-signers publishes nothing and says which line to add', async () => {
    for (const name of NAMES) {
      const errors = errorsOf(await applyFrom(name));
      expect(errors.join('\n')).toContain(
        `does not list this host's signing key, so the other hosts would refuse its commit. Add this line to ${HOST_SIGNERS_FILE} in an operator-signed commit: ${name} ssh-ed25519 `,
      );
    }
    expect(await git(bare, 'ls-tree', '-r', '--name-only', 'main')).toBe('clusters.json\nsettings.json');
  }, 120_000);

  it('once the operator lists the host keys, the hosts grow the PKI with their own signed commits and every host accepts them', async () => {
    const lines = await Promise.all(
      NAMES.map(async (name) => `${name} ${(await readFile(path.join(rootOf(name), `${HOST_SIGNING_KEY}.pub`), 'utf8')).trim()}`),
    );
    await commitOnMain(
      async (dir) => {
        await mkdir(path.join(dir, 'pki'), { recursive: true });
        await writeFile(path.join(dir, HOST_SIGNERS_FILE), `${lines.join('\n')}\n`);
      },
      path.join(base, 'operator'),
      'operator: host signing keys',
    );
    // h1 (CA) certifies itself; h2 and h3 publish requests; h1 signs them; h2 and h3 take their certificates.
    expect((await applyFrom('h1.test')).converged).toBe(true);
    expect((await applyFrom('h2.test')).converged).toBe(false);
    expect((await applyFrom('h3.test')).converged).toBe(false);
    expect((await applyFrom('h1.test')).converged).toBe(true);
    expect((await applyFrom('h2.test')).converged).toBe(true);
    expect((await applyFrom('h3.test')).converged).toBe(true);
    expect((await applyFrom('h1.test')).report.results).toEqual([]);

    // The host commits are signed by the hosts themselves (good signatures from pki/host-signers).
    const signers = path.join(base, 'host-signers-now');
    await writeFile(signers, await git(bare, 'cat-file', 'blob', `main:${HOST_SIGNERS_FILE}`));
    const log = await git(bare, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'log', '--format=%G?|%GS|%s', 'main');
    expect(log).toContain('G|h2.test|sc apply (cluster PKI) on h2.test: publish pki/requests/h2.test.csr');
    expect(log).toContain('G|h1.test|sc apply (cluster PKI) on h1.test: publish pki/certs/h2.test.crt, pki/certs/h3.test.crt');
    good = await git(bare, 'rev-parse', 'main');
  }, 240_000);

  const h2Key = () => path.join(rootOf('h2.test'), HOST_SIGNING_KEY);
  it.each([
    [
      'an unsigned commit',
      async () => commitOnMain(async (d) => writeFile(path.join(d, 'containers.json'), '{}\n'), undefined, 'unsigned'),
      /has no good signature.*it has no good signature of an operator or of a host listed in pki\/host-signers/,
    ],
    [
      'a host-signed commit touching containers.json',
      async () => commitOnMain(async (d) => writeFile(path.join(d, 'containers.json'), '{}\n'), h2Key(), 'h2 edits containers'),
      /signed by host h2\.test, which may change only its own PKI files, but it changes "containers\.json"/,
    ],
    [
      "a request published in another host's name",
      async () => commitOnMain(async (d) => writeFile(path.join(d, 'pki/requests/h3.test.csr'), 'forged\n'), h2Key(), 'h2 forges h3'),
      /signed by host h2\.test, which may change only its own PKI files, but it changes "pki\/requests\/h3\.test\.csr"/,
    ],
    [
      'a host adding a signer',
      async () =>
        commitOnMain(
          async (d) => writeFile(path.join(d, HOST_SIGNERS_FILE), 'evil.test ssh-ed25519 AAAA\n', { flag: 'a' }),
          h2Key(),
          'h2 adds a signer',
        ),
      /but it changes "pki\/host-signers"/,
    ],
    [
      'a non-CA host issuing a certificate',
      async () => commitOnMain(async (d) => writeFile(path.join(d, 'pki/certs/h2.test.crt'), 'self-made\n'), h2Key(), 'h2 certifies itself'),
      /but it changes "pki\/certs\/h2\.test\.crt"/,
    ],
  ])(
    '%s is refused by a verifying host, which stays at the good revision',
    async (_what, make, reason) => {
      const bad = await make();
      const root = rootOf('h3.test');
      const error = await syncGitSource(spec, { root, verify: true }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(new RegExp(`at ${bad.slice(0, 12)} `));
      expect(error?.message).toMatch(reason);
      expect(await git(path.join(root, 'var/lib/srvctl/source'), 'rev-parse', 'HEAD')).toBe(good);
      await git(work, 'push', '--quiet', '--force', 'origin', `${good}:refs/heads/main`);
    },
    60_000,
  );
});
