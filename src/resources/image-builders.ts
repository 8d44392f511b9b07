// Base image builders (SPEC §3): which builder makes the image of a container type (pure, from
// settings), the exact builder command lines (pure, unit-tested), and the build recipes, which
// run through the rootfs driver. busybox: the host's static busybox; debootstrap; dnf --installroot.
import type { ImageSpec, Model, Settings } from '../datastore/model.js';
import type { RootfsDriver, TreeEntry } from '../drivers/rootfs.js';
import { UserError } from '../errors.js';

export type BuilderName = ImageSpec['builder'];

/** The parameters of a build: what the marker records and what a change of triggers a rebuild. */
export interface ImageParams {
  readonly suite?: string;
  readonly mirror?: string;
  readonly release?: string;
  readonly packages?: readonly string[];
}

/** How the image of one type is built; `builder: null` when the datastore names none. */
export interface ImageRecipe {
  readonly builder: BuilderName | null;
  readonly params: ImageParams;
}

/** Types that work without settings (SPEC: busybox and the host's own Debian suite). */
const DEFAULT_BUILDERS: Readonly<Record<string, BuilderName>> = { busybox: 'busybox', debian: 'debootstrap' };

export function imageRecipe(type: string, settings: Readonly<Settings>): ImageRecipe {
  const configured = settings.images && Object.hasOwn(settings.images, type) ? settings.images[type] : undefined;
  if (!configured) return { builder: DEFAULT_BUILDERS[type] ?? null, params: {} };
  const params: { -readonly [K in keyof ImageParams]: ImageParams[K] } = {};
  if (configured.suite !== undefined) params.suite = configured.suite;
  if (configured.mirror !== undefined) params.mirror = configured.mirror;
  if (configured.release !== undefined) params.release = configured.release;
  if (configured.packages !== undefined && configured.packages.length > 0) params.packages = [...configured.packages];
  return { builder: configured.builder, params };
}

/** The machine's static busybox (Debian's busybox-static; CI installs it). */
export const HOST_BUSYBOX = '/bin/busybox';
const BUSYBOX_CANDIDATES = [HOST_BUSYBOX, '/usr/bin/busybox', '/usr/sbin/busybox', '/sbin/busybox'];
const BUSYBOX_PACKAGE = 'busybox-static (Debian) or busybox (Fedora)';

export const DEBOOTSTRAP_BASE_PACKAGES = ['systemd', 'systemd-sysv', 'iproute2', 'iputils-ping'] as const;
export const DNF_BASE_PACKAGES = ['systemd', 'passwd', 'dnf', 'fedora-release', 'iproute', 'iputils'] as const;

/** Package names end up as arguments: nothing that could read as an option or a list. */
const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9.+_:-]*$/;
/** A suite or release: one plain word. */
const WORD = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MIRROR_URL = /^(https?|file):\/\/\S+$/;

const packageProblem = (p: string): string => `image package "${p}" is not a valid package name`;
const wordProblem = (what: string, value: string): string => `image ${what} "${value}" is not valid (letters, digits, '.', '_', '-')`;
const mirrorProblem = (mirror: string): string => `image mirror "${mirror}" is not an http(s) or file URL`;

function checkPackages(packages: readonly string[] | undefined): readonly string[] {
  for (const p of packages ?? []) {
    if (!PACKAGE_NAME.test(p)) throw new UserError(packageProblem(p));
  }
  return packages ?? [];
}

function checkWord(what: string, value: string): string {
  if (!WORD.test(value)) throw new UserError(wordProblem(what, value));
  return value;
}

/** The parameters each builder reads; any other is ignored by it. */
const BUILDER_PARAMS: Readonly<Record<BuilderName, readonly (keyof ImageParams)[]>> = {
  busybox: [],
  debootstrap: ['suite', 'mirror', 'packages'],
  dnf: ['release', 'packages'],
};

/** A problem of the image settings or of a container's type, located in its datastore file. */
export interface ImageSettingsProblem {
  readonly severity: 'error' | 'warning';
  readonly document: 'settings' | 'containers';
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * What an image build would refuse, found before any apply (pure): a package, suite or release
 * that is no plain word, a mirror that is no URL (errors); a parameter the builder does not read,
 * a container type no builder is named for (warnings: such a type fails to build on its hosts).
 */
export function imageSettingsProblems(model: Model): ImageSettingsProblem[] {
  const problems: ImageSettingsProblem[] = [];
  const images = model.settings.images ?? {};
  for (const [type, image] of Object.entries(images)) {
    const at = (...rest: (string | number)[]) => ['images', type, ...rest];
    const error = (path: (string | number)[], message: string) => problems.push({ severity: 'error', document: 'settings', path, message });
    for (const [i, p] of (image.packages ?? []).entries()) if (!PACKAGE_NAME.test(p)) error(at('packages', i), packageProblem(p));
    if (image.suite !== undefined && !WORD.test(image.suite)) error(at('suite'), wordProblem('suite', image.suite));
    if (image.release !== undefined && !WORD.test(image.release)) error(at('release'), wordProblem('release', image.release));
    if (image.mirror !== undefined && !MIRROR_URL.test(image.mirror)) error(at('mirror'), mirrorProblem(image.mirror));
    const read = BUILDER_PARAMS[image.builder] ?? [];
    for (const param of ['suite', 'mirror', 'release', 'packages'] as const) {
      if (image[param] !== undefined && !read.includes(param)) {
        problems.push({
          severity: 'warning',
          document: 'settings',
          path: at(param),
          message: `the ${image.builder} builder does not read ${param}${read.length ? ` (it reads ${read.join(', ')})` : ''}; it is ignored`,
        });
      }
    }
  }
  // One warning per type without a builder, at its first container.
  const unbuildable = new Map<string, { first: string; count: number }>();
  for (const [name, container] of Object.entries(model.containers)) {
    if (imageRecipe(container.type, model.settings).builder !== null) continue;
    const seen = unbuildable.get(container.type);
    if (seen) seen.count += 1;
    else unbuildable.set(container.type, { first: name, count: 1 });
  }
  for (const [type, { first, count }] of unbuildable) {
    problems.push({
      severity: 'warning',
      document: 'containers',
      path: [first, 'type'],
      message: `no image builder for type "${type}" (${count} container${count === 1 ? '' : 's'}): name one in settings.images.${type} (builder: busybox, debootstrap or dnf), or the image fails to build on their hosts`,
    });
  }
  return problems;
}

/** `debootstrap --variant=minbase --include=… SUITE DIR [MIRROR]` */
export function debootstrapCommand(suite: string, dir: string, params: ImageParams): [string, string[]] {
  const include = [...DEBOOTSTRAP_BASE_PACKAGES, ...checkPackages(params.packages)].join(',');
  const args = ['--variant=minbase', `--include=${include}`, checkWord('suite', suite), dir];
  if (params.mirror !== undefined) {
    if (!MIRROR_URL.test(params.mirror)) throw new UserError(mirrorProblem(params.mirror));
    args.push(params.mirror);
  }
  return ['debootstrap', args];
}

/** `dnf --installroot=DIR --releasever=R --setopt=install_weak_deps=False -y install …` */
export function dnfCommand(release: string, dir: string, params: ImageParams): [string, string[]] {
  return [
    'dnf',
    [
      `--installroot=${dir}`,
      `--releasever=${checkWord('release', release)}`,
      '--setopt=install_weak_deps=False',
      '-y',
      'install',
      ...DNF_BASE_PACKAGES,
      ...checkPackages(params.packages),
    ],
  ];
}

/** Fields of an os-release file (`KEY=value`, values optionally quoted). */
export function parseOsRelease(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    fields[m[1] as string] = (m[2] as string).replace(/^(["'])(.*)\1$/, '$2');
  }
  return fields;
}

/**
 * The busybox image's own files (sandbox.md §3): init scripts that bring up host0 from
 * /etc/srvctl/network.env (written per container by sc) or ADDR/GW in the environment, and a
 * respawned httpd on :80 serving a page with the hostname, so tests can check TCP reachability.
 */
export function busyboxImageEntries(): TreeEntry[] {
  const dirs = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/init.d', 'etc/srvctl', 'proc', 'sys', 'dev', 'run', 'var/log', 'root', 'www'];
  const rcS = [
    '#!/bin/sh',
    '# srvctl busybox image: network from /etc/srvctl/network.env (or ADDR/GW in the environment).',
    'ip link set lo up',
    '[ -r /etc/srvctl/network.env ] && . /etc/srvctl/network.env',
    'if [ -n "$ADDR" ]; then',
    '  ip link set host0 up',
    '  ip addr add "$ADDR" dev host0 2>/dev/null',
    'fi',
    '[ -n "$GW" ] && ip route add default via "$GW" 2>/dev/null',
    'echo "booted $(hostname)"',
    '',
  ].join('\n');
  const svc = [
    '#!/bin/sh',
    '# srvctl busybox image: a tiny web page naming the container.',
    'echo "hello from $(hostname)" > /www/index.html',
    'exec httpd -f -p 80 -h /www',
    '',
  ].join('\n');
  const inittab = [
    '# srvctl busybox image',
    '::sysinit:/etc/init.d/rcS',
    '::respawn:/etc/init.d/svc',
    '::ctrlaltdel:/sbin/reboot',
    '::shutdown:/bin/echo "stopping $(hostname)"',
    '::shutdown:/bin/sync',
    '',
  ].join('\n');
  return [
    ...dirs.map((path): TreeEntry => ({ kind: 'dir', path })),
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    // nspawn -b refuses a tree without os-release; an empty machine-id lets it assign one per boot.
    { kind: 'file', path: 'etc/os-release', text: 'ID=busybox\nNAME="busybox"\nPRETTY_NAME="busybox (srvctl)"\n' },
    { kind: 'file', path: 'etc/machine-id', text: '' },
    { kind: 'file', path: 'etc/passwd', text: 'root:x:0:0:root:/root:/bin/sh\n' },
    { kind: 'file', path: 'etc/group', text: 'root:x:0:\n' },
    { kind: 'file', path: 'etc/inittab', text: inittab },
    { kind: 'file', path: 'etc/init.d/rcS', text: rcS, mode: 0o755 },
    { kind: 'file', path: 'etc/init.d/svc', text: svc, mode: 0o755 },
  ];
}

/** Applet links from `busybox --list-full` output (`usr/bin/wget` …), all pointing at /bin/busybox. */
export function busyboxAppletLinks(listFull: string): TreeEntry[] {
  const links: TreeEntry[] = [];
  for (const raw of listFull.split('\n')) {
    const p = raw.trim().replace(/^\/+/, '');
    if (p === '' || p === 'bin/busybox' || p.split('/').includes('..')) continue;
    links.push({ kind: 'symlink', path: p, target: '/bin/busybox' });
  }
  // init is busybox's in any case (sandbox.md §3), also when the applet list does not name it.
  if (!links.some((l) => l.path === 'sbin/init')) links.push({ kind: 'symlink', path: 'sbin/init', target: '/bin/busybox' });
  return links;
}

async function buildBusybox(rootfs: RootfsDriver, dir: string): Promise<void> {
  // Debian's busybox-static is /bin/busybox; Fedora's (static) busybox is /usr/sbin/busybox on older releases.
  let found: string | undefined;
  let dynamic: string | undefined;
  for (const candidate of BUSYBOX_CANDIDATES) {
    const linkage = await rootfs.isStaticExecutable(candidate);
    if (linkage === true) {
      found = candidate;
      break;
    }
    if (linkage === false) dynamic ??= candidate;
  }
  if (found === undefined && dynamic !== undefined) {
    throw new UserError(
      `${dynamic} is dynamically linked and would not run inside the image: install the ${BUSYBOX_PACKAGE} package (it replaces busybox)`,
    );
  }
  if (found === undefined) {
    throw new UserError(
      `the busybox image needs a static busybox (${BUSYBOX_CANDIDATES.join(', ')}), and there is none: install the ${BUSYBOX_PACKAGE} package`,
    );
  }
  const busybox = found;
  const { stdout } = await rootfs.runBuilder(busybox, ['--list-full']);
  await rootfs.populateTree(dir, [
    ...busyboxImageEntries(),
    { kind: 'copy', path: 'bin/busybox', from: busybox, mode: 0o755 },
    ...busyboxAppletLinks(stdout),
  ]);
}

/**
 * The machine's os-release: the one under --root when a test provides it, else the real one.
 * /etc/os-release is a symlink to /usr/lib/os-release on Debian and Fedora, and the rootfs driver
 * reads no symlinks: os-release(5)'s fallback, /usr/lib/os-release, is the file itself.
 */
async function hostOsRelease(rootfs: RootfsDriver, rootOsRelease: string): Promise<Record<string, string>> {
  for (const candidate of [rootOsRelease, '/etc/os-release', '/usr/lib/os-release']) {
    const file = await rootfs.readFile(candidate);
    if (file.kind === 'file') return parseOsRelease(file.text);
  }
  return {};
}

/** Debian/Fedora trees: a fresh machine-id per container and no build host name inside. */
const systemdImageCleanup = (): TreeEntry[] => [{ kind: 'file', path: 'etc/machine-id', text: '' }];

/** The SSH host key files openssh-server's postinst makes (`ssh-keygen -A`): the build's, not a container's. */
export const SSH_HOST_KEY_FILES = ['rsa', 'ecdsa', 'ed25519', 'dsa'].flatMap((t) => [`etc/ssh/ssh_host_${t}_key`, `etc/ssh/ssh_host_${t}_key.pub`]);

/**
 * Debian's ssh.service checks its config (`sshd -t`) and fails without host keys, and Debian has
 * no unit that makes them at boot: a drop-in makes the missing ones first (`ssh-keygen -A` leaves
 * existing keys alone). Harmless in an image without openssh-server (the drop-in has no unit).
 */
export function debianImageEntries(): TreeEntry[] {
  const dropIn = [
    '# srvctl: every container makes its own SSH host keys on first boot (the image has none).',
    '[Service]',
    'ExecStartPre=',
    'ExecStartPre=/usr/bin/ssh-keygen -A',
    'ExecStartPre=/usr/sbin/sshd -t',
    '',
  ].join('\n');
  return [
    { kind: 'dir', path: 'etc/systemd/system/ssh.service.d' },
    { kind: 'file', path: 'etc/systemd/system/ssh.service.d/srvctl-host-keys.conf', text: dropIn },
  ];
}

async function buildDebootstrap(rootfs: RootfsDriver, dir: string, params: ImageParams, rootOsRelease: string): Promise<void> {
  const suite = params.suite ?? (await hostOsRelease(rootfs, rootOsRelease))['VERSION_CODENAME'];
  if (!suite) throw new UserError("debootstrap needs a suite: this host's os-release has no VERSION_CODENAME; set settings.images.TYPE.suite");
  const [command, args] = debootstrapCommand(suite, dir, params);
  await rootfs.runBuilder(command, args);
  // Offline enable: the unit links are made in the tree, no running systemd needed.
  await rootfs.runBuilder('systemctl', [`--root=${dir}`, 'enable', 'systemd-networkd']);
  await rootfs.remove(`${dir}/etc/hostname`);
  // Host keys made during the build would be shared by every container of the image.
  for (const key of SSH_HOST_KEY_FILES) await rootfs.remove(`${dir}/${key}`);
  await rootfs.populateTree(dir, [...systemdImageCleanup(), ...debianImageEntries()]);
}

async function buildDnf(rootfs: RootfsDriver, dir: string, params: ImageParams, rootOsRelease: string): Promise<void> {
  let release = params.release;
  if (release === undefined) {
    const os = await hostOsRelease(rootfs, rootOsRelease);
    if (os['ID'] === 'fedora') release = os['VERSION_ID'];
  }
  if (!release) throw new UserError('dnf needs a release: this host is not Fedora; set settings.images.TYPE.release');
  const [command, args] = dnfCommand(release, dir, params);
  await rootfs.runBuilder(command, args);
  await rootfs.remove(`${dir}/etc/hostname`);
  await rootfs.populateTree(dir, systemdImageCleanup());
}

/** Runs the recipe's builder into `dir` (a fresh work directory the driver renames into place). */
export async function runImageBuild(rootfs: RootfsDriver, type: string, recipe: ImageRecipe, dir: string, rootOsRelease: string): Promise<void> {
  switch (recipe.builder) {
    case 'busybox':
      return buildBusybox(rootfs, dir);
    case 'debootstrap':
      return buildDebootstrap(rootfs, dir, recipe.params, rootOsRelease);
    case 'dnf':
      return buildDnf(rootfs, dir, recipe.params, rootOsRelease);
    case null:
      throw new UserError(
        `no builder for container type "${type}": name one in settings.images.${type} (builder: busybox, debootstrap or dnf); only busybox and debian work without settings`,
      );
  }
}
