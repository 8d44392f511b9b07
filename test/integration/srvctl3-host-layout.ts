// A srvctl 3.2 host under a test --root, as srvctl 3 left it (srvctl3-upstream.md §4.2–4.4):
// /srv/NAME/rootfs (a busybox tree standing in for Fedora, with site files and data, chowned to
// srvctl 3's fixed PrivateUsers range), /srv/NAME/NAME.nspawn, network/ethernet.network, hosts,
// ctype and the other files it wrote; and a way to run such a container the old way, on its old
// address and bridge, so that sc adopt has a running srvctl 3 container to take over.
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { detectCgroupLayout, machinesCgroupBase, pidsUnder, prepareMachineCgroup } from '../../src/drivers/cgroups.js';
import { LAUNCH_SCRIPT } from '../../src/drivers/nspawn-direct.js';
import { findInitPid } from '../../src/drivers/runtime.js';

export interface OldContainer {
  readonly name: string;
  readonly owner: string;
  readonly type: string;
  /** 10.HOSTNET.USER_ID.C */
  readonly ip: string;
  readonly ports: readonly { proto: string; host_port: number; container_port: number; comment?: string }[];
}

const HOST_BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'];

/** srvctl 3.2's PrivateUsers= value: 65536 · (user_id · 255 + C) (lib.js container_uid). */
export function srvctl3ContainerUid(ip: string): number {
  const [, , u, c] = ip.split('.').map(Number);
  return 65536 * ((u ?? 0) * 255 + (c ?? 0));
}

export const oldBridgeOf = (ip: string): string => `${ip.split('.').slice(0, 3).join('.')}.x`;
const vethOf = (ip: string): string => ip.split('.').slice(1).join('-');
const gatewayOf = (ip: string): string => `${ip.split('.').slice(0, 3).join('.')}.1`;

/** srvctl 3.2's container_nspawn output (lib.js), as it wrote /srv/NAME/NAME.nspawn. */
export function srvctl3Nspawn(c: OldContainer): string {
  const ports = c.ports.length
    ? c.ports.flatMap((p) => [`## ${p.comment ?? p.container_port}`, `Port=${p.proto}:${p.host_port}:${p.container_port}`])
    : ['## no mapped ports'];
  return [
    `## srvctl generated - ${c.name}`,
    '[Network]',
    `VirtualEthernetExtra=${vethOf(c.ip)}`,
    ...ports,
    '[Exec]',
    `PrivateUsers=${srvctl3ContainerUid(c.ip)}`,
    '[Files]',
    'PrivateUsersChown=true',
    'BindReadOnly=/usr/local/share/srvctl',
    `BindReadOnly=/var/srvctl3/share/containers/${c.name}`,
    'BindReadOnly=/var/srvctl3/share/common',
    `BindReadOnly=/srv/${c.name}/network:/etc/systemd/network`,
    `BindReadOnly=/srv/${c.name}/hosts:/etc/hosts`,
    '',
  ].join('\n');
}

async function busyboxPath(): Promise<string> {
  for (const candidate of HOST_BUSYBOX) {
    if ((await lstat(candidate).catch(() => undefined))?.isFile()) return candidate;
  }
  throw new Error('a static busybox is needed (busybox-static)');
}

/** The files a site keeps: pages, a binary, a private file, a link, an app's data. */
function siteFiles(name: string): [string, string | Buffer, number][] {
  const blob = Buffer.concat(Array.from({ length: 64 }, (_, i) => createHash('sha256').update(`${name} ${i}`).digest()));
  return [
    ['var/www/html/index.html', `<h1>site ${name}</h1>\n`, 0o644],
    ['var/www/html/about/index.html', `<p>about ${name}, served since 2019</p>\n`, 0o644],
    ['var/www/html/img/logo.bin', blob, 0o644],
    ['var/lib/app/data.db', Buffer.concat([blob, blob, Buffer.from(name)]), 0o600],
    ['root/.bash_history', 'ls\nsrvctl status\n', 0o600],
    ['etc/app.conf', `server_name=${name}\n`, 0o640],
  ];
}

/**
 * Writes the srvctl 3 layout of `c` under `root`. `settingsIn` `etc` puts the .nspawn into
 * /etc/systemd/nspawn (a hand-made setup) instead of next to the tree (srvctl 3.2).
 */
export async function writeSrvctl3Container(root: string, c: OldContainer, options: { settingsIn?: 'srv' | 'etc' } = {}): Promise<void> {
  const dir = path.join(root, 'srv', c.name);
  const tree = path.join(dir, 'rootfs');
  const busybox = await busyboxPath();
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/init.d', 'proc', 'sys', 'dev', 'run', 'tmp', 'var/log', 'root', 'var/www/html']) {
    await mkdir(path.join(tree, d), { recursive: true });
  }
  await execa('cp', [busybox, path.join(tree, 'bin/busybox')]);
  const { stdout } = await execa(busybox, ['--list-full']);
  for (const applet of stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'bin/busybox')) {
    await mkdir(path.dirname(path.join(tree, applet)), { recursive: true });
    await symlink('/bin/busybox', path.join(tree, applet)).catch(() => undefined);
  }
  await symlink('/bin/busybox', path.join(tree, 'sbin/init')).catch(() => undefined);
  const files: [string, string | Buffer, number][] = [
    ['etc/os-release', 'ID=busybox\nNAME="busybox"\n', 0o644],
    ['etc/machine-id', '', 0o444],
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
    ['etc/group', 'root:x:0:\n', 0o644],
    // The container's own files srvctl 3 had bind-mounted over; sc rewrites these three.
    ['etc/hosts', '127.0.0.1 localhost\n', 0o644],
    ['etc/resolv.conf', 'nameserver 10.79.0.1\n', 0o644],
    ['etc/hostname', `${c.name}\n`, 0o644],
    ['etc/inittab', '::sysinit:/etc/init.d/rcS\n::respawn:/usr/sbin/httpd -f -p 80 -h /var/www/html\n::shutdown:/bin/sync\n', 0o644],
    [
      'etc/init.d/rcS',
      '#!/bin/sh\nip link set lo up\nif [ -n "$ADDR" ]; then ip link set host0 up; ip addr add "$ADDR" dev host0; fi\n[ -n "$GW" ] && ip route add default via "$GW"\necho "booted $(hostname)"\n',
      0o755,
    ],
    ...siteFiles(c.name),
  ];
  for (const [file, content, mode] of files) {
    await mkdir(path.dirname(path.join(tree, file)), { recursive: true });
    await writeFile(path.join(tree, file), content);
    await chmod(path.join(tree, file), mode);
  }
  await symlink('index.html', path.join(tree, 'var/www/html/latest.html'));

  // srvctl 3's per-container files next to the tree.
  await mkdir(path.join(dir, 'network'), { recursive: true });
  const settings = srvctl3Nspawn(c);
  if (options.settingsIn === 'etc') {
    await mkdir(path.join(root, 'etc/systemd/nspawn'), { recursive: true });
    await writeFile(path.join(root, 'etc/systemd/nspawn', `${c.name}.nspawn`), settings);
  } else {
    await writeFile(path.join(dir, `${c.name}.nspawn`), settings);
  }
  await writeFile(
    path.join(dir, 'network/ethernet.network'),
    `[Match]\nName=${vethOf(c.ip)}\n\n[Network]\nAddress=${c.ip}/24\nGateway=${gatewayOf(c.ip)}\n`,
  );
  await writeFile(
    path.join(dir, 'hosts'),
    `## $SRVCTL generated\n127.0.0.1 localhost.localdomain localhost ${c.name}\n::1 localhost\n${gatewayOf(c.ip)} srvctl-gateway\n`,
  );
  await writeFile(path.join(dir, 'ethernet.sh'), `ip link set dev ${vethOf(c.ip)} up\nbrctl addif ${oldBridgeOf(c.ip)} ${vethOf(c.ip)}\n`);
  await writeFile(path.join(dir, 'firewall_cmd.sh'), '');
  await writeFile(path.join(dir, 'ctype'), `${c.type}\n`);
  await writeFile(path.join(dir, 'creation-date'), '2019.05.06-12:00:00\n');
  await writeFile(path.join(dir, 'creation-user'), `${c.owner}\n`);
  // PrivateUsersChown=true: srvctl 3's nspawn had shifted the tree into the container's fixed range.
  const uid = srvctl3ContainerUid(c.ip);
  await execa('chown', ['-R', '-h', `${uid}:${uid}`, tree]);
}

/**
 * Runs `c` as srvctl 3 did, as far as it matters here: systemd-nspawn booting the tree in its
 * fixed user range, on its old address and bridge (the stand-in for srvctl 3's veth + brctl), in a
 * cgroup of its own under this --root's machines (so the sandbox's teardown kills it too).
 */
export async function startSrvctl3Container(root: string, netns: string, c: OldContainer, logFile: string): Promise<{ pid: number }> {
  const layout = detectCgroupLayout();
  const cgroup = `${machinesCgroupBase(root)}/srvctl3/${c.name}`;
  const procs = await prepareMachineCgroup(layout, cgroup);
  const nspawn = [
    '--register=no',
    '--keep-unit',
    '--quiet',
    '--settings=false',
    `--directory=${path.join(root, 'srv', c.name, 'rootfs')}`,
    `--machine=${c.name}`,
    '--boot',
    '--kill-signal=SIGUSR2',
    '--console=read-only',
    `--private-users=${srvctl3ContainerUid(c.ip)}`,
    '--private-users-ownership=chown',
    `--network-bridge=${oldBridgeOf(c.ip)}`,
    `--setenv=ADDR=${c.ip}/24`,
    `--setenv=GW=${gatewayOf(c.ip)}`,
  ];
  const log = openSync(logFile, 'w');
  let pid: number | undefined;
  try {
    const child = spawn(
      'sh',
      ['-c', LAUNCH_SCRIPT, 'srvctl3-launch', ...procs, '--', 'nsenter', `--net=/run/netns/${netns}`, 'systemd-nspawn', ...nspawn],
      { detached: true, stdio: ['ignore', log, log] },
    );
    pid = child.pid;
    child.unref();
  } finally {
    closeSync(log);
  }
  if (pid === undefined) throw new Error(`could not start ${c.name}`);
  const deadline = Date.now() + 20_000;
  while ((await findInitPid(await pidsUnder(layout, `${cgroup}/payload`))) === undefined) {
    if (Date.now() > deadline) throw new Error(`${c.name} did not boot: ${await readFile(logFile, 'utf8').catch(() => '')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { pid };
}

/** Every entry under `dir` (not into /proc, /sys, /dev, /run, /tmp): type, mode, owner, and content hash or link target. */
export async function treeManifest(dir: string): Promise<Map<string, string>> {
  const manifest = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, relative))).sort()) {
      const rel = relative === '' ? name : `${relative}/${name}`;
      if (['proc', 'sys', 'dev', 'run', 'tmp'].includes(rel)) continue;
      const full = path.join(dir, rel);
      const info = await lstat(full);
      const owner = `${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}`;
      if (info.isSymbolicLink()) manifest.set(rel, `link ${await readlink(full)} ${info.uid}:${info.gid}`);
      else if (info.isDirectory()) {
        manifest.set(rel, `dir ${owner}`);
        await walk(rel);
      } else
        manifest.set(
          rel,
          `file ${owner} ${createHash('sha256')
            .update(await readFile(full))
            .digest('hex')}`,
        );
    }
  };
  await walk('');
  return manifest;
}
