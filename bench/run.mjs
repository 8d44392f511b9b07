// `npm run bench [-- WHAT… [--sc PATH]]`: sc against the floor of the same run, in throwaway
// network namespaces (issue 17). WHAT: startup, containers, bridges (default: all three).
//   startup     `sc --version`, `sc --help`, `sc validate` of the example against `node -e 0`
//   containers  20 and 100 busybox containers: `sc apply` against a plain shell loop
//   bridges     the curve at 250 / 1,000 / 2,000 / 4,000 bridges: `sc apply` from empty against one
//               `ip -batch` of the same creates, converged `sc diff` against `ip -json` link + addr
//               reads, converged `sc apply` against `sc diff`, and sc's peak memory
//   cluster [N] a farm of N hosts (default and at most 15: one hostnet each) of one cluster in
//               namespaces, one bare git repository as the source, the CA flow from nothing: rounds
//               of `sc reconcile --once` until converged and every tunnel is up, the rollout of one
//               commit, peak memory per host, pings (bench/cluster.mjs). Only when asked for by name;
//               --concurrency C: hosts whose pass runs at once (default 6).
// --sc PATH runs another build of sc (e.g. an older dist/cli/main.js) for a before/after;
// --sizes 250,1000 and --containers 20 run fewer sizes.
// Every timed step first waits for the kernel to finish freeing links of deleted namespaces, and the
// machine's load average is printed with the numbers.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeBatchScript } from '../dist/drivers/ip-batch.js';
import { addBridgeCommand, bridgeAlias, convergeBridgeCommands } from '../dist/resources/bridge-commands.js';
import { cleanupContainersBench, runContainersBench } from './containers.mjs';
import { cleanupProxyBench, runProxyBench } from './proxy.mjs';
import { cleanupClusterBench, MAX_CLUSTER_HOSTS, runClusterBench } from './cluster.mjs';
import { BENCH_HOST, benchBridges, writeBenchDatastore } from './generate-datastore.mjs';
import {
  addNamespace,
  deleteNamespaces,
  killChildren,
  loadLine,
  measure,
  medianOf,
  must,
  namespaces,
  progress,
  ratio,
  secs,
  table,
  waitForQuietKernel,
} from './lib.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPEATS = 5;
const argv = process.argv.slice(2);
/** `--NAME VALUE` options: --sc PATH, --sizes 250,1000 and --containers 20,100 (shorter runs). */
const option = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? undefined : argv[i + 1];
};
const numbers = (text) => text.split(',').map((n) => Number(n));
const SC = option('sc') === undefined ? path.join(REPO, 'dist/cli/main.js') : path.resolve(option('sc'));
const SIZES = numbers(option('sizes') ?? '250,1000,2000,4000');
const CONTAINER_COUNTS = numbers(option('containers') ?? '20,100');
const words = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && argv[i - 1].startsWith('--')));
/** `cluster N`: the number after `cluster` is its size. */
const clusterSize =
  words.includes('cluster') && /^\d+$/.test(words[words.indexOf('cluster') + 1] ?? '') ? Number(words[words.indexOf('cluster') + 1]) : undefined;
const what = words.filter((w, i) => !(i > 0 && words[i - 1] === 'cluster' && /^\d+$/.test(w)));
for (const w of what)
  if (!['startup', 'containers', 'proxy', 'bridges', 'cluster'].includes(w))
    throw new Error(`unknown bench "${w}" (startup, containers, proxy, bridges, cluster [N])`);
/** Everything but the cluster, which runs only when named (minutes of 15 hosts' passes). */
const wants = (w) => (what.length === 0 && w !== 'cluster') || what.includes(w);

const tag = randomBytes(2).toString('hex');
let tmp;
const out = [];
const say = (text) => {
  out.push(text);
  process.stdout.write(`${text}\n`);
};

async function cleanup() {
  killChildren();
  await cleanupContainersBench();
  await cleanupClusterBench();
  const had = namespaces.length;
  await deleteNamespaces();
  if (tmp) await rm(tmp, { recursive: true, force: true });
  if (had) progress('deleted the namespaces; the kernel frees their links in the background (a minute or two)');
}

// `on`, not `once`: execa's signal-exit re-raises a signal no other listener is left for (a `once`
// listener is removed as it runs), which killed the bench before its cleanup ran; a second signal
// while cleaning up is ignored.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

const node = process.execPath;
const fmtRun = (m) => `${secs(m.ms)} wall, ${secs(m.cpuMs)} CPU, ${m.rssMiB.toFixed(0)} MiB`;

async function startup() {
  progress(`start-up ×${REPEATS + 2} each …`);
  const times = REPEATS + 2;
  const floor = await medianOf(times, () => measure('node -e 0', node, ['-e', '0']));
  const example = path.join(REPO, 'examples/datastore');
  const rows = [
    ['sc --version', await medianOf(times, () => measure('sc --version', node, [SC, '--version']))],
    ['sc --help', await medianOf(times, () => measure('sc --help', node, [SC, '--help']))],
    ['sc validate (examples/datastore)', await medianOf(times, () => measure('sc validate', node, [SC, 'validate', '--datastore', example]))],
  ];
  say('');
  say(`Start-up (median of ${times}; ${loadLine()})`);
  say(
    table(
      ['', 'wall', 'CPU', 'peak RSS', 'wall − floor', 'CPU − floor'],
      [
        ['node -e 0 (floor)', secs(floor.ms), secs(floor.cpuMs), `${floor.rssMiB.toFixed(0)} MiB`, '', ''],
        ...rows.map(([name, m]) => [
          name,
          secs(m.ms),
          secs(m.cpuMs),
          `${m.rssMiB.toFixed(0)} MiB`,
          secs(m.ms - floor.ms),
          secs(m.cpuMs - floor.cpuMs),
        ]),
      ],
    ),
  );
}

async function containers() {
  const results = [];
  for (const count of CONTAINER_COUNTS) {
    progress(`containers: ${count} …`);
    results.push(await runContainersBench({ count, sc: SC }));
  }
  say('');
  say('Containers: start N busybox containers from a converged image, until every one answers ping');
  say('(sc CPU: sc and the programs it waited for, e.g. cp and nsenter; not the started containers, which both sides pay)');
  say(
    table(
      ['', 'sc apply', '(sc CPU)', 'shell loop', 'ratio', 'load 1 min'],
      results.map((r) => [`${r.count} containers`, secs(r.scMs), secs(r.scCpuMs), secs(r.plainMs), ratio(r.scMs, r.plainMs), r.load]),
    ),
  );
}

/** `sc … --target bridge`: the bench datastore's containers would otherwise make sc build images and start thousands of machines. */
const scArgs = (datastore, ns, ...command) => [
  SC,
  '--datastore',
  datastore,
  '--host',
  BENCH_HOST,
  '--root',
  path.join(tmp, 'root'),
  '--netns',
  ns,
  ...command,
  '--target',
  'bridge',
];

/** The creates sc makes, as one plain batch file (same lines, same order as sc's two batches): the floor for `sc apply`. */
async function batchFile(name, bridges) {
  const adds = bridges.map((b) => addBridgeCommand(b.name));
  const configure = bridges.flatMap((b) => convergeBridgeCommands(b.name, { addresses: [b.cidr], up: true, alias: bridgeAlias(b.user) }));
  const file = path.join(tmp, name);
  await writeFile(file, encodeBatchScript([...adds, ...configure]));
  return file;
}

async function bridges() {
  const rows = [];
  for (const size of SIZES) {
    const datastore = await writeBenchDatastore(path.join(tmp, `ds${size}`), size);
    const nsSc = `scbench-${tag}-s${size}`;
    const nsFloor = `scbench-${tag}-f${size}`;
    await addNamespace(nsSc);
    await addNamespace(nsFloor);
    const batch = await batchFile(`floor-${size}.batch`, benchBridges(size));
    const r = { size };

    progress(`${size} bridges: sc apply from empty (${nsSc}) …`);
    await waitForQuietKernel(nsSc);
    r.apply = await measure(`sc apply ${size}`, node, scArgs(datastore, nsSc, 'apply'));
    progress(`  ${fmtRun(r.apply)}; converged sc diff ×${REPEATS} …`);
    await waitForQuietKernel(nsSc);
    r.diff = await medianOf(REPEATS, () => measure(`sc diff ${size}`, node, scArgs(datastore, nsSc, 'diff')));
    progress(`  ${fmtRun(r.diff)}; converged sc apply ×${REPEATS} …`);
    r.noop = await medianOf(REPEATS, () => measure(`converged sc apply ${size}`, node, scArgs(datastore, nsSc, 'apply')));
    progress(`  ${fmtRun(r.noop)}; ip -json link + addr reads ×${REPEATS} …`);
    r.read = await medianOf(REPEATS, async () => {
      const links = await measure('ip link show', 'ip', ['-n', nsSc, '-json', '-details', 'link', 'show']);
      const addrs = await measure('ip addr show', 'ip', ['-n', nsSc, '-json', 'addr', 'show']);
      return { ms: links.ms + addrs.ms, cpuMs: links.cpuMs + addrs.cpuMs, rssMiB: Math.max(links.rssMiB, addrs.rssMiB) };
    });

    progress(`  ${fmtRun(r.read)}; one ip -batch of the same creates (${nsFloor}) …`);
    await waitForQuietKernel(nsFloor);
    r.batch = await measure(`ip -batch ${size}`, 'ip', ['-n', nsFloor, '-batch', batch]);
    progress(`  ${fmtRun(r.batch)}`);
    // sc's result and the plain batch's are the same bridges: the floor did the same work.
    const count = async (ns) => JSON.parse((await must('ip', ['-n', ns, '-json', 'link', 'show', 'type', 'bridge'])).stdout).length;
    const [made, floorMade] = [await count(nsSc), await count(nsFloor)];
    if (made !== size || floorMade !== size) throw new Error(`${size}: sc made ${made} bridges, the batch ${floorMade}`);
    r.load = loadavg()[0].toFixed(1);
    rows.push(r);
  }

  const us = (ms, n) => `${((ms * 1000) / n).toFixed(0)} µs`;
  say('');
  say('Bridges (sc … --target bridge; median of 5 for diff, converged apply and the reads; one run for apply from empty)');
  say('CPU: user + system of the process and the children it waited for (ip), which a busy machine inflates far less than wall time');
  say(
    table(
      [
        'bridges',
        'sc apply',
        '(CPU)',
        'ip -batch',
        '(CPU)',
        'ratio',
        'CPU ratio',
        'per bridge',
        'sc diff',
        '(CPU)',
        'ip reads',
        '(CPU)',
        'ratio',
        'CPU ratio',
        'diff − reads',
        'per bridge',
        'noop apply',
        '− diff',
        'peak RSS',
        'load 1 min',
      ],
      rows.map((r) => [
        r.size.toLocaleString('en'),
        secs(r.apply.ms),
        secs(r.apply.cpuMs),
        secs(r.batch.ms),
        secs(r.batch.cpuMs),
        ratio(r.apply.ms, r.batch.ms),
        ratio(r.apply.cpuMs, r.batch.cpuMs),
        us(r.apply.ms, r.size),
        secs(r.diff.ms),
        secs(r.diff.cpuMs),
        secs(r.read.ms),
        secs(r.read.cpuMs),
        ratio(r.diff.ms, r.read.ms),
        ratio(r.diff.cpuMs, r.read.cpuMs),
        secs(r.diff.ms - r.read.ms),
        us(r.diff.ms, r.size),
        secs(r.noop.ms),
        signed(r.noop.ms - r.diff.ms),
        `${Math.max(r.apply.rssMiB, r.diff.rssMiB, r.noop.rssMiB).toFixed(0)} MiB`,
        r.load,
      ]),
    ),
  );
  const at = (n) => rows.find((r) => r.size === n);
  const goals = [];
  const [k1, k4] = [at(1000), at(4000)];
  if (k1) goals.push([`diff at 1,000 ≤ reads + 0.15 s`, r2(k1.diff.ms - k1.read.ms) <= 150, `${secs(k1.diff.ms - k1.read.ms)} over the reads`]);
  if (k4) goals.push([`diff at 4,000 ≤ 1.5× reads`, k4.diff.ms <= 1.5 * k4.read.ms, ratio(k4.diff.ms, k4.read.ms)]);
  for (const r of [k1, k4].filter(Boolean))
    goals.push([`apply at ${r.size.toLocaleString('en')} ≤ 1.25× ip -batch`, r.apply.ms <= 1.25 * r.batch.ms, ratio(r.apply.ms, r.batch.ms)]);
  for (const r of rows)
    goals.push([`converged apply at ${r.size.toLocaleString('en')} ≤ diff + 0.1 s`, r.noop.ms - r.diff.ms <= 100, signed(r.noop.ms - r.diff.ms)]);
  if (k4)
    goals.push([
      `peak memory at 4,000 ≤ 150 MiB`,
      Math.max(k4.apply.rssMiB, k4.diff.rssMiB, k4.noop.rssMiB) <= 150,
      `${Math.max(k4.apply.rssMiB, k4.diff.rssMiB, k4.noop.rssMiB).toFixed(0)} MiB`,
    ]);
  say('');
  say('Goals (issue 17)');
  say(
    table(
      ['', 'measured', ''],
      goals.map(([name, ok, value]) => [name, value, ok ? 'met' : 'NOT MET']),
    ),
  );
}

const r2 = (x) => Math.round(x);
const signed = (ms) => `${ms < 0 ? '−' : '+'}${secs(Math.abs(ms))}`;

try {
  if (process.getuid?.() !== 0 && (wants('containers') || wants('proxy') || wants('bridges') || wants('cluster')))
    throw new Error('the benchmark needs root (network namespaces, cgroups)');
  tmp = await mkdtemp(path.join(tmpdir(), `scbench-${tag}-`));
  say(`sc: ${SC}`);
  say(`at the start: ${loadLine()}`);
  if (wants('startup')) await startup();
  // Containers before bridges: the background freeing of thousands of links cannot skew them.
  if (wants('containers')) await containers();
  if (wants('proxy')) {
    try {
      await runProxyBench();
    } finally {
      await cleanupProxyBench();
    }
  }
  if (wants('bridges')) await bridges();
  if (wants('cluster')) {
    progress(`cluster of ${clusterSize ?? MAX_CLUSTER_HOSTS} hosts …`);
    const lines = await runClusterBench({ count: clusterSize ?? MAX_CLUSTER_HOSTS, concurrency: Number(option('concurrency') ?? 6), sc: SC });
    for (const line of lines) say(line);
  }
  say('');
  say(`at the end: ${loadLine()}`);
} catch (error) {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
