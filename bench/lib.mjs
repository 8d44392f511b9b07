// Shared pieces of `npm run bench`: running a command timed (wall clock, CPU and peak memory from
// /usr/bin/time), medians, waiting for a quiet kernel, the machine's load.
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const progress = (msg) => process.stderr.write(`[bench] ${msg}\n`);
export const loadLine = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} (1/5/15 min; 2 vCPU, shared)`;

const children = new Set();

/** Runs a command without a shell; never throws on exit ≠ 0. */
export async function run(file, args, opts = {}) {
  const child = execa(file, args, { reject: false, stdin: opts.input === undefined ? 'ignore' : 'pipe', ...opts });
  children.add(child);
  try {
    return await child;
  } finally {
    children.delete(child);
  }
}

export function killChildren() {
  for (const child of children) child.kill('SIGKILL');
}

/** Runs a command or fails with its stderr. */
export async function must(file, args, opts = {}) {
  const result = await run(file, args, opts);
  if (result.exitCode !== 0) throw new Error(`${[file, ...args].join(' ')}: exit ${result.exitCode}\n${String(result.stderr).slice(0, 2000)}`);
  return result;
}

/**
 * One run of FILE ARGS under /usr/bin/time: `{ ms, cpuMs, rssMiB }` (wall clock as seen from here,
 * user+system CPU and peak resident memory of the process). Fails loudly on an unexpected exit.
 */
export async function measure(what, file, args, { expectExit = 0, ...opts } = {}) {
  const stats = path.join(tmpdir(), `scbench-time-${randomBytes(4).toString('hex')}`);
  const started = performance.now();
  const result = await run('/usr/bin/time', ['-o', stats, '-f', '%U %S %M', file, ...args], opts);
  const ms = performance.now() - started;
  const text = await readFile(stats, 'utf8').catch(() => '');
  await rm(stats, { force: true });
  if (result.exitCode !== expectExit) {
    throw new Error(`${what}: exit ${result.exitCode} (expected ${expectExit})\n${String(result.stderr).slice(0, 2000)}`);
  }
  const [user, system, rssKiB] = (text.trim().split('\n').pop() ?? '').split(' ').map(Number);
  return { ms, cpuMs: ((user ?? 0) + (system ?? 0)) * 1000, rssMiB: (rssKiB ?? 0) / 1024 };
}

/** Runs FN `times` times: the median of each figure (wall, CPU) and the highest peak memory. */
export async function medianOf(times, fn) {
  const samples = [];
  for (let i = 0; i < times; i++) samples.push(await fn());
  const mid = (key) => samples.map((s) => s[key]).sort((a, b) => a - b)[Math.floor(samples.length / 2)];
  return { ms: mid('ms'), cpuMs: mid('cpuMs'), rssMiB: Math.max(...samples.map((s) => s.rssMiB)) };
}

/** Wall-clock ms of FN. */
export async function timedMs(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/**
 * Waits until link operations are quick again. The links of deleted namespaces (this run's, earlier
 * runs', other tests') are freed in the background after `ip netns del` returns, holding the
 * kernel's RTNL lock: every `ip` would stall and skew what is timed next. The probe is a change
 * (`link set lo up` in the bench's own namespace, a no-op), which needs that lock: reads like
 * `ip link show lo` no longer take it (RCU since Linux 6.x) and stayed fast while every change
 * waited ~20 s behind the teardown of 1,000 bridges.
 */
export async function waitForQuietKernel(ns) {
  const deadline = Date.now() + 300_000;
  let quiet = 0;
  let announced = false;
  while (quiet < 3) {
    const started = performance.now();
    await must('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
    quiet = performance.now() - started < 150 ? quiet + 1 : 0;
    if (quiet === 0 && !announced) {
      progress('waiting for the kernel to finish freeing links of deleted namespaces …');
      announced = true;
    }
    if (Date.now() > deadline) {
      progress('link operations stayed slow for 5 minutes: measuring anyway (numbers below are suspect)');
      return;
    }
    if (quiet < 3) await new Promise((resolve) => setTimeout(resolve, quiet === 0 ? 1000 : 100));
  }
}

/** Network namespaces this run made, deleted at the end. */
export const namespaces = [];

export async function addNamespace(name) {
  await must('ip', ['netns', 'add', name]);
  namespaces.push(name);
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export async function deleteNamespaces() {
  for (const name of namespaces.splice(0)) await run('ip', ['netns', 'del', name]);
}

/** `1.23 s` / `123 ms`. */
export const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
export const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

/** A plain text table: first column left-aligned, the others right-aligned. */
export function table(header, rows) {
  const all = [header, ...rows].map((r) => r.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
