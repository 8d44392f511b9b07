// The image kind: which images a host wants (pure), the builder command lines (pure, reviewed
// here because debootstrap and dnf do not run in the default test path), and build/observe on a
// real temp directory with a recording exec.
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { isStaticExecutable, rootfsDriver } from '../../../src/drivers/rootfs.js';
import type { Drivers, Exec, ExecResult } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import {
  busyboxAppletLinks,
  debootstrapCommand,
  dnfCommand,
  imageRecipe,
  parseOsRelease,
  runImageBuild,
} from '../../../src/resources/image-builders.js';
import { imageHandler } from '../../../src/resources/image.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';

const HOST = 'h1.example.net';
const host: HostContext = { name: HOST, cluster: 'test', host: { hostnet: 1, host_ip: '192.0.2.11' }, root: '/' };

function model(types: Record<string, string>, settings: Model['settings'] = {}): Model {
  const containers: Record<string, Model['containers'][string]> = {};
  for (const [name, type] of Object.entries(types)) containers[name] = { user: 'alice', host: HOST, type, ip: '10.17.3.20' };
  containers['elsewhere.example.com'] = { user: 'alice', host: 'h2.example.net', type: 'fedora', ip: '10.33.3.20' };
  return { clusters: {}, users: {}, containers, settings };
}

describe('imageHandler.desired', () => {
  it('wants one image per type used on this host, busybox and debian without settings', () => {
    const objects = imageHandler.desired(model({ 'a.x': 'busybox', 'b.x': 'debian', 'c.x': 'busybox' }), host);
    expect(objects.map((o) => [o.ref.id, o.spec.builder, o.description])).toEqual([
      ['busybox', 'busybox', 'busybox image for 2 containers'],
      ['debian', 'debootstrap', 'debootstrap image for 1 container'],
    ]);
  });

  it('takes builder and parameters from settings.images, and marks an unconfigured type', () => {
    const settings = { images: { web: { builder: 'debootstrap' as const, suite: 'trixie', packages: ['nginx'] } } };
    const objects = imageHandler.desired(model({ 'a.x': 'web', 'b.x': 'centos' }, settings), host);
    expect(objects.map((o) => o.spec)).toEqual([
      { builder: null, params: {} },
      { builder: 'debootstrap', params: { suite: 'trixie', packages: ['nginx'] } },
    ]);
    expect(objects[0]?.description).toContain('settings.images.centos');
  });
});

describe('imageHandler.validate: bad builder settings found before any apply', () => {
  const validate = (m: Model) => imageHandler.validate(m);

  it('accepts good settings, and types that need none', () => {
    const settings: Model['settings'] = {
      images: {
        web: { builder: 'debootstrap', suite: 'trixie', mirror: 'http://deb.debian.org/debian', packages: ['nginx', 'libc6:amd64', 'g++'] },
        fedora: { builder: 'dnf', release: '40', packages: ['httpd'] },
        tiny: { builder: 'busybox' },
      },
    };
    expect(validate(model({ 'a.x': 'web', 'b.x': 'busybox', 'c.x': 'debian', 'd.x': 'tiny' }, settings))).toEqual([]);
  });

  it('refuses what the build would refuse, each at its own JSON path in settings', () => {
    const settings: Model['settings'] = {
      images: {
        web: { builder: 'debootstrap', suite: 'trixie;rm', mirror: 'ftp://x', packages: ['ok', '-oops', 'a,b'] },
        fedora: { builder: 'dnf', release: '--40' },
      },
    };
    expect(validate(model({ 'a.x': 'web' }, settings)).filter((p) => p.severity === 'error')).toEqual([
      {
        severity: 'error',
        document: 'settings',
        path: ['images', 'web', 'packages', 1],
        message: 'image package "-oops" is not a valid package name',
      },
      { severity: 'error', document: 'settings', path: ['images', 'web', 'packages', 2], message: 'image package "a,b" is not a valid package name' },
      {
        severity: 'error',
        document: 'settings',
        path: ['images', 'web', 'suite'],
        message: `image suite "trixie;rm" is not valid (letters, digits, '.', '_', '-')`,
      },
      { severity: 'error', document: 'settings', path: ['images', 'web', 'mirror'], message: 'image mirror "ftp://x" is not an http(s) or file URL' },
      {
        severity: 'error',
        document: 'settings',
        path: ['images', 'fedora', 'release'],
        message: `image release "--40" is not valid (letters, digits, '.', '_', '-')`,
      },
    ]);
  });

  it('says the same as the build does (one source of the rules)', async () => {
    const params = { packages: ['-oops'] };
    const problems = validate(model({}, { images: { web: { builder: 'dnf', ...params } } }));
    expect(() => dnfCommand('40', '/d', params)).toThrow(problems[0]?.message ?? 'no problem found');
  });

  it('warns of a parameter the builder does not read', () => {
    const settings: Model['settings'] = {
      images: { f: { builder: 'dnf', release: '40', suite: 'bookworm' }, b: { builder: 'busybox', packages: ['x'] } },
    };
    expect(validate(model({}, settings)).filter((p) => p.document === 'settings')).toEqual([
      {
        severity: 'warning',
        document: 'settings',
        path: ['images', 'f', 'suite'],
        message: 'the dnf builder does not read suite (it reads release, packages); it is ignored',
      },
      {
        severity: 'warning',
        document: 'settings',
        path: ['images', 'b', 'packages'],
        message: 'the busybox builder does not read packages; it is ignored',
      },
    ]);
  });

  it('warns once per type no builder is named for, at its first container', () => {
    const problems = validate(model({ 'a.x': 'centos', 'b.x': 'centos', 'c.x': 'busybox' }));
    expect(problems).toEqual([
      {
        severity: 'warning',
        document: 'containers',
        path: ['a.x', 'type'],
        message:
          'no image builder for type "centos" (2 containers): name one in settings.images.centos (builder: busybox, debootstrap or dnf), or the image fails to build on their hosts',
      },
      // Every host's containers: the model is checked once, for the whole farm.
      expect.objectContaining({ severity: 'warning', path: ['elsewhere.example.com', 'type'] }),
    ]);
  });
});

describe('builder command lines', () => {
  it('debootstrap: minbase with systemd, networkd tools, the suite, the dir and an optional mirror', () => {
    expect(debootstrapCommand('bookworm', '/r/.build-debian', {})).toEqual([
      'debootstrap',
      ['--variant=minbase', '--include=systemd,systemd-sysv,iproute2,iputils-ping', 'bookworm', '/r/.build-debian'],
    ]);
    expect(debootstrapCommand('trixie', '/d', { mirror: 'http://deb.debian.org/debian', packages: ['curl'] })[1]).toEqual([
      '--variant=minbase',
      '--include=systemd,systemd-sysv,iproute2,iputils-ping,curl',
      'trixie',
      '/d',
      'http://deb.debian.org/debian',
    ]);
  });

  it('dnf: installroot, releasever, no weak deps, the base packages', () => {
    expect(dnfCommand('41', '/d', {})).toEqual([
      'dnf',
      [
        '--installroot=/d',
        '--releasever=41',
        '--setopt=install_weak_deps=False',
        '-y',
        'install',
        'systemd',
        'passwd',
        'dnf',
        'fedora-release',
        'iproute',
        'iputils',
      ],
    ]);
  });

  it.each([
    () => debootstrapCommand('--foreign', '/d', {}),
    () => debootstrapCommand('bookworm', '/d', { mirror: '--keyring=/x' }),
    () => debootstrapCommand('bookworm', '/d', { packages: ['-x'] }),
    () => dnfCommand('41 --nogpgcheck', '/d', {}),
  ])('refuses values that would read as options (%#)', (make) => {
    expect(make).toThrow(/not valid|not an http|not a valid/);
  });

  it('reads the suite and release from os-release', () => {
    expect(parseOsRelease('ID=debian\nVERSION_CODENAME=bookworm\nPRETTY_NAME="Debian GNU/Linux 12"\n')).toEqual({
      ID: 'debian',
      VERSION_CODENAME: 'bookworm',
      PRETTY_NAME: 'Debian GNU/Linux 12',
    });
  });

  it('links every busybox applet to /bin/busybox, and init in any case', () => {
    const links = busyboxAppletLinks('bin/sh\nusr/bin/wget\nbin/busybox\n../etc/x\n');
    expect(links).toEqual([
      { kind: 'symlink', path: 'bin/sh', target: '/bin/busybox' },
      { kind: 'symlink', path: 'usr/bin/wget', target: '/bin/busybox' },
      { kind: 'symlink', path: 'sbin/init', target: '/bin/busybox' },
    ]);
  });

  it('names the missing builder for an unconfigured type', async () => {
    const rootfs = rootfsDriver({ exec: failingExec, files: createFilesDriver('/nonexistent-root') });
    await expect(runImageBuild(rootfs, 'centos', imageRecipe('centos', {}), '/tmp/x', '/x/os-release')).rejects.toThrow(/settings\.images\.centos/);
  });
});

const failingExec: Exec = { run: () => Promise.reject(new Error('unexpected exec')) };

/** Records commands; answers `busybox --list-full` with a tiny applet list. */
function recordingExec(calls: string[][]): Exec {
  return {
    async run(command, args): Promise<ExecResult> {
      calls.push([command, ...args]);
      // openssh-server's postinst makes host keys in the tree being built.
      if (command === 'debootstrap' && args.some((a) => a.includes('openssh-server'))) {
        const dir = args[args.length - 1] as string;
        await mkdir(path.join(dir, 'etc/ssh'), { recursive: true });
        for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key']) await writeFile(path.join(dir, 'etc/ssh', f), 'k');
      }
      const stdout = args.includes('--list-full') ? 'bin/sh\nsbin/init\nusr/bin/httpd\n' : '';
      return { command: [command, ...args], exitCode: 0, stdout, stderr: '' };
    },
  };
}

describe('building and observing images under --root', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sc-image-unit-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const driversFor = (calls: string[][]): Drivers => ({ ...baseDrivers(recordingExec(calls), createFilesDriver(root)) });

  it('builds the busybox image with its marker, atomically, and observes it as owned', async () => {
    const calls: string[][] = [];
    const drivers = driversFor(calls);
    const [want] = imageHandler.desired(model({ 'a.x': 'busybox' }), { ...host, root });
    await imageHandler.create(drivers, { ...host, root }, want!);

    expect(calls).toEqual([['/bin/busybox', '--list-full']]);
    const dir = path.join(root, 'var/srvctl3/rootfs/busybox');
    const marker = JSON.parse(await readFile(path.join(dir, '.srvctl-image.json'), 'utf8')) as { builder: string };
    expect(marker.builder).toBe('busybox');
    expect(await readFile(path.join(dir, 'etc/inittab'), 'utf8')).toContain('::sysinit:/etc/init.d/rcS');
    expect(await readFile(path.join(dir, 'etc/init.d/svc'), 'utf8')).toContain('httpd -f -p 80 -h /www');
    // Nothing but the finished image is left in the images dir (no work or trash dirs).
    expect(await readdir(path.join(root, 'var/srvctl3/rootfs'))).toEqual(['busybox']);

    const observed = await imageHandler.observe(drivers);
    expect(observed).toEqual([
      expect.objectContaining({ ref: { kind: 'image', id: 'busybox' }, owned: true, spec: { builder: 'busybox', params: {} } }),
    ]);
  });

  it('observes a directory without marker (foreign or half-built) as not owned, and hides work dirs', async () => {
    await mkdir(path.join(root, 'var/srvctl3/rootfs/debian/etc'), { recursive: true });
    await mkdir(path.join(root, 'var/srvctl3/rootfs/.build-busybox-1-abc'), { recursive: true });
    const observed = await imageHandler.observe(driversFor([]));
    expect(observed.map((o) => [o.ref.id, o.owned])).toEqual([['debian', false]]);
    const [want] = imageHandler.desired(model({ 'a.x': 'debian' }), host);
    expect(imageHandler.conflict(want!, observed)).toMatch(/has no \.srvctl-image\.json/);
  });

  it('leaves no image behind when the build fails', async () => {
    const drivers = driversFor([]);
    const rootfs = rootfsDriver(drivers);
    await expect(
      rootfs.buildImage('debian', { builder: 'debootstrap', params: {}, built_at: '' }, async (dir) => {
        await writeFile(path.join(dir, 'half'), 'x');
        throw new Error('mirror unreachable');
      }),
    ).rejects.toThrow('mirror unreachable');
    expect(await readdir(path.join(root, 'var/srvctl3/rootfs'))).toEqual([]);
  });

  it('debootstrap build: runs the reviewed commands with the host suite, then cleans the tree', async () => {
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/os-release'), 'ID=debian\nVERSION_CODENAME=bookworm\n');
    const calls: string[][] = [];
    const drivers = driversFor(calls);
    const [want] = imageHandler.desired(model({ 'a.x': 'debian' }), { ...host, root });
    await imageHandler.create(drivers, { ...host, root }, want!);
    const work = calls[0]?.[4] as string;
    expect(work).toMatch(new RegExp(`^${root}/var/srvctl3/rootfs/\\.build-debian-`));
    expect(calls).toEqual([
      ['debootstrap', '--variant=minbase', '--include=systemd,systemd-sysv,iproute2,iputils-ping', 'bookworm', work],
      ['systemctl', `--root=${work}`, 'enable', 'systemd-networkd'],
    ]);
    expect(await readFile(path.join(root, 'var/srvctl3/rootfs/debian/etc/machine-id'), 'utf8')).toBe('');
  });

  it("debootstrap with openssh-server: the build's host keys are removed, and ssh.service makes a container's own first", async () => {
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/os-release'), 'ID=debian\nVERSION_CODENAME=bookworm\n');
    const drivers = driversFor([]);
    const settings = { images: { debian: { builder: 'debootstrap' as const, packages: ['openssh-server'] } } };
    const [want] = imageHandler.desired(model({ 'a.x': 'debian' }, settings), { ...host, root });
    await imageHandler.create(drivers, { ...host, root }, want!);
    const image = path.join(root, 'var/srvctl3/rootfs/debian');
    expect(await readdir(path.join(image, 'etc/ssh'))).toEqual([]);
    const dropIn = await readFile(path.join(image, 'etc/systemd/system/ssh.service.d/srvctl-host-keys.conf'), 'utf8');
    expect(dropIn).toContain('[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n');
  });
});

describe('isStaticExecutable', () => {
  it('tells a dynamically linked program from a static one, and a non-ELF file', async () => {
    expect(await isStaticExecutable(process.execPath)).toBe(false);
    expect(await isStaticExecutable(new URL(import.meta.url).pathname)).toBeUndefined();
    expect(await isStaticExecutable('/nonexistent/busybox')).toBeUndefined();
  });
});
