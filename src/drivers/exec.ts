// The one choke point through which sc runs host commands: argument arrays (never a shell),
// a timeout, typed errors, a debug log line per command, and --netns applied here only.
import { access } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { HostCommandError, UserError } from '../errors.js';
import { spawnCollect } from './spawn-collect.js';
import type { Exec, ExecOptions, ExecResult } from './types.js';
import { redactSecrets } from './url-credentials.js';

export interface CreateExecOptions {
  /** Network namespace (a name under /run/netns) every command runs in unless it opts out. */
  netns?: string;
  logger?: Logger;
  /** Default timeout per command. */
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const NETNS_DIR = '/run/netns';

/** The distribution package that provides a program, for "not installed" messages (Debian names). */
const PROVIDED_BY: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  bridge: 'iproute2',
  nsenter: 'util-linux',
  'systemd-nspawn': 'systemd-container',
  machinectl: 'systemd-container',
  systemctl: 'systemd',
  nft: 'nftables',
  openvpn: 'openvpn',
  openssl: 'openssl',
  haproxy: 'haproxy',
  git: 'git',
  debootstrap: 'debootstrap',
  dnf: 'dnf',
  sshd: 'openssh-server',
};

/** `ip netns exec` and nsenter report a program they cannot start like this. */
const MISSING_BEHIND_WRAPPER = /(?:exec of "([^"]+)" failed|failed to execute ([^:]+)): No such file or directory/;

/** Kernel-side rules for a namespace name as `ip netns` creates them: one path component. */
function netnsNameProblem(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    return `"${name}" is not a valid network namespace name`;
  }
  return undefined;
}

/**
 * Rewrites a command so it runs inside `netns`. `ip` switches namespaces itself (`-n`);
 * systemd-nspawn must not go through `ip netns exec`, which remounts /sys and breaks its
 * cgroup detection, so it goes through nsenter (sandbox.md §11.1).
 */
export function commandInNetns(netns: string, command: string, args: readonly string[]): [string, string[]] {
  if (command === 'ip') return ['ip', ['-n', netns, ...args]];
  if (command === 'systemd-nspawn') return ['nsenter', [`--net=${NETNS_DIR}/${netns}`, command, ...args]];
  return ['ip', ['netns', 'exec', netns, command, ...args]];
}

export function createExec(opts: CreateExecOptions = {}): Exec {
  const { netns, logger } = opts;
  const defaultTimeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let netnsChecked: Promise<void> | undefined;

  // Checked once and lazily, so building drivers for commands that never touch the network
  // (validate, datastore edits) does not fail on a missing namespace.
  const ensureNetns = (name: string): Promise<void> => {
    netnsChecked ??= (async () => {
      const problem = netnsNameProblem(name);
      if (problem) throw new UserError(`--netns: ${problem}`);
      try {
        await access(`${NETNS_DIR}/${name}`);
      } catch {
        throw new UserError(
          `--netns: network namespace "${name}" does not exist (no ${NETNS_DIR}/${name}); create it with \`ip netns add ${name}\` or drop --netns`,
        );
      }
    })();
    return netnsChecked;
  };

  const run = async (command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> => {
    const inNetns = netns !== undefined && options.inNetns !== false;
    if (inNetns) await ensureNetns(netns);
    const [file, argv] = inNetns ? commandInNetns(netns, command, args) : [command, [...args]];
    // Shown (logs, errors) with URL credentials redacted; run as given.
    const fullCommand = [file, ...argv].map(redactSecrets);
    const timeout = options.timeoutMs ?? defaultTimeout;
    const started = performance.now();

    const result = await spawnCollect(file, argv, {
      timeoutMs: timeout,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.bulkOutput ? { stdoutToFile: true } : {}),
    });
    const durationMs = Math.round(performance.now() - started);
    const { stdout, stderr } = result;
    logger?.debug({ command: fullCommand, exitCode: result.exitCode, durationMs }, 'exec');

    if (result.errorCode === 'ENOENT') {
      const pkg = PROVIDED_BY[path.basename(file)];
      throw new HostCommandError(fullCommand, undefined, `${file}: command not found${pkg ? ` (install the ${pkg} package)` : ''}`, '', {
        reason: 'program missing',
      });
    }
    if (result.timedOut) {
      throw new HostCommandError(fullCommand, result.exitCode, stderr, stdout, {
        reason: `timed out after ${timeout} ms`,
        retryable: true,
      });
    }
    if (result.exitCode === undefined) {
      // Killed by a signal or failed to start for another reason (EACCES, …).
      const why = result.signal ? `killed by ${result.signal}` : (result.errorCode ?? 'could not start');
      throw new HostCommandError(fullCommand, undefined, stderr || (result.errorMessage ?? ''), stdout, { reason: why });
    }
    // Inside a namespace the program is started by `ip netns exec` or nsenter, not by us: their
    // "not found" arrives as an exit code and a message.
    const missing = inNetns && result.exitCode !== 0 ? MISSING_BEHIND_WRAPPER.exec(stderr) : null;
    const missingInNetns = missing ? (missing[1] ?? missing[2]) : undefined;
    if (missingInNetns !== undefined) {
      const pkg = PROVIDED_BY[path.basename(missingInNetns)];
      throw new HostCommandError(
        fullCommand,
        result.exitCode,
        `${missingInNetns}: command not found${pkg ? ` (install the ${pkg} package)` : ''}`,
        stdout,
        {
          reason: 'program missing',
        },
      );
    }
    if (result.exitCode !== 0 && !options.allowFailure) {
      throw new HostCommandError(fullCommand, result.exitCode, stderr, stdout);
    }
    return { command: fullCommand, exitCode: result.exitCode, stdout, stderr };
  };

  const interactive = async (command: string, args: readonly string[], options: Pick<ExecOptions, 'inNetns' | 'env'> = {}): Promise<number> => {
    const inNetns = netns !== undefined && options.inNetns !== false;
    if (inNetns) await ensureNetns(netns);
    const [file, argv] = inNetns ? commandInNetns(netns, command, args) : [command, [...args]];
    logger?.debug({ command: [file, ...argv] }, 'exec interactive');
    // Only the environment given: the host's variables stay out of whatever the command enters.
    const outcome = await new Promise<{ code: number } | { error: NodeJS.ErrnoException }>((resolve) => {
      const child = spawn(file, argv, { stdio: 'inherit', env: options.env ?? {} });
      child.once('error', (error: NodeJS.ErrnoException) => resolve({ error }));
      child.once('close', (code, signal) => resolve({ code: code ?? 128 + (signal ? (osConstants.signals[signal] ?? 1) : 1) }));
    });
    if ('error' in outcome) {
      const pkg = PROVIDED_BY[path.basename(file)];
      if (outcome.error.code === 'ENOENT') {
        throw new HostCommandError([file, ...argv], undefined, `${file}: command not found${pkg ? ` (install the ${pkg} package)` : ''}`, '', {
          reason: 'program missing',
        });
      }
      throw new HostCommandError([file, ...argv], undefined, outcome.error.message, '', { reason: outcome.error.code ?? 'could not start' });
    }
    return outcome.code;
  };

  return netns === undefined ? { run, interactive } : { netns, run, interactive };
}
