// The openvpn driver: host-to-host tunnel processes and their files. On a systemd host each tunnel
// is an `openvpn-server@`/`openvpn-client@` unit; in the direct runtime sc starts `openvpn --daemon`
// in --netns itself. Both are observed in one pass from sc's files (config, pid, log) and /proc.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from './atomic-file.js';
import { resolveRuntime, type RuntimeKind, type RuntimeSetting } from './runtime.js';
import type { Exec, FilesDriver } from './types.js';

export const OPENVPN_CONFIG_DIR = '/etc/openvpn/srvctl';
export const OPENVPN_RUN_DIR = '/run/srvctl/openvpn';
/** First line of every config sc writes: its mark, and the peer the tunnel goes to. */
export const CONFIG_MARK = '# srvctl vpn-link';
/** First line of the user VPN server's config (user-vpn kind): the same files, another owner. */
export const USER_VPN_MARK = '# srvctl user-vpn';

export type TunnelRole = 'server' | 'client';

export const tunnelFiles = (device: string) => ({
  config: `${OPENVPN_CONFIG_DIR}/${device}.conf`,
  pid: `${OPENVPN_RUN_DIR}/${device}.pid`,
  status: `${OPENVPN_RUN_DIR}/${device}.status`,
  log: `${OPENVPN_RUN_DIR}/${device}.log`,
  /** The management socket of a server that has one (the user VPN server). */
  management: `${OPENVPN_RUN_DIR}/${device}.mgmt`,
});

/** One tunnel config found on the host, with what its process and log say. */
export interface TunnelRecord {
  readonly device: string;
  /** From the mark line; undefined for a config without sc's mark (foreign). */
  readonly peer?: string;
  readonly role?: TunnelRole;
  /** The config carries the user VPN server's mark (the user-vpn kind's, not a tunnel to a peer). */
  readonly userVpn?: boolean;
  readonly configText: string;
  readonly pid?: number;
  readonly running: boolean;
  /** The peer completed a TLS handshake since the last start, and no loss of it was logged since. */
  readonly connected: boolean;
  /** Time of the last completed handshake, as openvpn logged it. */
  readonly lastHandshake?: string;
}

export interface OpenvpnDriver {
  readonly runtime: RuntimeKind;
  /** Every config under /etc/openvpn/srvctl, with its process state, in one pass. */
  list(): Promise<TunnelRecord[]>;
  /** Writes the config; true when it changed. */
  writeConfig(device: string, text: string): Promise<boolean>;
  start(device: string, role: TunnelRole): Promise<void>;
  stop(device: string, role: TunnelRole | undefined): Promise<void>;
  /** Stops the tunnel and deletes its config and runtime files. */
  remove(device: string, role: TunnelRole | undefined): Promise<void>;
  /**
   * One command on the server's management socket (`status 2`, `kill CN`): the reply's lines
   * (without notifications and the closing END). Throws when the socket does not answer or says ERROR.
   */
  manage(device: string, command: string): Promise<string[]>;
}

const MANAGEMENT_TIMEOUT_MS = 5000;

/** Talks to an OpenVPN management unix socket: one command, its reply. Commands are sc's own, one line. */
export function managementCommand(socketPath: string, command: string): Promise<string[]> {
  if (/[\r\n]/.test(command)) return Promise.reject(new Error('a management command is one line'));
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    let buffer = '';
    let sent = false;
    const lines: string[] = [];
    const done = (error: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(lines);
    };
    const timer = setTimeout(() => done(new Error(`no answer from the management socket ${socketPath} to "${command}"`)), MANAGEMENT_TIMEOUT_MS);
    socket.on('error', (error) => done(new Error(`management socket ${socketPath}: ${error.message}`)));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let at = buffer.indexOf('\n');
      while (at >= 0) {
        const line = buffer.slice(0, at).replace(/\r$/, '');
        buffer = buffer.slice(at + 1);
        at = buffer.indexOf('\n');
        if (line.startsWith('>')) {
          // The greeting (>INFO) comes first: the command goes after it. Other notifications are skipped.
          if (!sent) {
            sent = true;
            socket.write(`${command}\n`);
          }
          continue;
        }
        if (!sent) continue;
        if (line.startsWith('ERROR:')) return done(new Error(`openvpn management "${command}": ${line}`));
        if (line === 'END') return done(undefined);
        lines.push(line);
        if (line.startsWith('SUCCESS:')) return done(undefined);
      }
    });
  });
}

/** The systemd unit of a tunnel: the lower hostnet's end is the TLS server. */
export const unitName = (device: string, role: TunnelRole): string => `openvpn-${role}@${device}.service`;

export const systemdStartArgs = (device: string, role: TunnelRole): string[] => ['enable', '--now', unitName(device, role)];
export const systemdRestartArgs = (device: string, role: TunnelRole): string[] => ['restart', unitName(device, role)];
export const systemdStopArgs = (device: string, role: TunnelRole): string[] => ['disable', '--now', unitName(device, role)];

/** Direct runtime: openvpn daemonizes itself; its pid and log go to the files named in the config. */
export const directStartArgs = (configPath: string, device: string): string[] => ['--config', configPath, '--daemon', `sc-${device}`];

/** `# srvctl vpn-link peer=h2.example.net role=server` → its fields. */
export function parseMark(configText: string): { peer: string; role: TunnelRole } | undefined {
  const first = configText.split('\n', 1)[0] ?? '';
  const m = /^# srvctl vpn-link peer=(\S+) role=(server|client)\b/.exec(first);
  return m ? { peer: m[1] as string, role: m[2] as TunnelRole } : undefined;
}

/** A log line's time: `--machine-readable-output`'s `SECONDS.MICROS FLAGS …` (as UTC ISO 8601), or openvpn's local `YYYY-MM-DD HH:MM:SS`. */
function logLineTime(line: string): string | undefined {
  const epoch = /^(\d{9,})\.\d+ [0-9a-f]+ /.exec(line)?.[1];
  if (epoch !== undefined) return new Date(Number(epoch) * 1000).toISOString();
  return /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/.exec(line)?.[1];
}

/** What openvpn's log says about the peer: connected, and the time of the last handshake. */
export function parseTunnelLog(log: string): { connected: boolean; lastHandshake?: string } {
  let connected = false;
  let lastHandshake: string | undefined;
  for (const line of log.split('\n')) {
    if (/Peer Connection Initiated with/.test(line)) {
      connected = true;
      const stamp = logLineTime(line);
      if (stamp) lastHandshake = stamp;
    } else if (/Inactivity timeout|SIGUSR1\[soft|SIGTERM|TLS Error: TLS key negotiation failed/.test(line)) {
      connected = false;
    }
  }
  return { connected, ...(lastHandshake !== undefined ? { lastHandshake } : {}) };
}

/** Alive, not a zombie, and an openvpn: a recycled pid does not count. */
export async function isOpenvpnProcess(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return path.basename(cmdline.split('\0')[0] ?? '') === 'openvpn';
  } catch {
    return false;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

export interface CreateOpenvpnOptions {
  exec: Exec;
  files: FilesDriver;
  runtime?: RuntimeSetting;
}

export function createOpenvpnDriver(options: CreateOpenvpnOptions): OpenvpnDriver {
  const { exec, files } = options;
  const runtime = resolveRuntime(options.runtime);
  const at = (device: string) => {
    const rel = tunnelFiles(device);
    return { config: files.hostPath(rel.config), pid: files.hostPath(rel.pid), status: files.hostPath(rel.status), log: files.hostPath(rel.log) };
  };
  // The systemd units read /etc/openvpn/{server,client}/NAME.conf: a link to sc's config.
  const unitConfigLink = (device: string, role: TunnelRole) => files.hostPath(`/etc/openvpn/${role}/${device}.conf`);

  const pidOf = async (device: string): Promise<number | undefined> => {
    const text = await readIfExists(at(device).pid);
    const pid = Number(text?.trim());
    return Number.isInteger(pid) && pid > 0 && (await isOpenvpnProcess(pid)) ? pid : undefined;
  };

  const stop = async (device: string, role: TunnelRole | undefined): Promise<void> => {
    if (runtime === 'systemd' && role) {
      await exec.run('systemctl', systemdStopArgs(device, role), { inNetns: false, allowFailure: true });
    }
    const pid = await pidOf(device);
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && (await isOpenvpnProcess(pid)); i += 1) await sleep(100);
      if (await isOpenvpnProcess(pid)) process.kill(pid, 'SIGKILL');
    }
    await rm(at(device).pid, { force: true });
  };

  return {
    runtime,

    async list() {
      const dir = files.hostPath(OPENVPN_CONFIG_DIR);
      const names = await readdir(dir).catch(() => [] as string[]);
      const records: TunnelRecord[] = [];
      for (const name of names.filter((n) => n.endsWith('.conf')).sort()) {
        const device = name.slice(0, -'.conf'.length);
        const configText = (await readIfExists(path.join(dir, name))) ?? '';
        const mark = parseMark(configText);
        const pid = await pidOf(device);
        const log = pid !== undefined ? await readIfExists(at(device).log) : undefined;
        const state = log !== undefined ? parseTunnelLog(log) : { connected: false };
        records.push({
          device,
          ...(mark ? { peer: mark.peer, role: mark.role } : {}),
          ...(configText.startsWith(`${USER_VPN_MARK} `) ? { userVpn: true } : {}),
          configText,
          ...(pid !== undefined ? { pid } : {}),
          running: pid !== undefined,
          ...state,
        });
      }
      return records;
    },

    async writeConfig(device, text) {
      const file = at(device).config;
      if ((await readIfExists(file)) === text) return false;
      await mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, text, { mode: 0o644 });
      return true;
    },

    async start(device, role) {
      const files = at(device);
      await mkdir(path.dirname(files.pid), { recursive: true });
      await stop(device, undefined); // a leftover of an earlier run must not hold the port
      if (runtime === 'systemd') {
        const link = unitConfigLink(device, role);
        await mkdir(path.dirname(link), { recursive: true });
        if (!existsSync(link)) await symlink(files.config, link);
        await exec.run('systemctl', systemdStartArgs(device, role), { inNetns: false });
        return;
      }
      await exec.run('openvpn', directStartArgs(files.config, device));
    },

    stop,

    manage(device, command) {
      return managementCommand(files.hostPath(tunnelFiles(device).management), command);
    },

    async remove(device, role) {
      await stop(device, role);
      const files = at(device);
      for (const r of ['server', 'client'] as const) await unlink(unitConfigLink(device, r)).catch(() => undefined);
      await rm(files.config, { force: true });
      await rm(files.status, { force: true });
      await rm(files.log, { force: true });
      await rm(options.files.hostPath(tunnelFiles(device).management), { force: true });
    },
  };
}
