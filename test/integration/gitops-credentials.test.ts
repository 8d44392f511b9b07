// A source URL with credentials (`http://deploy:TOKEN@…`), for real: the repository is served over
// git's dumb HTTP protocol by a small server on 127.0.0.1 that demands exactly those credentials
// (Basic auth). sc fetches with them, yet the token appears in no output (stdout, stderr, debug
// log), in no record (reconcile status, last apply, metrics), in no notice (a failed fetch that
// falls back to the cached revision) and not in the unit file install-units writes (the URL goes in
// without credentials; git's credential helper or an SSH key supply them there).
import { createServer, type Server } from 'node:http';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const TOKEN = 'ghp_S3CRETtokenVALUE42';
const GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
let sandbox: Sandbox;
let server: Server;
let bare: string;
let url: string;
const requests: { path: string; authorized: boolean }[] = [];

const git = async (args: string[], cwd?: string) =>
  (await execa('git', ['-c', 'user.name=op', '-c', 'user.email=op@test', ...args], { cwd, env: GIT_ENV })).stdout.trim();

/** Every file under `dir` (recursively), for a grep of the token. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else if (entry.isFile()) out.push(p);
  }
  return out;
}

beforeAll(async () => {
  sandbox = await createSandbox();
  const repos = path.join(sandbox.root, 'repos');
  bare = path.join(repos, 'farm.git');
  const work = path.join(repos, 'work');
  await mkdir(repos, { recursive: true });
  await git(['init', '-q', '--bare', '-b', 'main', bare]);
  await git(['init', '-q', '-b', 'main', work]);
  await writeFile(path.join(work, 'clusters.json'), JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } }));
  await writeFile(path.join(work, 'settings.json'), '{}\n');
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-m', 'one host'], work);
  await git(['push', '-q', bare, 'HEAD:main'], work);
  await git(['--git-dir', bare, 'update-server-info']);
  // git's dumb HTTP protocol is static files; the server demands deploy:TOKEN.
  const expected = `Basic ${Buffer.from(`deploy:${TOKEN}`).toString('base64')}`;
  server = createServer((req, res) => {
    const authorized = req.headers.authorization === expected;
    const file = decodeURIComponent((req.url ?? '/').split('?')[0] as string).replace(/^\/farm\.git\//, '');
    requests.push({ path: file, authorized });
    if (!authorized) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="farm"' }).end();
      return;
    }
    const target = path.resolve(bare, file);
    if (!target.startsWith(`${bare}/`)) {
      res.writeHead(404).end();
      return;
    }
    readFile(target).then(
      (body) => res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://deploy:${TOKEN}@127.0.0.1:${(server.address() as AddressInfo).port}/farm.git#main`;
}, 60_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (sandbox) await sandbox.destroy();
}, 60_000);

const sc = (...args: string[]) =>
  sandbox.runSc(['--host', HOST, '--source', url, '--log-level', 'debug', ...args], { env: GIT_ENV, timeoutMs: 180_000 });

describe('a source URL with credentials', () => {
  const outputs: string[] = [];

  it('is fetched with its credentials (the server saw them) and reconciles', async () => {
    const pass = await sc('reconcile', '--once');
    outputs.push(pass.stdout, pass.stderr);
    expect({ exit: pass.exitCode, out: pass.stdout.slice(-2000), err: pass.stderr.slice(-2000) }).toMatchObject({ exit: 0 });
    expect(requests.some((r) => r.authorized && r.path === 'info/refs')).toBe(true);
    const diff = await sc('diff');
    outputs.push(diff.stdout, diff.stderr);
    expect(diff.exitCode).toBe(0);
  }, 240_000);

  it('a failed fetch falls back to the cached revision with a notice that shows the URL redacted', async () => {
    await new Promise((resolve) => server.close(resolve));
    const pass = await sc('reconcile', '--once');
    outputs.push(pass.stdout, pass.stderr);
    expect(pass.stdout + pass.stderr).toMatch(/fetching http:\/\/deploy:\*\*\*@127\.0\.0\.1:\d+\/farm\.git#main failed/);
    const status = await sc('status');
    outputs.push(status.stdout, status.stderr);
    const apply = await sc('apply');
    outputs.push(apply.stdout, apply.stderr);
  }, 240_000);

  it('install-units writes the URL without credentials, and says how to give them to git', async () => {
    const result = await sc('install-units');
    outputs.push(result.stdout, result.stderr);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('the unit gets the source URL without its credentials (http://deploy:***@127.0.0.1:');
    const unit = await readFile(path.join(sandbox.root, 'etc/systemd/system/srvctl-reconcile.service'), 'utf8');
    expect(unit).toMatch(/--source http:\/\/deploy@127\.0\.0\.1:\d+\/farm\.git#main/);
    expect(unit).not.toContain(TOKEN);
  }, 120_000);

  it('the token is in no output, record, log or file sc wrote, except the root-only source cache config', async () => {
    expect(outputs.length).toBeGreaterThan(6);
    expect(outputs.filter((o) => o.includes(TOKEN))).toEqual([]);
    expect(outputs.join('\n')).toContain('deploy:***@');
    const leaks: string[] = [];
    for (const file of await filesUnder(sandbox.root)) {
      if (file.startsWith(path.join(sandbox.root, 'var/lib/srvctl/source/'))) continue;
      if ((await readFile(file)).includes(TOKEN)) leaks.push(path.relative(sandbox.root, file));
    }
    expect(leaks).toEqual([]);
    const records = ['var/lib/srvctl/reconcile-status.json', 'var/lib/srvctl/last-apply.json'];
    for (const record of records) expect(await readFile(path.join(sandbox.root, record), 'utf8')).toContain('deploy:***@127.0.0.1');
    // The cache keeps the URL git fetches from (as given): only root can read it.
    expect(((await stat(path.join(sandbox.root, 'var/lib/srvctl/source'))).mode & 0o777).toString(8)).toBe('700');
  }, 60_000);
});
