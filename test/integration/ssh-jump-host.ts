// The jump host of the SSH access tests (issue 16), shared by ssh-access.test.ts (busybox
// containers, a stand-in sshd) and ssh-debian.test.ts (a Debian container's own sshd).
//
// The host: sc applies to a --root whose /etc holds a small passwd/group/shadow (root, sshd and
// any foreign accounts the test asks for), an sshd_config that includes /etc/ssh/sshd_config.d/*.conf,
// and hosts. The test's sshd runs in the host namespace inside a private mount namespace where that
// --root's /etc is bind-mounted over /etc (the directory, so sc's atomic renames are seen), and its
// PidFile is <root>/run/sshd.pid — so sc's drop-in, jump accounts, keys files and /etc/hosts block
// are exactly what sshd uses, and sc's reload (SIGHUP) is exercised.
// A client namespace on the uplink (eth0 of the host namespace) runs `ssh -J`.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { Sandbox } from './sandbox.js';

export interface JumpHostOptions {
  readonly hostName: string;
  readonly hostIp: string;
  readonly clientIp: string;
  /** Key pairs made for the client (ed25519, no passphrase): name → <keys>/name and name.pub. */
  readonly keyNames: readonly string[];
  /** Accounts sc did not create: `name:uid`, with a shell and a home. */
  readonly foreignAccounts?: readonly { name: string; uid: number }[];
}

export interface SshResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface JumpHost {
  readonly clientNs: string;
  /** The client's key directory. */
  readonly keys: string;
  /** Logs and configs of the test's sshd daemons. */
  readonly sshdDir: string;
  /** Public key lines by key name. */
  readonly pub: Readonly<Record<string, string>>;
  /** A daemon in its own mount namespace with a tmpfs /run (sshd needs /run/sshd; the machine's /run stays untouched). */
  startSshd(netArg: string, script: string, args: string[], log: string): void;
  /** The jump host's sshd: the --root's /etc is /etc for it. */
  startHostSshd(): void;
  /** A client config: `extra` first, then the jump host's address, KEY's identity, no host key prompts. */
  clientConfig(key: string, extra?: string): Promise<string>;
  /** `ssh ARGS` from namespace NS. */
  sshFrom(ns: string, args: string[]): Promise<SshResult>;
  /** `ssh -J USER@HOST root@TARGET [COMMAND…]` with USER's key from the client namespace (retried while it fails). */
  jump(user: string, target: string, attempts?: number, command?: readonly string[]): Promise<SshResult>;
}

const clientNsOf = (sandbox: Sandbox): string => `${sandbox.prefix}-cl`;

/** Removes the client namespace, if there is one (the sandbox's teardown takes the rest); call before sandbox.destroy(). */
export async function destroyJumpHost(sandbox: Sandbox): Promise<void> {
  await execa('ip', ['netns', 'del', clientNsOf(sandbox)], { reject: false });
}

async function prepareHostEtc(sandbox: Sandbox, options: JumpHostOptions): Promise<void> {
  const etc = path.join(sandbox.root, 'etc');
  const foreign = options.foreignAccounts ?? [];
  await mkdir(path.join(etc, 'ssh/sshd_config.d'), { recursive: true });
  await writeFile(
    path.join(etc, 'passwd'),
    [
      'root:x:0:0:root:/root:/bin/bash',
      'sshd:x:102:65534::/run/sshd:/usr/sbin/nologin',
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      ...foreign.map((a) => `${a.name}:x:${a.uid}:${a.uid}:${a.name[0]?.toUpperCase()}${a.name.slice(1)},,,:/home/${a.name}:/bin/bash`),
      '',
    ].join('\n'),
  );
  await writeFile(
    path.join(etc, 'group'),
    ['root:x:0:', 'shadow:x:42:', 'nogroup:x:65534:', ...foreign.map((a) => `${a.name}:x:${a.uid}:`), ''].join('\n'),
  );
  await writeFile(
    path.join(etc, 'shadow'),
    [
      'root:*:20000:0:99999:7:::',
      'sshd:*:20000:0:99999:7:::',
      'nobody:*:20000:0:99999:7:::',
      ...foreign.map((a) => `${a.name}:!:20000:0:99999:7:::`),
      '',
    ].join('\n'),
    { mode: 0o640 },
  );
  await writeFile(path.join(etc, 'gshadow'), ['root:*::', 'shadow:*::', 'nogroup:*::', ...foreign.map((a) => `${a.name}:!::`), ''].join('\n'), {
    mode: 0o640,
  });
  await writeFile(path.join(etc, 'hosts'), '127.0.0.1\tlocalhost\n');
  await writeFile(path.join(etc, 'nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files\n');
  // sshd is dynamically linked: the loader needs the machine's cache under the /etc it will see.
  await copyFile('/etc/ld.so.cache', path.join(etc, 'ld.so.cache'));
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'host', '-f', path.join(etc, 'ssh/ssh_host_ed25519_key')]);
  await writeFile(
    path.join(etc, 'ssh/sshd_config'),
    [
      'Include /etc/ssh/sshd_config.d/*.conf',
      `ListenAddress ${options.hostIp}`,
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      `PidFile ${path.join(sandbox.root, 'run/sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      'AllowTcpForwarding no',
      'X11Forwarding no',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  await mkdir(path.join(sandbox.root, 'run'), { recursive: true });
}

/**
 * Prepares the host's /etc under the sandbox's --root, the client's keys and the client namespace
 * (veth to the host namespace's eth0). The host's sshd is not started: call startHostSshd().
 */
export async function createJumpHost(sandbox: Sandbox, options: JumpHostOptions): Promise<JumpHost> {
  const clientNs = clientNsOf(sandbox);
  const keys = path.join(sandbox.root, 'client-keys');
  const sshdDir = path.join(sandbox.root, 'sshd');
  const pub: Record<string, string> = {};
  await mkdir(keys, { recursive: true, mode: 0o700 });
  await mkdir(sshdDir, { recursive: true });
  for (const who of options.keyNames) {
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${who}@test`, '-f', path.join(keys, who)]);
    pub[who] = (await readFile(path.join(keys, `${who}.pub`), 'utf8')).trim();
  }
  await prepareHostEtc(sandbox, options);
  await execa('ip', ['netns', 'add', clientNs]);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'lo', 'up']);
  await execa('ip', ['link', 'add', `${sandbox.prefix}u`, 'netns', sandbox.netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
  await sandbox.ip('link', 'set', `${sandbox.prefix}u`, 'name', 'eth0');
  await sandbox.ip('addr', 'add', `${options.hostIp}/24`, 'dev', 'eth0');
  await sandbox.ip('link', 'set', 'eth0', 'up');
  await execa('ip', ['-n', clientNs, 'addr', 'add', `${options.clientIp}/24`, 'dev', 'eth0']);
  await execa('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);

  let configs = 0;
  const startSshd = (netArg: string, script: string, args: string[], log: string): void => {
    const child = execa(
      'nsenter',
      [
        netArg,
        'unshare',
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        `${script}; mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f "$1"`,
        'sh',
        ...args,
      ],
      {
        reject: false,
        stdin: 'ignore',
        stdout: { file: log },
        stderr: { file: log },
      },
    );
    if (child.pid !== undefined) sandbox.track(child.pid);
  };
  const clientConfig = async (key: string, extra = ''): Promise<string> => {
    const file = path.join(keys, `config-${key}-${++configs}`);
    await writeFile(
      file,
      [
        extra,
        `Host ${options.hostName}`,
        `    HostName ${options.hostIp}`,
        'Host *',
        `    IdentityFile ${path.join(keys, key)}`,
        '    IdentitiesOnly yes',
        '    BatchMode yes',
        '    StrictHostKeyChecking no',
        '    UserKnownHostsFile /dev/null',
        '    LogLevel ERROR',
        '    ConnectTimeout 15',
        '',
      ].join('\n'),
    );
    return file;
  };
  const sshFrom = async (ns: string, args: string[]): Promise<SshResult> => {
    const r = await execa('ip', ['netns', 'exec', ns, 'ssh', ...args], { reject: false, timeout: 60_000, stdin: 'ignore' });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  return {
    clientNs,
    keys,
    sshdDir,
    pub,
    startSshd,
    startHostSshd() {
      startSshd(
        `--net=/run/netns/${sandbox.netns}`,
        'mount --bind "$2" /etc',
        ['/etc/ssh/sshd_config', path.join(sandbox.root, 'etc')],
        path.join(sshdDir, 'host-sshd.log'),
      );
    },
    clientConfig,
    sshFrom,
    async jump(user, target, attempts = 1, command = []) {
      const config = await clientConfig(user);
      let result: SshResult = { exitCode: -1, stdout: '', stderr: '' };
      for (let i = 0; i < attempts; i++) {
        result = await sshFrom(clientNs, ['-F', config, '-J', `${user}@${options.hostName}`, `root@${target}`, ...command]);
        if (result.exitCode === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      return result;
    },
  };
}
