// GitOps end to end through `sc` (issue 6 acceptance), in a fresh namespace and --root: a bare
// repository on disk is the desired state; diff/apply converge from it, `reconcile --once` applies
// new commits, refuses invalid ones and mass deletes, survives an unreachable source, and the loop
// reacts to a push and stops cleanly on SIGTERM. Containers are busybox ones, configured but
// disabled (no machine runs), so each user's bridge and container rootfs are what gets applied.
import { mkdir, readdir, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { machinesCgroupBase } from '../../src/drivers/cgroups.js';
import type { IpLink } from '../../src/drivers/types.js';
import type { ReconcileStatus } from '../../src/reconciler/reconcile-status.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.test';
const GIT_IDENTITY = ['-c', 'user.name=Test', '-c', 'user.email=test@example.invalid'];
const CGROUP_TREES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];

const users = {
  res1: { name: 'Reseller', reseller: 'root', reseller_id: 1, user_id: 1, uid: 32000 },
  ua: { name: 'User A', reseller: 'res1', user_id: 1, uid: 32001 },
  ub: { name: 'User B', reseller: 'res1', user_id: 2, uid: 32002 },
};
const container = (user: string, ip: string) => ({ user, host: HOST, type: 'busybox', ip, enabled: false });
const V1 = { 'ua1.test': container('ua', '10.17.1.20'), 'ua2.test': container('ua', '10.17.1.21') };
const V2 = { ...V1, 'ub1.test': container('ub', '10.17.2.20') };

let sandbox: Sandbox;
let work: string;
let bare: string;
let source: string;

const git = async (cwd: string, ...args: string[]) => (await execa('git', [...GIT_IDENTITY, ...args], { cwd })).stdout.trim();

/** Writes the datastore into the work clone, commits and pushes it; returns the new commit id. */
async function commitDatastore(message: string, containers: unknown, extra: Record<string, string> = {}): Promise<string> {
  const clusters = { test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11', interface: 'eth0' } } };
  const files: Record<string, string> = {
    'clusters.json': JSON.stringify(clusters, null, 2),
    'users.json': JSON.stringify(users, null, 2),
    'containers.json': JSON.stringify(containers, null, 2),
    'settings.json': JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }, null, 2),
    ...extra,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(work, name), `${text}\n`);
  await git(work, 'add', '-A');
  await git(work, 'commit', '-q', '-m', message);
  await git(work, 'push', '-q', 'origin', 'main');
  return git(work, 'rev-parse', 'HEAD');
}

const sc = (...args: string[]) => sandbox.runSc(['--host', HOST, '--source', source, ...args], { timeoutMs: 180_000 });

async function bridges(): Promise<string[]> {
  const links = await sandbox.ipJson<IpLink[]>('link', 'show', 'type', 'bridge');
  return links.map((l) => l.ifname).sort();
}

const readStatus = async (): Promise<ReconcileStatus> =>
  JSON.parse(await readFile(path.join(sandbox.root, 'var/lib/srvctl/reconcile-status.json'), 'utf8')) as ReconcileStatus;

/** Polls the status record until `ok` holds (the loop test's only way to see a pass). */
async function waitForStatus(ok: (s: ReconcileStatus) => boolean, what: string, timeoutMs = 90_000): Promise<ReconcileStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await readStatus().catch(() => undefined);
    if (status && ok(status)) return status;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function removeCgroupTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(path.join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

beforeAll(async () => {
  sandbox = await createSandbox();
  const repos = path.join(sandbox.root, 'repos');
  work = path.join(repos, 'work');
  bare = path.join(repos, 'farm.git');
  await mkdir(work, { recursive: true });
  await execa('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  await git(work, 'init', '-q', '-b', 'main');
  await git(work, 'remote', 'add', 'origin', bare);
  source = `file://${bare}#main`;
}, 60_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    // Disabled containers run nothing; kill whatever might run in this root's cgroups anyway.
    const base = machinesCgroupBase(sandbox.root);
    await writeFile(path.join(CGROUP_TREES[0] as string, base, 'cgroup.kill'), '1').catch(() => undefined);
    for (const tree of CGROUP_TREES) await removeCgroupTree(path.join(tree, base));
  } finally {
    await sandbox.destroy();
  }
}, 60_000);

describe('sc with a git source', () => {
  let v2: string;

  it('diff --source file://…#main shows the plan of the repository; apply converges; a second diff exits 0', async () => {
    const v1 = await commitDatastore('two containers of ua', V1);
    const diff = await sc('-o', 'json', 'diff');
    expect(diff.exitCode).toBe(2);
    const plan = JSON.parse(diff.stdout) as { changes: { action: string; kind: string; id: string }[] };
    expect(plan.changes.map((c) => `${c.action} ${c.kind}/${c.id}`)).toEqual(
      expect.arrayContaining(['create bridge/sc-17-1', 'create container/ua1.test', 'create container/ua2.test']),
    );

    const apply = await sc('apply');
    expect(apply.stderr).toBe('');
    expect(apply.exitCode).toBe(0);
    expect(await bridges()).toEqual(['sc-17-1']);
    expect((await sc('diff')).exitCode).toBe(0);
    // The cache is a checkout of exactly that commit.
    expect(await git(path.join(sandbox.root, 'var/lib/srvctl/source'), 'rev-parse', 'HEAD')).toBe(v1);
  }, 240_000);

  it("a new commit adding a user's container is applied by the next reconcile --once; status shows the new revision", async () => {
    v2 = await commitDatastore('ub1.test for ub', V2);
    const pass = await sc('reconcile', '--once');
    expect(pass.exitCode).toBe(0);
    expect(pass.stdout).toContain(`ok: applied revision ${v2.slice(0, 12)}`);
    expect(await bridges()).toEqual(['sc-17-1', 'sc-17-2']);

    const status = await sc('-o', 'json', 'status');
    expect(status.exitCode).toBe(0);
    const body = JSON.parse(status.stdout) as { last_reconcile: ReconcileStatus; resources: { kind: string; id: string; state: string }[] };
    expect(body.last_reconcile).toMatchObject({ revision: v2, last_good_revision: v2, result: 'ok', source });
    expect(body.last_reconcile.counts.failed).toBe(0);
    expect(body.resources.filter((r) => r.kind === 'bridge').map((r) => `${r.id} ${r.state}`)).toEqual(['sc-17-1 in sync', 'sc-17-2 in sync']);
    expect((await sc('status')).stdout).toContain(`Last reconcile: `);
    expect((await sc('status')).stdout).toContain(`ok, revision ${v2.slice(0, 12)}`);
    expect((await sc('status')).stdout).toContain(`converged, revision ${v2.slice(0, 12)} of ${source}`);
    expect((await sc('diff')).exitCode).toBe(0);

    const metrics = await readFile(path.join(sandbox.root, 'var/lib/srvctl/metrics/srvctl.prom'), 'utf8');
    expect(metrics).toMatch(/^srvctl_reconcile_duration_seconds [0-9.]+$/m);
    expect(metrics).toContain('srvctl_resources{kind="bridge",state="in_sync"} 2\n');
    expect(metrics).toContain('srvctl_resources{kind="container",state="in_sync"} 3\n');
    expect(metrics).toMatch(/^srvctl_drift_repaired_total 0$/m);
    expect(metrics).toMatch(/^srvctl_last_success_timestamp [1-9][0-9]+$/m);
  }, 240_000);

  it('drift on an unchanged revision is repaired and counted', async () => {
    await sandbox.ip('link', 'set', 'dev', 'sc-17-2', 'down');
    const pass = await sc('reconcile', '--once');
    expect(pass.exitCode).toBe(0);
    const status = await readStatus();
    expect(status.revision).toBe(v2);
    expect(status.drift_repaired_total).toBe(1);
    expect((await sc('diff')).exitCode).toBe(0);
  }, 120_000);

  it('a commit with an invalid datastore is refused: host unchanged, status shows the failure and the last good revision', async () => {
    const before = await bridges();
    const bad = await commitDatastore('ub2 for a user nobody knows', { ...V2, 'zz.test': container('nobody', '10.17.9.20') });
    const pass = await sc('reconcile', '--once');
    expect(pass.exitCode).toBe(1);
    expect(pass.stdout).toContain(`refused: revision ${bad.slice(0, 12)} is refused`);
    expect(await bridges()).toEqual(before);

    const status = await readStatus();
    expect(status).toMatchObject({ result: 'refused', revision: bad, last_good_revision: v2 });
    expect(status.diagnostics.map((d) => d.message).join('\n')).toContain('nobody');
    // The last good revision stays in force in the cache.
    expect(await git(path.join(sandbox.root, 'var/lib/srvctl/source'), 'rev-parse', 'HEAD')).toBe(v2);
    // sc status --source fetches the (invalid) newest revision, says so and shows the host against the last good one —
    // reading both from the cache's objects: the cache's HEAD never moves and its work tree stays as it was.
    const cache = path.join(sandbox.root, 'var/lib/srvctl/source');
    const headLog = await git(cache, 'reflog', '--format=%H %gs');
    const text = await sc('status');
    expect(await git(cache, 'reflog', '--format=%H %gs')).toBe(headLog);
    expect(await git(cache, 'status', '--porcelain', '--untracked-files=all')).toBe('');
    expect(await git(cache, 'rev-parse', 'HEAD')).toBe(v2);
    expect(text.exitCode).toBe(0);
    expect(text.stderr).toContain(`the newest revision ${bad.slice(0, 12)} of the source is invalid`);
    expect(text.stderr).toContain('unknown user "nobody"');
    expect(text.stdout).toContain(`refused, revision ${bad.slice(0, 12)}`);
    expect(text.stdout).toContain(`last good revision: ${v2.slice(0, 12)}`);
    expect(text.stdout).toContain('In sync with the datastore.');
    // diff against the invalid newest revision is an error, as apply would be.
    expect((await sc('diff')).exitCode).toBe(1);
    expect(await readFile(path.join(sandbox.root, 'var/lib/srvctl/metrics/srvctl.prom'), 'utf8')).toMatch(/^srvctl_reconcile_failures_total 1$/m);
  }, 120_000);

  it('a commit that removes every container is refused by the prune guardrail', async () => {
    const empty = await commitDatastore('remove every container', {});
    const pass = await sc('reconcile', '--once');
    expect(pass.exitCode).toBe(1);
    expect(pass.stdout).toContain('prune guardrail');
    expect(pass.stdout).toContain('--allow-mass-delete');
    expect(await bridges()).toEqual(['sc-17-1', 'sc-17-2']);
    expect(await readStatus()).toMatchObject({ result: 'refused', revision: empty, last_good_revision: v2 });
    // sc apply refuses the same plan.
    const apply = await sc('apply');
    expect(apply.exitCode).toBe(1);
    expect(apply.stderr).toContain('refused by the prune guardrail');
    expect(await bridges()).toEqual(['sc-17-1', 'sc-17-2']);
  }, 120_000);

  it('an unreachable source keeps the last good revision in force and says so', async () => {
    await commitDatastore('back to three containers', V2);
    await rename(bare, `${bare}.away`);
    try {
      const pass = await sc('reconcile', '--once');
      expect(pass.stderr).toContain('failed');
      expect(pass.stderr).toContain(`using the last good revision ${v2.slice(0, 12)}`);
      expect(pass.exitCode).toBe(0);
      const status = await readStatus();
      expect(status).toMatchObject({ result: 'ok', revision: v2, last_good_revision: v2 });
      expect(status.warnings.join('\n')).toContain('fetching');
    } finally {
      await rename(`${bare}.away`, bare);
    }
  }, 120_000);

  it('the loop (1 s interval) runs several passes, applies a new commit at once, and exits 0 soon after SIGTERM', async () => {
    const first = await sc('reconcile', '--once');
    expect(first.exitCode).toBe(0);
    const start = await readStatus();
    const loop = sandbox.startSc(['--host', HOST, '--source', source, 'reconcile', '--interval', '1'], { timeoutMs: 300_000 });
    try {
      await waitForStatus((s) => s.passes_total >= start.passes_total + 3, 'three loop passes');
      const v3 = await commitDatastore('ub2.test for ub', { ...V2, 'ub2.test': container('ub', '10.17.2.21') });
      const applied = await waitForStatus((s) => s.revision === v3 && s.result === 'ok', 'the loop to apply the new commit');
      expect(applied.counts.add).toBeGreaterThan(0);
    } finally {
      loop.kill('SIGTERM');
    }
    // A bound, not a measurement: the loop must not hang after SIGTERM.
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([loop, new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 15_000)))]);
    clearTimeout(timer);
    if (stopped === 'hung') throw new Error('sc reconcile did not exit within 15 s of SIGTERM');
    expect(stopped.exitCode).toBe(0);
    expect(String(stopped.stdout)).toMatch(/reconcile stopped after \d+ passes/);
    expect((await sc('diff')).exitCode).toBe(0);
  }, 300_000);

  it('a host whose own settings name the source (/etc/srvctl/data/settings.json) uses it without --source; edits are refused', async () => {
    const staticDir = path.join(sandbox.root, 'etc/srvctl/data');
    await mkdir(staticDir, { recursive: true });
    await writeFile(path.join(staticDir, 'settings.json'), JSON.stringify({ source: { url: bare, ref: 'main' } }));
    const plain = (...args: string[]) => sandbox.runSc(['--host', HOST, ...args], { timeoutMs: 120_000 });
    const diff = await plain('-o', 'json', 'diff');
    expect(diff.exitCode).toBe(0);
    const v4 = await commitDatastore('ub3.test for ub', {
      ...V2,
      'ub2.test': container('ub', '10.17.2.21'),
      'ub3.test': container('ub', '10.17.2.22'),
    });
    const pending = await plain('-o', 'json', 'diff');
    expect(pending.exitCode).toBe(2);
    expect((JSON.parse(pending.stdout) as { changes: { id: string }[] }).changes.map((c) => c.id)).toContain('ub3.test');
    const pass = await plain('reconcile', '--once');
    expect(pass.stdout).toContain(`ok: applied revision ${v4.slice(0, 12)}`);
    expect((await plain('diff')).exitCode).toBe(0);
    const edit = await plain('add-user', 'zed', '--reseller', 'res1');
    expect(edit.exitCode).toBe(1);
    expect(edit.stderr).toContain('edit a clone of the repository');
  }, 180_000);
});
