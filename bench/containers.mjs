// `node bench/containers.mjs [COUNT]` (or `node bench/run.mjs containers`): time to start COUNT busybox
// containers from a converged image — `sc apply` (copy rootfs, write config, start, address, port
// map) against a plain shell loop doing the same copies and nspawn starts (sandbox.md §4a). Both
// count until every container answers a ping from the host namespace. Everything lives in a
// throwaway namespace, --root and cgroups, removed at the end (also on failure or Ctrl-C). `node bench/run.mjs containers` runs 20 and 100.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machinesCgroupBase } from '../dist/drivers/cgroups.js';
import { loadLine, measure, must, run, waitForQuietKernel } from './lib.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HOST = 'bench1.example.net';
const CGROUP_TREES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];
const PLAIN_BRIDGE = 'scb-plain';

const progress = (msg) => process.stderr.write(`[bench containers] ${msg}\n`);
const scIp = (i) => `10.17.1.${19 + i}`;
const plainIp = (i) => `10.17.2.${19 + i}`;

/** What each run made, for its cleanup (also on failure or Ctrl-C). */
const runs = new Set();

async function writeDatastore(dir, indices) {
  await mkdir(dir, { recursive: true });
  const users = { res1: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 32000 }, ua: { reseller: 'res1', user_id: 1, uid: 32001 } };
  const containers = Object.fromEntries(
    indices.map((i) => [`c${String(i).padStart(2, '0')}.bench`, { user: 'ua', host: HOST, type: 'busybox', ip: scIp(i) }]),
  );
  const docs = {
    clusters: { bench: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } },
    users,
    containers,
    // The shell loop runs no proxy: neither does sc here.
    settings: { runtime: 'direct', images: { busybox: { builder: 'busybox' } }, proxy: { enabled: false } },
  };
  for (const [name, doc] of Object.entries(docs)) await writeFile(path.join(dir, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
}

/** A bash loop that pings each address from the host namespace until it answers. */
const waitForPings = (ips) => `for ip in ${ips.join(' ')}; do until ping -n -q -c1 -W1 "$ip" >/dev/null 2>&1; do :; done; done`;

/** The plain shell loop: copy the image, give each start its own cgroup, start detached (sandbox.md §4a). */
function plainLoopScript(image, dir, state, indices) {
  const lines = [
    'set -e',
    `IMAGE=${JSON.stringify(image)}; DIR=${JSON.stringify(dir)}; NS=${state.ns}; BR=${PLAIN_BRIDGE}; CG=${state.plainCgroup}`,
    `for i in $(seq 1 ${indices.length}); do`,
    '  N=p$(printf %02d $i).bench; A=10.17.2.$((19 + i))',
    '  mkdir -p "$DIR/$N"; cp -a --reflink=auto "$IMAGE" "$DIR/$N/rootfs"',
    '  for h in unified systemd; do mkdir -p /sys/fs/cgroup/$h/$CG/$N; done',
    `  setsid sh -c 'for h in unified systemd; do echo $$ > /sys/fs/cgroup/$h/'"$CG/$N"'/cgroup.procs; done; exec "$@"' start \\`,
    '    nsenter --net=/run/netns/$NS systemd-nspawn --register=no --keep-unit -q -D "$DIR/$N/rootfs" -M $N \\',
    '      --network-bridge=$BR -b --kill-signal=SIGUSR2 --console=read-only --private-users=pick --private-users-ownership=auto \\',
    '      --setenv=ADDR=$A/24 --setenv=GW=10.17.2.1 </dev/null >"$DIR/$N.log" 2>&1 &',
    'done',
    `ip netns exec $NS sh -c '${waitForPings(indices.map(plainIp))}'`,
  ];
  return `${lines.join('\n')}\n`;
}

async function timedMs(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function pidsUnder(dir) {
  const pids = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => []))
    if (e.isDirectory()) pids.push(...(await pidsUnder(path.join(dir, e.name))));
  return pids;
}

async function removeTree(dir) {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}

/** Kills every process of one cgroup parent (cgroup.kill), waits until none is left, removes the cgroups. */
async function killCgroup(base) {
  const unified = path.join(CGROUP_TREES[0], base);
  await writeFile(path.join(unified, 'cgroup.kill'), '1').catch(() => undefined);
  const deadline = Date.now() + 30_000;
  while ((await pidsUnder(unified)).length > 0) {
    if (Date.now() > deadline) throw new Error(`processes survived cgroup.kill in ${unified}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const tree of CGROUP_TREES) await removeTree(path.join(tree, base));
}

function cleanupRun(state) {
  state.cleaning ??= (async () => {
    if (state.tmp) {
      // A reverse proxy sc started (none with this datastore's settings; a datastore edited by hand may differ).
      const proxyPid = Number((await readFile(path.join(state.tmp, 'root/run/srvctl/haproxy/haproxy.pid'), 'utf8').catch(() => '')).trim());
      if (proxyPid > 1) {
        try {
          process.kill(proxyPid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      await killCgroup(machinesCgroupBase(path.join(state.tmp, 'root'))).catch((e) => progress(`cleanup: ${e.message}`));
      await killCgroup(state.plainCgroup).catch((e) => progress(`cleanup: ${e.message}`));
    }
    if (state.nsCreated) await run('ip', ['netns', 'del', state.ns]);
    if (state.tmp) await rm(state.tmp, { recursive: true, force: true });
    runs.delete(state);
  })();
  return state.cleaning;
}

/** Stops and removes what every run made. */
export async function cleanupContainersBench() {
  for (const state of [...runs]) await cleanupRun(state);
}

/**
 * COUNT containers started by `node SC apply` against the plain loop: `{ count, scMs, plainMs }`.
 * Each run has its own namespace, --root and cgroups, removed before it returns.
 */
export async function runContainersBench({ count = 20, sc: scMain = path.join(REPO, 'dist/cli/main.js') } = {}) {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (network namespaces, cgroups)');
  if (count < 1 || count > 200) throw new Error(`containers: 1 to 200, not ${count}`);
  const tag = randomBytes(2).toString('hex');
  /** The plain loop's own cgroup parent (sc's is derived from its --root). */
  const state = { ns: `scbench-${tag}-c`, plainCgroup: `scbench-${tag}`, tmp: undefined, nsCreated: false, cleaning: undefined };
  runs.add(state);
  const indices = Array.from({ length: count }, (_, k) => k + 1);
  try {
    state.tmp = await mkdtemp(path.join(tmpdir(), `scbench-${tag}-`));
    const root = path.join(state.tmp, 'root');
    const datastore = path.join(state.tmp, 'ds');
    await writeDatastore(datastore, indices);
    const sc = (...args) => [scMain, '--datastore', datastore, '--host', HOST, '--root', root, '--netns', state.ns, ...args];
    progress(loadLine());

    await must('ip', ['netns', 'add', state.ns]);
    state.nsCreated = true;
    await must('ip', ['-n', state.ns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['netns', 'exec', state.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);

    progress('building the busybox image (not timed) …');
    await must(process.execPath, sc('apply', '--target', 'image/busybox'));
    const image = path.join(root, 'var/srvctl3/rootfs/busybox');

    await waitForQuietKernel(state.ns);
    progress(`sc apply: ${count} containers from the converged image, until all answer ping …`);
    let scCpuMs = 0;
    const scMs = await timedMs(async () => {
      scCpuMs = (await measure('sc apply', process.execPath, sc('apply'))).cpuMs;
      await must('ip', ['netns', 'exec', state.ns, 'sh', '-c', waitForPings(indices.map(scIp))]);
    });
    await must(process.execPath, sc('diff'));
    progress(`  ${scMs.toFixed(0)} ms; stopping them (cgroup.kill) …`);
    await killCgroup(machinesCgroupBase(root));

    // The plain loop gets its bridge for free (sc's apply above created its own in the timing).
    await must('ip', ['-n', state.ns, 'link', 'add', PLAIN_BRIDGE, 'type', 'bridge']);
    await must('ip', ['-n', state.ns, 'addr', 'add', '10.17.2.1/24', 'dev', PLAIN_BRIDGE]);
    await must('ip', ['-n', state.ns, 'link', 'set', PLAIN_BRIDGE, 'up']);
    const script = path.join(state.tmp, 'plain-loop.sh');
    await writeFile(script, plainLoopScript(image, path.join(state.tmp, 'plain'), state, indices));
    await waitForQuietKernel(state.ns);
    progress(`plain shell loop: the same ${count} copies and nspawn starts, until all answer ping …`);
    const plainMs = await timedMs(() => must('bash', [script]));
    progress(`  ${plainMs.toFixed(0)} ms`);
    return { count, scMs, scCpuMs, plainMs, load: loadavg()[0].toFixed(1) };
  } finally {
    await cleanupRun(state);
  }
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      progress(`${signal}: cleaning up`);
      void cleanupContainersBench().finally(() => process.exit(130));
    });
  }
  runContainersBench({ count: Number(process.argv[2] ?? 20) })
    .then((r) =>
      process.stdout.write(
        `${r.count} containers: sc apply ${(r.scMs / 1000).toFixed(2)} s, plain loop ${(r.plainMs / 1000).toFixed(2)} s, ${(r.scMs / r.plainMs).toFixed(2)}×; ${r.load}\n`,
      ),
    )
    .catch((error) => {
      process.stderr.write(`${error.stack ?? error}\n`);
      process.exitCode = 1;
    })
    .finally(() => cleanupContainersBench());
}
