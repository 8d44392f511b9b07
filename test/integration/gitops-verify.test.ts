// Signed revisions (issue 6, `source.verify`): commits signed with an SSH key the host trusts
// (gpg.format=ssh, an allowed-signers file in the git config sc's git reads) are accepted; once
// the revision in force asks for signatures, an unsigned commit is refused even when it switches
// the setting off itself, and the host stays at the signed revision.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { ReconcileStatus } from '../../src/reconciler/reconcile-status.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
let sandbox: Sandbox;
let work: string;
let source: string;
let gitEnv: Record<string, string>;

const git = async (...args: string[]) => (await execa('git', args, { cwd: work, env: gitEnv })).stdout.trim();

async function commit(message: string, settings: unknown, sign: boolean): Promise<string> {
  await writeFile(path.join(work, 'clusters.json'), JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } }));
  await writeFile(path.join(work, 'settings.json'), JSON.stringify(settings));
  await git('add', '-A');
  await git('commit', '-q', ...(sign ? ['-S'] : ['--no-gpg-sign']), '-m', message);
  await git('push', '-q', 'origin', 'HEAD:main');
  return git('rev-parse', 'HEAD');
}

const sc = (...args: string[]) => sandbox.runSc(['--host', HOST, '--source', source, ...args], { env: gitEnv, timeoutMs: 120_000 });
const readStatus = async () => JSON.parse(await readFile(path.join(sandbox.root, 'var/lib/srvctl/reconcile-status.json'), 'utf8')) as ReconcileStatus;

beforeAll(async () => {
  sandbox = await createSandbox();
  const dir = path.join(sandbox.root, 'git');
  await mkdir(dir, { recursive: true });
  const key = path.join(dir, 'signer');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'signer', '-f', key]);
  const publicKey = (await readFile(`${key}.pub`, 'utf8')).trim();
  await writeFile(path.join(dir, 'allowed_signers'), `signer@example.invalid ${publicKey}\n`);
  // One git config for the operator's commits and for sc's git: signing key and trusted signers.
  const config = path.join(dir, 'gitconfig');
  await writeFile(
    config,
    [
      '[user]',
      '\tname = Signer',
      '\temail = signer@example.invalid',
      `\tsigningkey = ${key}`,
      '[gpg]',
      '\tformat = ssh',
      '[gpg "ssh"]',
      `\tallowedSignersFile = ${path.join(dir, 'allowed_signers')}`,
      '',
    ].join('\n'),
  );
  gitEnv = { GIT_CONFIG_GLOBAL: config, GIT_CONFIG_NOSYSTEM: '1' };
  const bare = path.join(dir, 'farm.git');
  await execa('git', ['init', '-q', '--bare', '-b', 'main', bare], { env: gitEnv });
  work = path.join(dir, 'work');
  await execa('git', ['clone', '-q', bare, work], { env: gitEnv });
  source = `file://${bare}#main`;
  // Generous: creating the namespace waits for the kernel's network lock while other suites tear theirs down.
}, 180_000);

afterAll(async () => {
  if (sandbox) await sandbox.destroy();
}, 60_000);

describe('signed revisions (source.verify)', () => {
  let signed: string;

  it('reconcile --verify accepts a signed revision and refuses an unsigned one', async () => {
    const unsigned = await commit('unsigned start', {}, false);
    const refused = await sc('reconcile', '--once', '--verify');
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toContain(`${unsigned.slice(0, 12)} has no good signature`);

    signed = await commit('signed, and from now on signatures are required', { source: { verify: true } }, true);
    const pass = await sc('reconcile', '--once', '--verify');
    expect(pass.stdout).toContain(`ok: `);
    expect(pass.exitCode).toBe(0);
    expect(await readStatus()).toMatchObject({ result: 'ok', revision: signed, last_good_revision: signed });
    expect((await sc('diff')).exitCode).toBe(0);
  }, 120_000);

  it('with source.verify in force, an unsigned commit that turns it off is refused; the signed revision stays', async () => {
    const sneaky = await commit('unsigned, verify off', { source: { verify: false } }, false);
    const pass = await sc('reconcile', '--once'); // no --verify: the revision in force asks for it
    expect(pass.exitCode).toBe(1);
    expect(pass.stdout).toContain(`${sneaky.slice(0, 12)} has no good signature`);
    expect(await readStatus()).toMatchObject({ result: 'refused', last_good_revision: signed });
    expect((await execa('git', ['-C', path.join(sandbox.root, 'var/lib/srvctl/source'), 'rev-parse', 'HEAD'])).stdout.trim()).toBe(signed);
    // sc diff --source is held to the same rule.
    const diff = await sc('diff');
    expect(diff.exitCode).toBe(1);
    expect(diff.stderr).toContain('has no good signature');
  }, 120_000);
});
