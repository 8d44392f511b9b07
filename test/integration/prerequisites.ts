// The integration tests' global setup: before any of them runs, checks what they all need — root,
// the built CLI, and every program they drive — and stops the run with ONE line naming what is
// missing and the package that brings it, instead of a cascade of failing suites.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PACKAGE_LIST = path.join(REPO_ROOT, 'scripts/system-packages.txt');

/** The programs the integration suites run (directly or through sc); their packages come from the list. */
export const INTEGRATION_PROGRAMS = [
  'ip',
  'ss',
  'nft',
  'systemd-nspawn',
  'nsenter',
  'unshare',
  'setsid',
  'sysctl',
  'systemctl',
  'systemd-analyze',
  'busybox',
  'git',
  'openvpn',
  'haproxy',
  'ping',
  'openssl',
  'curl',
  'debootstrap',
  'ssh-keygen',
  'ssh',
  'sshd',
  'script',
  'time',
] as const;

export interface PackageEntry {
  readonly debian: string;
  readonly fedora: string;
  readonly programs: readonly string[];
}

/** Parses scripts/system-packages.txt: `<debian> <fedora> <prog,prog>  # comment` per line. */
export function parsePackageList(text: string): PackageEntry[] {
  const entries: PackageEntry[] = [];
  for (const raw of text.split('\n')) {
    const fields = (raw.split('#')[0] ?? '').trim().split(/\s+/);
    if (fields.length < 3) continue;
    const [debian, fedora, programs] = fields as [string, string, string];
    entries.push({ debian, fedora, programs: programs === '-' ? [] : programs.split(',') });
  }
  return entries;
}

/** The first executable `name` on PATH (as sc and the tests would find it), or undefined. */
export function findOnPath(name: string, searchPath = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** One line describing every missing prerequisite, or undefined when all are there. */
export function missingPrerequisites(opts: {
  isRoot: boolean;
  cliBuilt: boolean;
  packages: readonly PackageEntry[];
  searchPath?: string;
}): string | undefined {
  const problems: string[] = [];
  if (!opts.isRoot) problems.push('root (they create network namespaces: run `sudo npm test`)');
  if (!opts.cliBuilt) problems.push('the built CLI dist/cli/main.js (run `npm run build`; `npm test` does)');
  const missing = INTEGRATION_PROGRAMS.filter((program) => findOnPath(program, opts.searchPath) === undefined);
  if (missing.length > 0) {
    const named = missing.map((program) => {
      const entry = opts.packages.find((p) => p.programs.includes(program));
      if (!entry) return `${program} (in no package of scripts/system-packages.txt)`;
      return `${program} (package ${entry.debian}${entry.fedora !== entry.debian ? `, Fedora ${entry.fedora}` : ''})`;
    });
    problems.push(`${named.join(', ')}; scripts/install-system-packages.sh installs them all`);
  }
  return problems.length === 0 ? undefined : `integration tests cannot run, missing: ${problems.join('; ')}`;
}

export default function checkIntegrationPrerequisites(): void {
  const line = missingPrerequisites({
    isRoot: process.getuid?.() === 0,
    cliBuilt: existsSync(path.join(REPO_ROOT, 'dist/cli/main.js')),
    packages: parsePackageList(readFileSync(PACKAGE_LIST, 'utf8')),
  });
  if (line === undefined) return;
  // One line and nothing else: jest prints a thrown error's stack, so the stack is the line.
  const error = new Error(line);
  error.stack = line;
  throw error;
}
