// `npm run bench -- cluster [N] [--concurrency C]` (issue 17, "a farm at full size"): N namespace
// hosts of one cluster on one underlay switch namespace, one bare git repository (file://, in a temp
// dir) as every host's --source, two busybox containers per host (three on host 9 after the commit),
// and the cluster CA flow from nothing (the CA host h1 signs, the hosts publish their requests by
// pushing to the repository). Rounds of `sc reconcile --once` on every host (C hosts at once) until a
// round in which every host exits 0, then until every tunnel of the full mesh is up (N·(N−1)/2); then
// the time for one commit (a new container on host 9) to be applied by one round on all N; each
// host's peak memory (/usr/bin/time); and a sample of pings from a host's namespace to a container
// on another host. Everything (tunnels, containers, namespaces, temp dir) is removed at the end, also
// on failure or Ctrl-C; only pids this run started (or sc started for it) are killed.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../dist/drivers/cgroups.js';
import { parseTunnelLog } from '../dist/drivers/openvpn.js';
import { killChildren, loadLine, must, run, secs, table, waitForQuietKernel } from './lib.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** SPEC §2: hostnets 1–15, one per host of a cluster: a cluster has at most 15 hosts (105 tunnels). */
export const MAX_CLUSTER_HOSTS = 15;
const MAX_ROUNDS = 8;
const progress = (msg) => process.stderr.write(`[bench cluster] ${msg}\n`);
// Neither the bench's git nor sc's may depend on this machine's git configuration.
const GIT_ENV = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
const GIT_IDENTITY = ['-c', 'user.name=bench', '-c', 'user.email=bench@bench'];

const hostName = (n) => `h${n}.farm.test`;
const underlayIp = (n) => `192.0.2.${100 + n}`;
const containerIp = (n, k) => `10.${16 * n}.1.${20 + k}`;

/** What the run made, for cleanup (also on failure or Ctrl-C). */
let state;

const git = (args, cwd) => must('git', [...GIT_IDENTITY, ...args], { cwd, env: GIT_ENV });

function datastoreDocs(count, extra) {
  const cluster = {};
  const containers = {};
  for (let n = 1; n <= count; n++) {
    cluster[hostName(n)] = { hostnet: n, host_ip: underlayIp(n), interface: 'eth0', ...(n === 1 ? { ca: true } : {}) };
    for (const k of [0, 1]) containers[`c${n}${'ab'[k]}.farm.test`] = { user: 'ua', host: hostName(n), type: 'busybox', ip: containerIp(n, k) };
  }
  Object.assign(containers, extra);
  return {
    clusters: { farm: cluster },
    users: { ua: { name: 'User A', reseller: 'root', user_id: 1, uid: 31001 } },
    containers,
    settings: { runtime: 'direct', images: { busybox: { builder: 'busybox' } } },
  };
}

async function commitDatastore(work, docs, message) {
  for (const [name, doc] of Object.entries(docs)) await writeFile(path.join(work, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-m', message], work);
  await git(['push', '-q', 'origin', 'main'], work);
}

/** Runs `fn(i)` for i in 0…count−1, at most `limit` at once. */
async function pool(count, limit, fn) {
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  return results;
}

/** `sc reconcile --once` on host n under /usr/bin/time: exit, wall ms, CPU ms, peak RSS MiB, the last lines of output. */
async function reconcileOnce(n, sc, nodeArgs = []) {
  if (state.aborted) throw new Error('interrupted');
  const host = state.hosts[n - 1];
  const stats = path.join(state.tmp, `time-${n}-${randomBytes(3).toString('hex')}`);
  const started = performance.now();
  const result = await run(
    '/usr/bin/time',
    [
      '-o',
      stats,
      '-f',
      '%U %S %M',
      process.execPath,
      ...nodeArgs,
      sc,
      '--source',
      state.source,
      '--host',
      hostName(n),
      '--root',
      host.root,
      '--netns',
      host.ns,
      '-o',
      'json',
      ...(nodeArgs.length > 0 ? ['--log-level', 'debug'] : []),
      'reconcile',
      '--once',
    ],
    { env: { ...GIT_ENV, NO_COLOR: '1' }, timeout: 600_000 },
  );
  const ms = performance.now() - started;
  const [user, system, rssKiB] = (await readFile(stats, 'utf8').catch(() => '')).trim().split('\n').pop().split(' ').map(Number);
  await rm(stats, { force: true });
  const rssMiB = (rssKiB || 0) / 1024;
  host.peakMiB = Math.max(host.peakMiB, rssMiB);
  host.passes++;
  if (nodeArgs.length > 0 && process.env.SCBENCH_CPU_PROF) {
    await writeFile(path.join(process.env.SCBENCH_CPU_PROF, `h${n}.stderr`), result.stderr);
    await writeFile(path.join(process.env.SCBENCH_CPU_PROF, `h${n}.json`), result.stdout);
  }
  let why = '';
  try {
    const status = JSON.parse(result.stdout);
    why = status.failures?.length ? status.failures.map((f) => `${f.ref}: ${f.error}`).join('; ') : status.message;
  } catch {
    why = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-3).join(' | ');
  }
  return { n, exitCode: result.exitCode, ms, cpuMs: ((user || 0) + (system || 0)) * 1000, rssMiB, why };
}

/** One round: every host's pass, `concurrency` at once; the passes and the round's wall time. */
async function round(sc, concurrency, nodeArgs = []) {
  const started = performance.now();
  const passes = await pool(state.hosts.length, concurrency, (i) => reconcileOnce(i + 1, sc, nodeArgs));
  return { passes, ms: performance.now() - started };
}

/** Tunnels whose both ends' openvpn logs say the peer connected (device → count of connected ends). */
async function tunnelsUp() {
  const ends = new Map();
  for (const host of state.hosts) {
    const dir = path.join(host.root, 'run/srvctl/openvpn');
    for (const f of (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.log'))) {
      if (parseTunnelLog(await readFile(path.join(dir, f), 'utf8').catch(() => '')).connected) {
        const device = f.slice(0, -'.log'.length);
        ends.set(device, (ends.get(device) ?? 0) + 1);
      }
    }
  }
  return [...ends.values()].filter((c) => c === 2).length;
}

/** Pids of the tunnels sc started under a host's root (pid files whose process is still openvpn). */
async function openvpnPids(root) {
  const dir = path.join(root, 'run/srvctl/openvpn');
  const pids = [];
  for (const f of (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.pid'))) {
    const pid = Number((await readFile(path.join(dir, f), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).startsWith('openvpn')) pids.push(pid);
  }
  return pids;
}

/** Pids of every process working for this run: inside one of its namespaces, or on a path under its temp dir (haproxy, nspawn, …). */
async function processesOfRun(s) {
  const found = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const ours = argv.some(
      (arg, i) =>
        (s.tmp !== undefined && arg.includes(`${s.tmp}/`)) ||
        arg.startsWith(`--net=/run/netns/${s.prefix}-`) ||
        ((arg === '-n' || (arg === 'exec' && argv[i - 1] === 'netns')) && argv[i + 1]?.startsWith(`${s.prefix}-`)),
    );
    if (ours) found.push(Number(entry));
  }
  return found;
}

/**
 * Tunnels (SIGTERM, up to 10 s), containers (cgroup.kill), then whatever else still works for this
 * run (haproxy, a half-done sc child: SIGKILL), then the namespaces and the temp dir (sandbox.md §9).
 * Every step runs; only this run's processes are signalled.
 */
export async function cleanupClusterBench() {
  const s = state;
  if (!s) return undefined;
  s.aborted = true;
  s.cleaning ??= (async () => {
    progress(`cleaning up ${s.prefix} (${s.tmp ?? 'no temp dir yet'}) …`);
    killChildren();
    const signalled = [];
    for (const host of s.hosts) {
      for (const pid of await openvpnPids(host.root)) {
        try {
          process.kill(pid, 'SIGTERM');
          signalled.push(pid);
        } catch {
          // already gone
        }
      }
    }
    const deadline = Date.now() + 10_000;
    while (signalled.some((pid) => existsSync(`/proc/${pid}`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const layout = detectCgroupLayout();
    for (const host of s.hosts) await killAndRemoveCgroup(layout, machinesCgroupBase(host.root)).catch((e) => progress(`cleanup: ${e.message}`));
    for (let attempt = 0; attempt < 20; attempt++) {
      const left = await processesOfRun(s);
      if (left.length === 0) break;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    for (const ns of s.namespaces.splice(0).reverse()) await run('ip', ['netns', 'del', ns]);
    if (s.tmp) await rm(s.tmp, { recursive: true, force: true });
    progress(`cleaned up ${s.prefix}: ${signalled.length} tunnels stopped, namespaces and temp dir removed`);
    if (state === s) state = undefined;
  })();
  return s.cleaning;
}

async function addNamespace(ns) {
  if (state.aborted) throw new Error('interrupted');
  state.namespaces.push(ns); // before it exists: an interrupt now still deletes it
  await must('ip', ['netns', 'add', ns]);
  await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** The switch namespace and N hosts (sandbox.md §2); every link is made inside the bench's namespaces. */
async function buildFarm(count) {
  const P = state.prefix;
  const ul = `${P}-ul`;
  await addNamespace(ul);
  await must('ip', ['-n', ul, 'link', 'add', 'ul0', 'type', 'bridge']);
  await must('ip', ['-n', ul, 'link', 'set', 'ul0', 'up']);
  for (let n = 1; n <= count; n++) {
    const ns = `${P}-h${n}`;
    const root = path.join(state.tmp, `root-h${n}`);
    await mkdir(root, { recursive: true });
    state.hosts.push({ n, ns, root, peakMiB: 0, passes: 0 });
    await addNamespace(ns);
    await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await must('ip', ['-n', ul, 'link', 'add', `${P}-u${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must('ip', ['-n', ul, 'link', 'set', `${P}-u${n}`, 'master', 'ul0', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${underlayIp(n)}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }
}

const summary = (r) => {
  const failed = r.passes.filter((p) => p.exitCode !== 0);
  const slowest = Math.max(...r.passes.map((p) => p.ms));
  return `${secs(r.ms)}; ${r.passes.length - failed.length}/${r.passes.length} hosts exit 0; slowest pass ${secs(slowest)}${
    failed.length ? `; failed: ${failed.map((p) => `h${p.n}`).join(' ')}` : ''
  }`;
};

/**
 * The whole cluster bench; returns the lines to print. `sc` is the dist/cli/main.js to run.
 */
export async function runClusterBench({ count: asked = MAX_CLUSTER_HOSTS, concurrency = 6, sc = path.join(REPO, 'dist/cli/main.js') } = {}) {
  if (process.getuid?.() !== 0) throw new Error('the cluster benchmark needs root (network namespaces, cgroups)');
  if (!Number.isInteger(asked) || asked < 2) throw new Error(`cluster: 2 to ${MAX_CLUSTER_HOSTS} hosts, not ${asked}`);
  const count = Math.min(asked, MAX_CLUSTER_HOSTS);
  const notes = [];
  if (asked > MAX_CLUSTER_HOSTS) {
    notes.push(
      `${asked} hosts asked for: the address plan (SPEC §2) gives each host of a cluster its own hostnet 1–${MAX_CLUSTER_HOSTS}, ` +
        `so a cluster has at most ${MAX_CLUSTER_HOSTS} hosts (${(MAX_CLUSTER_HOSTS * (MAX_CLUSTER_HOSTS - 1)) / 2} tunnels); running ${MAX_CLUSTER_HOSTS}`,
    );
  }
  const tag = randomBytes(2).toString('hex');
  state = { prefix: `sccl${tag}`, tmp: undefined, hosts: [], namespaces: [], cleaning: undefined };
  const lines = [];
  const say = (text) => lines.push(text);
  try {
    state.tmp = await mkdtemp(path.join(tmpdir(), `sccl${tag}-`));
    const bare = path.join(state.tmp, 'farm.git');
    const work = path.join(state.tmp, 'work');
    await git(['init', '-q', '--bare', '-b', 'main', bare]);
    await git(['clone', '-q', bare, work]);
    await git(['symbolic-ref', 'HEAD', 'refs/heads/main'], work);
    await commitDatastore(work, datastoreDocs(count), `${count} hosts, two busybox containers each`);
    state.source = `file://${bare}#main`;
    await buildFarm(count);
    const tunnels = (count * (count - 1)) / 2;
    await waitForQuietKernel(`${state.prefix}-h1`);
    const load0 = loadLine();
    progress(`${count} hosts, ${tunnels} tunnels, concurrency ${concurrency}; ${load0}`);

    // From nothing to converged: rounds until every host exits 0 in one round.
    const started = performance.now();
    const rounds = [];
    let kernelWaitMs = 0;
    for (;;) {
      if (rounds.length === MAX_ROUNDS) throw new Error(`not converged after ${MAX_ROUNDS} rounds`);
      // The kernel may still be freeing links of deleted namespaces (anyone's): that stalls every `ip`.
      const quiet = performance.now();
      await waitForQuietKernel(`${state.prefix}-h1`);
      kernelWaitMs += performance.now() - quiet;
      const r = await round(sc, concurrency);
      rounds.push(r);
      progress(`round ${rounds.length}: ${summary(r)}`);
      for (const p of r.passes.filter((p) => p.exitCode !== 0)) progress(`  h${p.n}: ${p.why.slice(0, 300)}`);
      if (r.passes.every((p) => p.exitCode === 0)) break;
    }
    const convergedMs = performance.now() - started;
    // Then until every tunnel is up (both ends' logs say the peer connected).
    let up = await tunnelsUp();
    const upDeadline = Date.now() + 180_000;
    while (up < tunnels && Date.now() < upDeadline) {
      await new Promise((r) => setTimeout(r, 250));
      up = await tunnelsUp();
    }
    const allUpMs = performance.now() - started;
    const publishCommits = Number((await must('git', ['--git-dir', bare, 'rev-list', '--count', 'main'], { env: GIT_ENV })).stdout) - 1;
    const load1 = loadLine();

    // One commit: a new container on host 9 (or the last host), applied by one round on every host.
    const target = Math.min(9, count);
    await git(['pull', '-q', '--rebase', 'origin', 'main'], work);
    const extra = { [`c${target}c.farm.test`]: { user: 'ua', host: hostName(target), type: 'busybox', ip: containerIp(target, 2) } };
    await commitDatastore(work, datastoreDocs(count, extra), `a third container on ${hostName(target)}`);
    // SCBENCH_CPU_PROF=DIR: the commit round's passes write V8 CPU profiles and their debug logs (every command run, with its duration) there.
    const profile = process.env.SCBENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCBENCH_CPU_PROF}`] : [];
    await waitForQuietKernel(`${state.prefix}-h1`);
    const rollout = await round(sc, concurrency, profile);
    progress(`commit round: ${summary(rollout)}`);
    for (const p of rollout.passes.filter((p) => p.exitCode !== 0)) progress(`  h${p.n}: ${p.why.slice(0, 300)}`);
    const rolloutOk = rollout.passes.every((p) => p.exitCode === 0);
    const targetPass = rollout.passes[target - 1];

    // Pings from a host's namespace to a container on another host: each host to the next one's
    // first container, and to host 9's new container.
    const pairs = [];
    for (let n = 1; n <= count; n++) pairs.push([n, (n % count) + 1, 0]);
    for (let n = 1; n <= count; n += Math.max(1, Math.floor(count / 4))) if (n !== target) pairs.push([n, target, 2]);
    const pings = await pool(pairs.length, 4, async (i) => {
      const [from, to, k] = pairs[i];
      for (let attempt = 0; attempt < 10; attempt++) {
        const r = await run('ip', ['netns', 'exec', `${state.prefix}-h${from}`, 'ping', '-n', '-q', '-c', '1', '-W', '1', containerIp(to, k)]);
        if (r.exitCode === 0) return true;
      }
      return false;
    });
    const pingFailures = pairs.filter((_, i) => !pings[i]).map(([f, t, k]) => `h${f}→${containerIp(t, k)}`);

    say('');
    for (const note of notes) say(`note: ${note}`);
    say(`Cluster: ${count} hosts of one cluster, ${tunnels} tunnels, ${2 * count} busybox containers, one bare git repository as --source`);
    say(`(sc reconcile --once per host per round, ${concurrency} hosts at once; at the start: ${load0})`);
    say(
      table(
        ['round', 'wall', 'hosts exit 0', 'slowest pass', 'median pass', 'CPU (sum)'],
        [...rounds.map((r, i) => [`${i + 1}`, r]), ['commit', rollout]].map(([name, r]) => {
          const ms = r.passes.map((p) => p.ms).sort((a, b) => a - b);
          return [
            name,
            secs(r.ms),
            `${r.passes.filter((p) => p.exitCode === 0).length}/${r.passes.length}`,
            secs(ms[ms.length - 1]),
            secs(ms[Math.floor(ms.length / 2)]),
            secs(r.passes.reduce((a, p) => a + p.cpuMs, 0)),
          ];
        }),
      ),
    );
    say('');
    const facts = [
      ['rounds until every host exits 0', `${rounds.length}`],
      [
        'time until every host exits 0',
        `${secs(convergedMs)}${kernelWaitMs > 500 ? ` (of which ${secs(kernelWaitMs)} waiting for a quiet kernel between rounds)` : ''}`,
      ],
      [`time until all ${tunnels} tunnels are up`, `${secs(allUpMs)} (${up}/${tunnels} up)`],
      ['commits sc pushed (PKI)', `${publishCommits}`],
      [
        `one commit (a container on ${hostName(target)}) applied on all ${count}`,
        `${secs(rollout.ms)}${rolloutOk ? '' : ' (NOT every host exit 0)'}`,
      ],
      [`  of which ${hostName(target)}'s pass`, secs(targetPass.ms)],
      [
        'pings host → container on another host',
        `${pairs.length - pingFailures.length}/${pairs.length} answered${pingFailures.length ? `; no answer: ${pingFailures.join(', ')}` : ''}`,
      ],
      ['load after convergence', load1],
    ];
    const width = Math.max(...facts.map(([k]) => k.length));
    for (const [k, v] of facts) say(`${k.padEnd(width)}  ${v}`);
    say('');
    say('Peak memory per host (max over its passes, /usr/bin/time)');
    say(
      table(
        ['host', 'passes', 'peak RSS'],
        state.hosts.map((h) => [hostName(h.n), `${h.passes}`, `${h.peakMiB.toFixed(0)} MiB`]),
      ),
    );
    say(`at the end: ${loadLine()} (1 min: ${loadavg()[0].toFixed(1)})`);
    if (up < tunnels || !rolloutOk || pingFailures.length > 0) throw new Error('the cluster bench did not end healthy (see above)');
    return lines;
  } finally {
    await cleanupClusterBench();
  }
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    // `on`, not `once`: execa's signal-exit re-raises a signal no listener is left for.
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = true;
      progress(`${signal}: cleaning up`);
      killChildren();
      void cleanupClusterBench().finally(() => process.exit(130));
    });
  }
  runClusterBench({ count: Number(process.argv[2] ?? MAX_CLUSTER_HOSTS), concurrency: Number(process.argv[3] ?? 6) })
    .then((lines) => process.stdout.write(`${lines.join('\n')}\n`))
    .catch((error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exitCode = 1;
    });
}
