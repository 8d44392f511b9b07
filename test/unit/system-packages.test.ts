// The one list of system packages (scripts/system-packages.txt) and the integration tests'
// prerequisite check built on it: every program the integration tests drive has a package, and a
// missing one is named in one line with its package.
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { INTEGRATION_PROGRAMS, missingPrerequisites, parsePackageList } from '../integration/prerequisites.js';

const packages = parsePackageList(readFileSync(new URL('../../scripts/system-packages.txt', import.meta.url), 'utf8'));

describe('scripts/system-packages.txt', () => {
  it('names a Debian package for every program the integration tests drive, and the ones the issue lists', () => {
    for (const program of INTEGRATION_PROGRAMS) expect([program, packages.some((p) => p.programs.includes(program))]).toEqual([program, true]);
    const debian = packages.map((p) => p.debian);
    for (const name of [
      'iproute2',
      'nftables',
      'systemd-container',
      'busybox-static',
      'git',
      'openvpn',
      'haproxy',
      'iputils-ping',
      'openssl',
      'curl',
      'debootstrap',
      'procps',
      'pebble',
      'openssh-server',
      'openssh-client',
      'wrk',
    ]) {
      expect(debian).toContain(name);
    }
  });

  it('reads Fedora names and program lists from the columns', () => {
    expect(packages.find((p) => p.debian === 'iputils-ping')).toEqual({ debian: 'iputils-ping', fedora: 'iputils', programs: ['ping'] });
    expect(packages.find((p) => p.debian === 'openssh-client')?.fedora).toBe('openssh-clients');
  });
});

describe('missingPrerequisites', () => {
  it('says nothing when root, the CLI and every program (executable, on the search path) are there', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sc-prereq-'));
    try {
      for (const program of INTEGRATION_PROGRAMS) await writeFile(path.join(dir, program), '#!/bin/sh\n', { mode: 0o755 });
      expect(missingPrerequisites({ isRoot: true, cliBuilt: true, packages, searchPath: `/nonexistent:${dir}` })).toBeUndefined();
      await chmod(path.join(dir, 'openvpn'), 0o644); // present but not executable: missing
      expect(missingPrerequisites({ isRoot: true, cliBuilt: true, packages, searchPath: dir })).toBe(
        'integration tests cannot run, missing: openvpn (package openvpn); scripts/install-system-packages.sh installs them all',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names every missing program with its package, on one line', () => {
    const line = missingPrerequisites({ isRoot: false, cliBuilt: false, packages, searchPath: '/nonexistent' });
    expect(line?.split('\n')).toHaveLength(1);
    expect(line).toContain('root (');
    expect(line).toContain('npm run build');
    expect(line).toContain('openvpn (package openvpn)');
    expect(line).toContain('ping (package iputils-ping, Fedora iputils)');
    expect(line).toContain('haproxy (package haproxy)');
  });
});
