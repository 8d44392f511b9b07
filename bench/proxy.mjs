// `npm run bench` (or `node bench/run.mjs proxy`): the reverse proxy. In a throwaway namespace: render
// + `haproxy -c` + seamless reload of sc's config at 1,000 and 4,000 sites (through sc's own
// renderer and haproxy driver), and requests/s and p99 latency through HAProxy against the same
// requests straight to the backend (busybox httpd), with keep-alive and with a new connection per
// request (wrk), side by side in one run.
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
const BACKEND_PORT = 8081;
const state = { ns: undefined, root: undefined, pids: [] };

/** N sites; site 1 is served by the namespace's own busybox httpd (127.0.0.1:8081). */
function sites(n) {
  const list = [];
  for (let i = 1; i <= n; i++) {
    const ip = i === 1 ? '127.0.0.1' : `10.${16 + (i % 15)}.${1 + (Math.floor(i / 15) % 255)}.${20 + (i % 180)}`;
    list.push({ name: `site${i}.bench.example`, host: 'bench1', ip, http_port: BACKEND_PORT, aliases: [`alias${i}.bench.example`] });
  }
  return list;
}

async function wrk(url, extra) {
  const out = await execa('ip', ['netns', 'exec', state.ns, 'wrk', '-t2', '-c16', '-d5s', '--latency', ...extra, url], { reject: false });
  if (out.exitCode !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]);
  const p99text = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out.stdout);
  const p99 = p99text ? Number(p99text[1]) * { us: 0.001, ms: 1, s: 1000 }[p99text[2]] : NaN;
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out.stdout)?.[0] ?? '';
  return { rps, p99, errors };
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
  const httpd = execa('ip', ['netns', 'exec', state.ns, 'busybox', 'httpd', '-f', '-p', `127.0.0.1:${BACKEND_PORT}`, '-h', www], { reject: false });
  state.pids.push(httpd.pid);

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

  progress('throughput: wrk 5 s each, 2 threads, 16 connections …');
  const direct = `http://127.0.0.1:${BACKEND_PORT}/`;
  const proxied = 'http://127.0.0.1/';
  const host = ['-H', 'Host: site1.bench.example'];
  const close = ['-H', 'Connection: close'];
  r.keepDirect = await wrk(direct, host);
  r.keepProxy = await wrk(proxied, host);
  r.newDirect = await wrk(direct, [...host, ...close]);
  r.newProxy = await wrk(proxied, [...host, ...close]);
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
  lines.push('', `${''.padEnd(44)}${'req/s'.padStart(10)}${'p99'.padStart(10)}`);
  const t = (label, x) =>
    lines.push(`${label.padEnd(44)}${x.rps.toFixed(0).padStart(10)}${`${x.p99.toFixed(2)} ms`.padStart(10)}${x.errors ? `  (${x.errors})` : ''}`);
  t('keep-alive, straight to the backend', r.keepDirect);
  t('keep-alive, through HAProxy (4,000 sites)', r.keepProxy);
  t('new connection each, straight to the backend', r.newDirect);
  t('new connection each, through HAProxy', r.newProxy);
  lines.push(
    '',
    `through the proxy / straight: keep-alive ${(r.keepProxy.rps / r.keepDirect.rps).toFixed(2)}× req/s, ${(r.keepProxy.p99 / r.keepDirect.p99).toFixed(2)}× p99; new connections ${(r.newProxy.rps / r.newDirect.rps).toFixed(2)}× req/s, ${(r.newProxy.p99 / r.newDirect.p99).toFixed(2)}× p99`,
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
