// The cluster PKI published through a git source (acceptance): two hosts of one cluster on a
// TEST-NET underlay take their desired state from one bare repository, `--source file://BARE#main`.
// sc publishes the public PKI files (h2's certificate request; on the CA host h1 the CA certificate
// and the signed certificates) by commit + push to main, so every host converges within a few
// rounds of `sc apply`; no private key ever reaches the repository; the tunnel carries container
// traffic; and an operator who pulls (rebase) before pushing still gets a commit in and applied.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox, type ScResult } from './sandbox.js';
import { createUnderlay, destroyVpnFarm, underlayIp, type Underlay, concurrentRounds } from './vpn-underlay.js';

const HOSTS = ['h1.test', 'h2.test'] as const;
const users = { ua: { name: 'User A', reseller: 'root', user_id: 1, uid: 31001 } };
const settings = { runtime: 'direct', images: { busybox: { builder: 'busybox' } } };
const containerIp = (n: number) => `10.${16 * n}.1.20`;
const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: underlayIp(1), interface: 'eth0', ca: true },
    'h2.test': { hostnet: 2, host_ip: underlayIp(2), interface: 'eth0' },
  },
};
type Containers = Record<string, { user: string; host: string; type: string; ip: string }>;
const containers: Containers = {
  'c1.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: containerIp(1) },
  'c2.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: containerIp(2) },
};
/** What sc must have published to main once the cluster converged. */
const PUBLISHED = ['pki/ca.crt', 'pki/requests/h2.test.csr', 'pki/certs/h1.test.crt', 'pki/certs/h2.test.crt'];

// Neither the test's git nor sc's may depend on this machine's git configuration (identity included).
const GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
const GIT_IDENTITY = ['-c', 'user.name=test', '-c', 'user.email=test@test'];

const boxes: Sandbox[] = [];
let underlay: Underlay | undefined;
let bare: string;
let work: string;
let source: string;

const gitRun = (args: readonly string[], cwd?: string) =>
  execa('git', [...GIT_IDENTITY, ...args], { cwd, env: GIT_ENV, reject: false, stdin: 'ignore' });

/** git ARGS (in `cwd`), its stdout; throws with git's stderr on exit ≠ 0. */
async function git(args: readonly string[], cwd?: string): Promise<string> {
  const result = await gitRun(args, cwd);
  if (result.exitCode !== 0) throw new Error(`git ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
  return result.stdout;
}

/** Every sc run of this test, for failure messages. */
const transcript: string[] = [];

const box = (i: number): Sandbox => {
  const b = boxes[i];
  if (!b) throw new Error(`sandbox ${i} was not created`);
  return b;
};

/** `sc --source file://BARE#main --host hN ARGS` on host i (plus the sandbox's --root and --netns). */
async function sc(i: number, ...args: string[]): Promise<ScResult> {
  const host = HOSTS[i] as string;
  const result = await box(i).runSc(['--source', source, '--host', host, ...args], { timeoutMs: 240_000, env: GIT_ENV });
  transcript.push(`$ sc --host ${host} ${args.join(' ')} → exit ${result.exitCode}\n${result.stdout}${result.stderr}`);
  return result;
}

const tail = (text: string, max = 6_000) => (text.length > max ? `…${text.slice(-max)}` : text);

/** Fails with the command's output when it did not exit `code`. */
function expectExit(result: ScResult, code: number, what: string): void {
  if (result.exitCode !== code) {
    throw new Error(`${what}: expected exit ${code}, got ${result.exitCode}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`);
  }
}

/** Writes the operator's datastore into the work clone, commits it; returns the commit id. */
async function commitDatastore(message: string, wanted: Containers): Promise<string> {
  const files: Record<string, unknown> = { 'clusters.json': clusters, 'users.json': users, 'containers.json': wanted, 'settings.json': settings };
  for (const [name, body] of Object.entries(files)) await writeFile(path.join(work, name), `${JSON.stringify(body, null, 2)}\n`);
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-m', message], work);
  return (await git(['rev-parse', 'HEAD'], work)).trim();
}

beforeAll(async () => {
  // One at a time into `boxes`, so afterAll also removes those made before a failure.
  for (let i = 0; i < HOSTS.length; i++) boxes.push(await createSandbox());
  underlay = await createUnderlay(boxes);

  const repos = path.join(box(0).root, 'repos');
  bare = path.join(repos, 'farm.git');
  work = path.join(repos, 'work');
  await mkdir(repos, { recursive: true });
  await git(['init', '-q', '--bare', '-b', 'main', bare]);
  await git(['clone', '-q', bare, work]);
  // An empty clone's unborn branch follows the local default, not the remote's: name it.
  await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], work);
  await commitDatastore('two hosts of cluster test, one busybox container each', containers);
  await git(['push', '-q', 'origin', 'main'], work);
  source = `file://${bare}#main`;
}, 60_000);

afterAll(async () => {
  // Tunnels first, then containers and namespaces (sandbox.md §9); also when setup or a test failed.
  await destroyVpnFarm(boxes, underlay);
}, 120_000);

/** Concurrent rounds of `sc apply` on every host until all exit 0 in one round (vpn-underlay.ts). */
const convergeAll = (rounds: number): Promise<number> => concurrentRounds(HOSTS.length, (i) => sc(i, 'apply'), rounds, transcript);

/** Pings `address` from c1.test on h1, retrying for about 15 s (the tunnel may still be coming up). */
async function pingFromC1(address: string): Promise<ScResult> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const result = await sc(0, 'exec', 'c1.test', '--', 'ping', '-c', '1', '-W', '1', address);
    if (result.exitCode === 0 || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The first base64 line of a PEM private key: it carries bits of the secret itself. */
function secretLine(pem: string, what: string): string {
  const line = pem.split('\n')[1] ?? '';
  if (!pem.includes('PRIVATE KEY') || !/^[A-Za-z0-9+/=]{40,}$/.test(line)) throw new Error(`${what} does not look like a PEM private key`);
  return line;
}

describe('cluster PKI published through a git source (two hosts)', () => {
  it('every host converges from --source within 4 rounds of concurrent applies; diff then exits 0 on both', async () => {
    // Round 1: the CA certifies itself, h2 pushes its request; then the CA signs it and h2 picks it
    // up — a round later when h2 fetched before the CA's push landed.
    const rounds = await convergeAll(4);
    expect(rounds).toBeLessThanOrEqual(4);
    for (const i of HOSTS.keys()) expectExit(await sc(i, 'diff'), 0, `sc diff on ${HOSTS[i]}`);
  }, 1_500_000);

  it('main holds the published requests and certificates, and no private key anywhere in the repository', async () => {
    const log = await git(['--git-dir', bare, 'log', '--format=%s%n%b', '--name-only', 'main']);
    const names = log.split('\n').map((l) => l.trim());
    expect(PUBLISHED.filter((f) => !names.includes(f))).toEqual([]);

    const keys: [string, string][] = [
      ['h1 host.key', path.join(box(0).root, 'etc/srvctl/pki/host.key')],
      ['h2 host.key', path.join(box(1).root, 'etc/srvctl/pki/host.key')],
      ['h1 ca.key', path.join(box(0).root, 'etc/srvctl/pki/ca.key')],
    ];
    const secrets = await Promise.all(keys.map(async ([what, file]) => [what, secretLine(await readFile(file, 'utf8'), what)] as const));
    // The history of every ref, and (stricter) every object the repository stores, reachable or not.
    const history = await git(['--git-dir', bare, 'log', '-p', '--all']);
    const objects = await git(['--git-dir', bare, 'cat-file', '--batch-all-objects', '--batch']);
    const leaks: string[] = [];
    for (const [where, text] of [
      ['git log -p --all', history],
      ['cat-file --batch-all-objects', objects],
    ] as const) {
      if (text.includes('PRIVATE KEY')) leaks.push(`${where}: "PRIVATE KEY"`);
      for (const [what, line] of secrets) if (text.includes(line)) leaks.push(`${where}: the body of ${what}`);
    }
    expect(leaks).toEqual([]);
  }, 60_000);

  it('the container on h1 pings the container on h2 by its 10.x address', async () => {
    const ping = await pingFromC1(containerIp(2));
    expectExit(ping, 0, `ping ${containerIp(2)} from c1.test`);
  }, 120_000);

  it("an operator commit after sc's PKI commits is pushed (after pull --rebase) and applied on h2", async () => {
    // As an operator would: bring the clone up to date (sc's commits moved main), then commit and push.
    await git(['pull', '-q', '--rebase', 'origin', 'main'], work);
    expect(PUBLISHED.filter((f) => !existsSync(path.join(work, f)))).toEqual([]);
    const operator = await commitDatastore('a second container on h2', {
      ...containers,
      'c2b.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.32.1.21' },
    });
    const push = await gitRun(['push', 'origin', 'main'], work);
    if (push.exitCode !== 0) throw new Error(`the operator's push was rejected (exit ${push.exitCode}):\n${push.stderr}`);

    expectExit(await sc(1, 'apply'), 0, 'sc apply on h2 after the operator commit');
    expectExit(await sc(1, 'diff'), 0, 'sc diff on h2 after that apply');
    // Whatever sc committed since, the operator's commit is still on main.
    const kept = await gitRun(['--git-dir', bare, 'merge-base', '--is-ancestor', operator, 'main']);
    expect(kept.exitCode).toBe(0);
  }, 600_000);
});
