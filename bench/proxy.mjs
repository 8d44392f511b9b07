// `npm run bench` (or `node bench/run.mjs proxy`): the reverse proxy. In a throwaway namespace: render
// + `haproxy -c` + seamless reload of sc's config at 1,000 and 4,000 sites (through sc's own
// renderer and haproxy driver), and requests/s and p99 latency through HAProxy against the same
// requests straight to the backend, with keep-alive and with a new connection per request (wrk),
// side by side in one run. Two backends: a small Node HTTP server (keep-alive, listen backlog 511,
// like a site's real web server) and busybox httpd (sc's busybox image: one fork per connection, no
// keep-alive, listen backlog 9). For each run the namespace's TCP listen-queue overflows and SYN
// retransmits are counted: a SYN dropped at a full accept queue is retried after the kernel's 1 s
// initial RTO, which is what a p99 of about 1 s is.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createExec } from '../dist/drivers/exec.js';
import { createFilesDriver } from '../dist/drivers/files.js';
import { createHaproxyDriver, HAPROXY_MAP_DIR, haproxyRunFiles } from '../dist/drivers/haproxy.js';
import { haproxyConfigDigest, renderHaproxy } from '../dist/resources/haproxy-config.js';
import { routesFor } from '../dist/resources/proxy-routes.js';

const progress = (msg) => process.stderr.write(`[bench proxy] ${msg}\n`);
/** busybox httpd: sc's busybox image's web server. */
const BUSYBOX_PORT = 8081;
/** A Node HTTP server with keep-alive and a normal listen backlog. */
const NODE_PORT = 8082;
const NODE_BACKEND = `
import http from 'node:http';
const body = 'hello from the bench backend\\n';
http
  .createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  })
  .listen({ host: '127.0.0.1', port: ${NODE_PORT}, backlog: 511 });
`;
const state = { ns: undefined, root: undefined, pids: [] };

/** N sites; site 1 is the Node backend (127.0.0.1:8082), site 2 busybox httpd (127.0.0.1:8081). */
function sites(n) {
  const list = [];
  for (let i = 1; i <= n; i++) {
    const ip = i <= 2 ? '127.0.0.1' : `10.${16 + (i % 15)}.${1 + (Math.floor(i / 15) % 255)}.${20 + (i % 180)}`;
    const port = i === 1 ? NODE_PORT : BUSYBOX_PORT;
    list.push({ name: `site${i}.bench.example`, host: 'bench1', ip, http_port: port, aliases: [`alias${i}.bench.example`] });
  }
  return list;
}

/** The namespace's TcpExt counters (/proc/net/netstat is per network namespace). */
async function tcpExt() {
  const text = (await execa('ip', ['netns', 'exec', state.ns, 'cat', '/proc/net/netstat'])).stdout;
  const lines = text.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  const get = (name) => values[names.indexOf(name)] ?? 0;
  return { overflows: get('ListenOverflows'), synRetrans: get('TCPSynRetrans') };
}

async function wrk(url, extra) {
  const before = await tcpExt();
  const out = await execa('ip', ['netns', 'exec', state.ns, 'wrk', '-t2', '-c16', '-d5s', '--latency', ...extra, url], { reject: false });
  if (out.exitCode !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const after = await tcpExt();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]);
  const p99text = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out.stdout);
  const p99 = p99text ? Number(p99text[1]) * { us: 0.001, ms: 1, s: 1000 }[p99text[2]] : NaN;
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out.stdout)?.[0] ?? '';
  return { rps, p99, errors, overflows: after.overflows - before.overflows, synRetrans: after.synRetrans - before.synRetrans };
}

export async function runProxyBench() {
  const tag = randomBytes(2).toString('hex');
  state.ns = `scbench-${tag}-px`;
  state.root = await mkdtemp(path.join(tmpdir(), `scbench-${tag}-px-`));
  await execa('ip', ['netns', 'add', state.ns]);
  await execa('ip', ['-n', state.ns, 'link', 'set', 'lo', 'up']);
  const www = path.join(state.root, 'www');
  await mkdir(www, { recursive: true });
  await writeFile(path.join(www, 'index.html'), 'hello from the bench backend\n');
  const httpd = execa('ip', ['netns', 'exec', state.ns, 'busybox', 'httpd', '-f', '-p', `127.0.0.1:${BUSYBOX_PORT}`, '-h', www], { reject: false });
  state.pids.push(httpd.pid);
  await writeFile(path.join(state.root, 'backend.mjs'), NODE_BACKEND);
  const node = execa('ip', ['netns', 'exec', state.ns, process.execPath, path.join(state.root, 'backend.mjs')], { reject: false });
  state.pids.push(node.pid);

  const exec = createExec({ netns: state.ns });
  const files = createFilesDriver(state.root);
  const haproxy = createHaproxyDriver({ exec, files });
  const paths = { adminSocket: files.hostPath(haproxyRunFiles.adminSocket), resolve: (p) => files.hostPath(p), mapDir: HAPROXY_MAP_DIR };
  const r = {};
  for (const n of [1000, 4000]) {
    progress(`${n} sites: render, haproxy -c, install, start or reload …`);
    const t0 = performance.now();
    const rendered = renderHaproxy(routesFor(sites(n), 'bench1', []), paths);
    for (const m of rendered.maps) await files.write(m.path, m.text);
    const text = rendered.config;
    const t1 = performance.now();
    await haproxy.check(text);
    const t2 = performance.now();
    await haproxy.install(text);
    const outcome = await haproxy.startOrReload(haproxyConfigDigest(text));
    const t3 = performance.now();
    r[n] = { render: t1 - t0, check: t2 - t1, apply: t3 - t2, outcome, bytes: text.length };
  }

  progress('throughput: wrk 5 s each, 2 threads, 16 connections, 8 runs …');
  const close = ['-H', 'Connection: close'];
  r.backends = [];
  for (const [label, site, port] of [
    ['Node HTTP server (keep-alive, backlog 511)', 'site1.bench.example', NODE_PORT],
    ['busybox httpd (fork per connection, backlog 9)', 'site2.bench.example', BUSYBOX_PORT],
  ]) {
    const host = ['-H', `Host: ${site}`];
    const direct = `http://127.0.0.1:${port}/`;
    const proxied = 'http://127.0.0.1/';
    r.backends.push({
      label,
      keepDirect: await wrk(direct, host),
      keepProxy: await wrk(proxied, host),
      newDirect: await wrk(direct, [...host, ...close]),
      newProxy: await wrk(proxied, [...host, ...close]),
    });
  }
  report(r);
}

function report(r) {
  const ms = (v) => `${v.toFixed(0)} ms`;
  const lines = ['', "reverse proxy: sc's HAProxy config (every site + an alias), in a namespace", ''];
  lines.push(`${''.padEnd(44)}${'1,000 sites'.padStart(14)}${'4,000 sites'.padStart(14)}`);
  const row = (label, f) => lines.push(`${label.padEnd(44)}${f(r[1000]).padStart(14)}${f(r[4000]).padStart(14)}`);
  row('render (route model + config + maps, written)', (x) => ms(x.render));
  row('haproxy -c', (x) => ms(x.check));
  row('install + start (1,000) / seamless reload (4,000)', (x) => ms(x.apply));
  row('config size (without its maps)', (x) => `${(x.bytes / 1024).toFixed(0)} KiB`);
  const cell = (x) =>
    `${x.rps.toFixed(0).padStart(8)}${`${x.p99.toFixed(1)} ms`.padStart(11)}${String(x.overflows).padStart(6)}${String(x.synRetrans).padStart(6)}`;
  const head = `${'req/s'.padStart(8)}${'p99'.padStart(11)}${'ovfl'.padStart(6)}${'syn'.padStart(6)}`;
  const ratio = (p, d) => `${(p.rps / d.rps).toFixed(2)}× req/s, ${(p.p99 / d.p99).toFixed(1)}× p99`;
  for (const b of r.backends) {
    lines.push(
      '',
      `backend: ${b.label}; 4,000 sites loaded`,
      `${''.padEnd(24)}${'keep-alive'.padEnd(31)}  new connection each`,
      `${''.padEnd(24)}${head}  ${head}`,
    );
    lines.push(`${'straight to the backend'.padEnd(24)}${cell(b.keepDirect)}  ${cell(b.newDirect)}`);
    lines.push(`${'through HAProxy'.padEnd(24)}${cell(b.keepProxy)}  ${cell(b.newProxy)}`);
    lines.push(`${'proxy / straight'.padEnd(24)}${ratio(b.keepProxy, b.keepDirect).padEnd(31)}  ${ratio(b.newProxy, b.newDirect)}`);
    const errors = [b.keepDirect, b.keepProxy, b.newDirect, b.newProxy].map((x) => x.errors).filter(Boolean);
    if (errors.length > 0) lines.push(`errors: ${errors.join('; ')}`);
  }
  lines.push(
    '',
    'ovfl: TCP listen-queue overflows in the namespace during the run (a SYN dropped at a full accept queue);',
    "syn: SYN retransmits (each one waits the kernel's 1 s initial RTO: a p99 near 1 s is these).",
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function cleanupProxyBench() {
  if (state.root) {
    const pid = Number(await execa('cat', [path.join(state.root, 'run/srvctl/haproxy/haproxy.pid')], { reject: false }).then((o) => o.stdout));
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
  }
  for (const pid of state.pids) {
    try {
      if (pid) process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (state.ns) await execa('ip', ['netns', 'del', state.ns], { reject: false });
  if (state.root) await rm(state.root, { recursive: true, force: true });
}
