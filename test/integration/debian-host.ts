// A Debian 13 "host" for tests of the systemd runtime: a debootstrapped root file system with
// systemd, machined, nspawn, nft, a static busybox, HAProxy and Node, built once from the Debian mirror this
// machine's apt uses and cached between runs (CI runs on the same machine); booted per test with
// systemd as PID 1 in the test's network namespace, sc installed in it, commands run inside with
// nsenter. Nested containers need a privileged outer one: all capabilities, no seccomp filter,
// /proc/sys/net writable, /dev/net/tun, and a cgroup2-only hierarchy for systemd 257.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { REPO_ROOT, type Sandbox } from './sandbox.js';

export const DEBIAN_HOST_SUITE = 'trixie';
const PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'systemd-container',
  'iproute2',
  'nftables',
  'busybox-static',
  'nodejs',
  'iputils-ping',
  'procps',
  // The reverse proxy under the systemd runtime (srvctl-haproxy.service).
  'haproxy',
];
const CACHE_DIR = process.env['SC_TEST_CACHE'] ?? '/var/cache/srvctl-test';

/** The Debian mirror apt on this machine uses (deb822 `URIs:` or a `deb` line), else Debian's default. */
export async function configuredDebianMirror(): Promise<string> {
  const files = ['/etc/apt/sources.list'];
  for (const entry of await readdir('/etc/apt/sources.list.d').catch(() => [])) files.push(path.join('/etc/apt/sources.list.d', entry));
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const m = /^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+\/debian)\/?(?:\s|$)/.exec(line.trim());
      if (m?.[1]) return m[1];
    }
  }
  return 'http://deb.debian.org/debian';
}

/** The cached base tree (built on first use: debootstrap takes minutes). Never modified by tests. */
export async function debianHostBase(): Promise<string> {
  const mirror = await configuredDebianMirror();
  const key = createHash('sha256')
    .update(JSON.stringify([DEBIAN_HOST_SUITE, mirror, PACKAGES]))
    .digest('hex')
    .slice(0, 12);
  const base = path.join(CACHE_DIR, `debian-host-${DEBIAN_HOST_SUITE}-${key}`);
  if (existsSync(path.join(base, '.complete'))) return base;
  await mkdir(CACHE_DIR, { recursive: true });
  const build = `${base}.build-${process.pid}`;
  await rm(build, { recursive: true, force: true });
  try {
    await execa('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, DEBIAN_HOST_SUITE, build, mirror], { timeout: 30 * 60_000 });
    await rm(path.join(build, 'etc/hostname'), { force: true }); // the build host's (sandbox.md §11.11)
    await writeFile(path.join(build, 'etc/machine-id'), '');
    await writeFile(path.join(build, '.complete'), `${new Date().toISOString()} ${mirror}\n`);
    await rename(build, base).catch(async (error: NodeJS.ErrnoException) => {
      if (!existsSync(path.join(base, '.complete'))) throw error; // else a parallel run finished first
    });
  } finally {
    await rm(build, { recursive: true, force: true });
  }
  return base;
}

/** Copies sc (dist, schemas, production dependencies) into TREE/opt/srvctl; returns the CLI path inside. */
async function installSc(tree: string): Promise<string> {
  const dest = path.join(tree, 'opt/srvctl');
  await mkdir(path.join(dest, 'node_modules'), { recursive: true });
  for (const entry of ['dist', 'schemas', 'package.json']) await cp(path.join(REPO_ROOT, entry), path.join(dest, entry), { recursive: true });
  const { stdout } = await execa('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: REPO_ROOT, reject: false });
  for (const dir of stdout.split('\n').slice(1)) {
    if (!dir.startsWith(`${REPO_ROOT}/node_modules/`)) continue;
    await cp(dir, path.join(dest, path.relative(REPO_ROOT, dir)), { recursive: true });
  }
  return '/opt/srvctl/dist/cli/main.js';
}

export interface DebianHost {
  /** The host's tree as seen from outside. */
  readonly tree: string;
  /** sc's CLI inside the host. */
  readonly scPath: string;
  /** Runs a command inside the booted host (all its namespaces), never throwing on exit ≠ 0. */
  run(argv: readonly string[], timeoutMs?: number): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Graceful poweroff (systemd stops the nested containers), then the sandbox's teardown takes the rest. */
  stop(): Promise<void>;
}

/**
 * Boots a copy of the base with systemd as PID 1 in the sandbox's network namespace, in a cgroup
 * under the sandbox root's machine cgroups (so the sandbox's teardown kills whatever is left).
 */
export async function bootDebianHost(sandbox: Sandbox, base: string): Promise<DebianHost> {
  const tree = path.join(sandbox.root, 'debian-host');
  await execa('cp', ['-a', '--reflink=auto', base, tree]);
  const scPath = await installSc(tree);
  const layout = detectCgroupLayout();
  const cgroup = `${machinesCgroupBase(sandbox.root)}/debian-host`;
  for (const t of layout.trees) await mkdir(path.join(t, cgroup), { recursive: true });
  const procs = layout.trees.map((t) => path.join(t, cgroup, 'cgroup.procs'));
  const console = path.join(sandbox.root, 'debian-host.console');
  const launcher = execa(
    'setsid',
    [
      'sh',
      '-c',
      'for p in $PROCS; do echo $$ > "$p"; done; exec "$@"',
      'launch',
      'systemd-nspawn',
      '--quiet',
      '--register=no',
      '--keep-unit',
      '--boot',
      `--directory=${tree}`,
      `--machine=${sandbox.prefix}-host`,
      '--capability=all',
      '--bind=/dev/net/tun',
      `--network-namespace-path=/run/netns/${sandbox.netns}`,
      '--console=read-only',
    ],
    {
      reject: false,
      stdin: 'ignore',
      stdout: { file: console },
      stderr: { file: `${console}.err` },
      // systemd 257 wants cgroup2 only; the nested nspawn needs no seccomp filter and a writable net sysctl tree.
      env: { PROCS: procs.join(' '), SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1', SYSTEMD_SECCOMP: '0', SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'network' },
    },
  );
  if (launcher.pid !== undefined) sandbox.track(launcher.pid);
  const nspawnPid = launcher.pid;

  const initPidFile = path.join(layout.unified, cgroup, 'payload/init.scope/cgroup.procs');
  const deadline = Date.now() + 120_000;
  let initPid: number | undefined;
  while (initPid === undefined) {
    const text = await readFile(initPidFile, 'utf8').catch(() => '');
    if (text.trim() !== '') initPid = Number(text.trim().split('\n')[0]);
    else if (Date.now() > deadline || launcher.exitCode !== null) {
      const output = (await readFile(console, 'utf8').catch(() => '')) + (await readFile(`${console}.err`, 'utf8').catch(() => ''));
      throw new Error(`the Debian host did not boot: ${output.slice(-2000)}`);
    } else await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const pid = initPid;
  const run = async (argv: readonly string[], timeoutMs = 300_000) => {
    const r = await execa(
      'nsenter',
      ['-t', String(pid), '-a', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'NO_COLOR=1', ...argv],
      {
        reject: false,
        timeout: timeoutMs,
        stdin: 'ignore',
      },
    );
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  // Booted when systemd says so (degraded: a unit that cannot work in a container, e.g. modules-load).
  await run(['systemctl', 'is-system-running', '--wait'], 180_000);
  return {
    tree,
    scPath,
    run,
    async stop() {
      if (nspawnPid === undefined || launcher.exitCode !== null) return;
      process.kill(nspawnPid, 'SIGTERM');
      await Promise.race([launcher, new Promise((resolve) => setTimeout(resolve, 60_000))]);
    },
  };
}
