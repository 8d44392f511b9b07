// Datastore edits in a git working tree commit exactly their own files (issue 6 acceptance), push
// when asked and an upstream exists; and `sc install-units` writes the units idempotently under
// --root, verified by `systemd-analyze verify`. No network namespace needed.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { runSc } from './sandbox.js';

const HOST = 'h1.test';
const GIT_IDENTITY = ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid'];

let dir: string;
let work: string;
let upstream: string;

const git = async (cwd: string, ...args: string[]) => (await execa('git', [...GIT_IDENTITY, ...args], { cwd })).stdout.trim();
const sc = (...args: string[]) => runSc(['--datastore', work, '--host', HOST, ...args], { env: { SUDO_USER: 'alice-admin' } });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sc-gitops-edits-'));
  work = path.join(dir, 'datastore');
  upstream = path.join(dir, 'upstream.git');
  await execa('git', ['init', '-q', '--bare', '-b', 'main', upstream]);
  await execa('git', ['clone', '-q', upstream, work]);
  const clusters = { test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } };
  const users = { ua: { name: 'User A', reseller: 'root', user_id: 5, uid: 33005 } };
  await writeFile(path.join(work, 'clusters.json'), `${JSON.stringify(clusters, null, 2)}\n`);
  await writeFile(path.join(work, 'users.json'), `${JSON.stringify(users, null, 2)}\n`);
  await writeFile(path.join(work, 'containers.json'), '{}\n');
  await writeFile(path.join(work, 'NOTES.md'), 'notes\n');
  await git(work, 'add', '-A');
  await git(work, 'commit', '-q', '-m', 'initial datastore');
  await git(work, 'push', '-q', '-u', 'origin', 'main');
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('datastore edits in a git working tree', () => {
  it('sc add-ve makes exactly one commit with the command as message; unrelated dirty files stay out', async () => {
    // The operator's unrelated work in progress: a modified tracked file, a staged one, an untracked one.
    await writeFile(path.join(work, 'NOTES.md'), 'notes, edited by hand\n');
    await writeFile(path.join(work, 'staged.txt'), 'staged\n');
    await git(work, 'add', 'staged.txt');
    await writeFile(path.join(work, 'scratch.txt'), 'untracked\n');
    const before = Number(await git(work, 'rev-list', '--count', 'HEAD'));

    const added = await sc('add-ve', 'shop.example.com', '--user', 'ua', '--type', 'busybox');
    expect(added.stderr).toBe('');
    expect(added.exitCode).toBe(0);
    expect(added.stdout).toMatch(/Committed [0-9a-f]{12}\./);

    expect(Number(await git(work, 'rev-list', '--count', 'HEAD'))).toBe(before + 1);
    expect(await git(work, 'log', '-1', '--format=%s')).toBe('sc add-ve shop.example.com --user ua --type busybox');
    expect(await git(work, 'log', '-1', '--format=%an')).toBe('alice-admin');
    expect(await git(work, 'show', '--name-only', '--format=', 'HEAD')).toBe('containers.json');
    const committed = JSON.parse(await git(work, 'show', 'HEAD:containers.json')) as Record<string, { user: string; ip?: string }>;
    expect(committed['shop.example.com']).toMatchObject({ user: 'ua', ip: '10.16.5.20' });
    // Still dirty exactly as before, staged change still staged.
    const porcelain = (await execa('git', ['status', '--porcelain'], { cwd: work })).stdout;
    expect(porcelain.split('\n').sort()).toEqual([' M NOTES.md', '?? scratch.txt', 'A  staged.txt']);
    // Not pushed without --push.
    expect(await git(upstream, 'rev-list', '--count', 'main')).toBe(String(before));
  });

  it('--push pushes the commit to the upstream', async () => {
    const pushed = await sc('map-port', 'shop.example.com', 'tcp', '80', '--push');
    expect(pushed.exitCode).toBe(0);
    expect(pushed.stdout).toContain('and pushed');
    expect(await git(work, 'log', '-1', '--format=%s')).toBe('sc map-port shop.example.com tcp 80');
    expect(await git(upstream, 'rev-parse', 'main')).toBe(await git(work, 'rev-parse', 'HEAD'));
  });

  it('an edit that changes nothing makes no commit; a refused edit neither', async () => {
    const head = await git(work, 'rev-parse', 'HEAD');
    const refused = await sc('add-ve', 'shop.example.com', '--user', 'ua');
    expect(refused.exitCode).toBe(1);
    expect(await git(work, 'rev-parse', 'HEAD')).toBe(head);
  });

  it("--source is refused for edits: the checkout is sc's cache", async () => {
    const result = await runSc(['--source', `file://${upstream}#main`, '--host', HOST, '--root', dir, 'add-user', 'ub']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('read-only');
  });
});

describe('sc install-units', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sc-units-'));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  const install = () =>
    runSc([
      '--root',
      root,
      '--host',
      HOST,
      '--source',
      'https://git.example.net/farm.git#main',
      '-o',
      'json',
      'install-units',
      '--interval',
      '120',
      '--jitter',
      '20',
    ]);

  it('writes the reconcile service and timer and the container template, then leaves them alone', async () => {
    const first = await install();
    expect(first.exitCode).toBe(0);
    const units = (JSON.parse(first.stdout) as { units: { unit: string; state: string }[] }).units;
    expect(units.map((u) => `${u.unit} ${u.state}`)).toEqual([
      'srvctl-reconcile.service written',
      'srvctl-reconcile.timer written',
      'srvctl-nspawn@.service written',
    ]);
    const service = await readFile(path.join(root, 'etc/systemd/system/srvctl-reconcile.service'), 'utf8');
    expect(service).toMatch(/^ExecStart=\S+ \S+main\.js --source https:\/\/git\.example\.net\/farm\.git#main --host h1\.test reconcile --once$/m);
    const timer = await readFile(path.join(root, 'etc/systemd/system/srvctl-reconcile.timer'), 'utf8');
    expect(timer).toContain('OnUnitActiveSec=120s\n');
    expect(timer).toContain('RandomizedDelaySec=20s\n');

    const second = await install();
    expect((JSON.parse(second.stdout) as { units: { state: string }[] }).units.map((u) => u.state)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('systemd-analyze verify accepts them', async () => {
    // No skip when systemd-analyze is missing: the integration prerequisites stop the run first.
    const unitDir = path.join(root, 'etc/systemd/system');
    // A template is verified through an instance of it.
    await writeFile(path.join(root, 'srvctl-nspawn@probe.service'), await readFile(path.join(unitDir, 'srvctl-nspawn@.service'), 'utf8'));
    const verify = await execa(
      'systemd-analyze',
      // --man=no: judge the units, not whether this machine has man pages for their Documentation=.
      [
        'verify',
        '--man=no',
        path.join(unitDir, 'srvctl-reconcile.service'),
        path.join(unitDir, 'srvctl-reconcile.timer'),
        path.join(root, 'srvctl-nspawn@probe.service'),
      ],
      { reject: false },
    );
    expect(verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
  });
});
