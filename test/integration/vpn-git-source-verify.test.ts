// source.verify and the cluster PKI together, for real (issue 13): two hosts in namespaces on a
// TEST-NET underlay take their desired state from one bare repository whose revisions must be
// signed. The operator signs with an SSH key every host's git trusts; each host signs its own PKI
// commits with the key sc made for it (/etc/srvctl/pki/git-signing.key), which the operator lists
// in pki/host-signers. The cluster converges into a working tunnel mesh without the operator's key
// on any host; an unsigned commit, a host-signed commit touching containers.json and a request a
// host publishes in another host's name are refused, and the hosts stay at the good revision.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { ReconcileStatus } from '../../src/reconciler/reconcile-status.js';
import { createSandbox, type Sandbox, type ScResult } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, underlayIp, type Underlay, concurrentRounds } from './vpn-underlay.js';

const HOSTS = ['h1.test', 'h2.test'] as const;
const users = { ua: { name: 'User A', reseller: 'root', user_id: 1, uid: 31001 } };
const settings = { runtime: 'direct', images: { busybox: { builder: 'busybox' } }, source: { verify: true } };
const containerIp = (n: number) => `10.${16 * n}.1.20`;
const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: underlayIp(1), interface: 'eth0', ca: true },
    'h2.test': { hostnet: 2, host_ip: underlayIp(2), interface: 'eth0' },
  },
};
const containers = {
  'c1.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: containerIp(1) },
  'c2.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: containerIp(2) },
};

const boxes: Sandbox[] = [];
let underlay: Underlay | undefined;
let bare: string;
let work: string;
let source: string;
let operatorKey: string;
/** The operator's git config (signing key, trusted signers), read by the test's git and by sc's. */
let gitEnv: Record<string, string>;
const transcript: string[] = [];

const box = (i: number): Sandbox => {
  const b = boxes[i];
  if (!b) throw new Error(`sandbox ${i} was not created`);
  return b;
};

async function git(args: readonly string[], cwd?: string): Promise<string> {
  const result = await execa('git', args, { cwd, env: gitEnv, reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) throw new Error(`git ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
  return result.stdout.trim();
}

async function sc(i: number, ...args: string[]): Promise<ScResult> {
  const host = HOSTS[i] as string;
  const result = await box(i).runSc(['--source', source, '--host', host, ...args], { timeoutMs: 240_000, env: gitEnv });
  transcript.push(`$ sc --host ${host} ${args.join(' ')} → exit ${result.exitCode}\n${result.stdout}${result.stderr}`);
  return result;
}

const tail = (text: string, max = 6_000) => (text.length > max ? `…${text.slice(-max)}` : text);
function expectExit(result: ScResult, code: number, what: string): void {
  if (result.exitCode !== code)
    throw new Error(`${what}: expected exit ${code}, got ${result.exitCode}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
}

/** A commit on main from the operator's clone (brought up to date first): signed with `key`, or unsigned. */
async function commitOnMain(change: () => Promise<void>, key: string | undefined, message: string): Promise<string> {
  await git(['fetch', '-q', 'origin'], work);
  await git(['reset', '-q', '--hard', 'origin/main'], work);
  await change();
  await git(['add', '-A'], work);
  await git([...(key === undefined ? ['commit', '--no-gpg-sign'] : ['-c', `user.signingKey=${key}`, 'commit', '-S']), '-q', '-m', message], work);
  await git(['push', '-q', '--force', 'origin', 'HEAD:main'], work);
  return git(['rev-parse', 'HEAD'], work);
}

const json = (body: unknown) => `${JSON.stringify(body, null, 2)}\n`;

beforeAll(async () => {
  for (let i = 0; i < HOSTS.length; i++) boxes.push(await createSandbox());
  underlay = await createUnderlay(boxes);
  const repos = path.join(box(0).root, 'repos');
  await mkdir(repos, { recursive: true });
  operatorKey = path.join(repos, 'operator');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'operator', '-f', operatorKey]);
  await writeFile(path.join(repos, 'allowed_signers'), `operator@example.invalid ${(await readFile(`${operatorKey}.pub`, 'utf8')).trim()}\n`);
  const config = path.join(repos, 'gitconfig');
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
      `\tallowedSignersFile = ${path.join(repos, 'allowed_signers')}`,
      '',
    ].join('\n'),
  );
  gitEnv = { GIT_CONFIG_GLOBAL: config, GIT_CONFIG_NOSYSTEM: '1' };

  bare = path.join(repos, 'farm.git');
  work = path.join(repos, 'work');
  await git(['init', '-q', '--bare', '-b', 'main', bare]);
  await git(['clone', '-q', bare, work]);
  await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], work);
  for (const [name, body] of Object.entries({
    'clusters.json': clusters,
    'users.json': users,
    'containers.json': containers,
    'settings.json': settings,
  })) {
    await writeFile(path.join(work, name), json(body));
  }
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-S', '-m', 'operator: two hosts, signatures required'], work);
  await git(['push', '-q', 'origin', 'main'], work);
  source = `file://${bare}#main`;
}, 120_000);

afterAll(async () => {
  await destroyVpnFarm(boxes, underlay);
}, 120_000);

/** Concurrent rounds of `sc apply` on every host until all exit 0 in one round (vpn-underlay.ts). */
const convergeAll = (rounds: number): Promise<number> => concurrentRounds(HOSTS.length, (i) => sc(i, 'apply'), rounds, transcript);

describe('signed source (source.verify) with the cluster PKI, two hosts', () => {
  let good: string;

  it('before the operator lists their keys, the hosts publish nothing and say which line to add', async () => {
    const results = await Promise.all([...HOSTS.keys()].map((i) => sc(i, 'apply')));
    for (const [i, result] of results.entries()) {
      expect(result.exitCode).not.toBe(0);
      expect(`${result.stdout}${result.stderr}`).toContain(
        `Add this line to pki/host-signers in an operator-signed commit: ${HOSTS[i]} ssh-ed25519 `,
      );
    }
    expect(await git(['--git-dir', bare, 'ls-tree', '-r', '--name-only', 'main'])).toBe('clusters.json\ncontainers.json\nsettings.json\nusers.json');
  }, 900_000);

  it('with the host keys listed, both hosts converge through their own signed commits; diff exits 0 on both', async () => {
    const lines = await Promise.all(
      HOSTS.map(async (h, i) => `${h} ${(await readFile(path.join(box(i).root, 'etc/srvctl/pki/git-signing.key.pub'), 'utf8')).trim()}`),
    );
    await commitOnMain(
      async () => {
        await mkdir(path.join(work, 'pki'), { recursive: true });
        await writeFile(path.join(work, 'pki/host-signers'), `${lines.join('\n')}\n`);
      },
      operatorKey,
      "operator: the hosts' signing keys",
    );
    expect(await convergeAll(5)).toBeLessThanOrEqual(5);
    for (const i of HOSTS.keys()) expectExit(await sc(i, 'diff'), 0, `sc diff on ${HOSTS[i]}`);
    // A reconcile pass records the good revision (the one a refused revision leaves in force).
    for (const i of HOSTS.keys()) expectExit(await sc(i, 'reconcile', '--once'), 0, `sc reconcile --once on ${HOSTS[i]}`);
    // Host commits carry the hosts' own good signatures.
    const signers = path.join(box(0).root, 'repos', 'host-signers-now');
    await writeFile(signers, await git(['--git-dir', bare, 'cat-file', 'blob', 'main:pki/host-signers']));
    const log = await git(['--git-dir', bare, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'log', '--format=%G?|%GS|%s', 'main']);
    expect(log).toMatch(/^G\|h2\.test\|.*publish pki\/requests\/h2\.test\.csr$/m);
    expect(log).toMatch(/^G\|h1\.test\|.*publish pki\/certs\/h2\.test\.crt$/m);
    good = await git(['--git-dir', bare, 'rev-parse', 'main']);
  }, 1_500_000);

  it('the container on h1 pings the container on h2 through the tunnel', async () => {
    const deadline = Date.now() + 20_000;
    let ping: ScResult;
    do {
      ping = await sc(0, 'exec', 'c1.test', '--', 'ping', '-c', '1', '-W', '1', containerIp(2));
      if (ping.exitCode === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    } while (Date.now() < deadline);
    expectExit(ping, 0, `ping ${containerIp(2)} from c1.test`);
  }, 120_000);

  const h2Key = () => path.join(box(1).root, 'etc/srvctl/pki/git-signing.key');
  const more = { ...containers, 'c3.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.32.1.21' } };
  it.each([
    [
      'an unsigned commit adding a container',
      () => commitOnMain(() => writeFile(path.join(work, 'containers.json'), json(more)), undefined, 'unsigned'),
      /no good signature/,
    ],
    [
      'a commit signed by host h2 adding a container',
      () => commitOnMain(() => writeFile(path.join(work, 'containers.json'), json(more)), h2Key(), 'h2 adds a container'),
      /signed by host h2\.test, which may change only its own PKI files, but it changes "containers\.json"/,
    ],
    [
      "h2 publishing a request in h1's name",
      () => commitOnMain(() => writeFile(path.join(work, 'pki/requests/h1.test.csr'), 'forged\n'), h2Key(), 'h2 forges h1'),
      /signed by host h2\.test, which may change only its own PKI files, but it changes "pki\/requests\/h1\.test\.csr"/,
    ],
  ])(
    '%s is refused (exit 1) by both hosts, which stay at the good revision',
    async (_what, make, reason) => {
      const bad = await make();
      for (const i of HOSTS.keys()) {
        const result = await sc(i, 'reconcile', '--once');
        expect(result.exitCode).toBe(1);
        expect(result.stdout + result.stderr).toContain(`at ${bad.slice(0, 12)} has no good signature`);
        expect(result.stdout + result.stderr).toMatch(reason);
        const status = JSON.parse(await readFile(path.join(box(i).root, 'var/lib/srvctl/reconcile-status.json'), 'utf8')) as ReconcileStatus;
        expect(status.last_good_revision).toBe(good);
        expect(await git(['rev-parse', 'HEAD'], path.join(box(i).root, 'var/lib/srvctl/source'))).toBe(good);
      }
      // The operator takes the bad commit back: both hosts are in sync with the good revision.
      await git(['push', '-q', '--force', 'origin', `${good}:refs/heads/main`], work);
      for (const i of HOSTS.keys()) expectExit(await sc(i, 'diff'), 0, `sc diff on ${HOSTS[i]} after the refusal`);
    },
    600_000,
  );
});
