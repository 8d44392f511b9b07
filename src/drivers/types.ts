// The driver layer's public shape: the only door from sc to the host. Everything that runs a
// command goes through Exec; the typed drivers above it are thin wrappers per tool.
import type { AccountsDriver } from './accounts.js';
import type { AcmeDriver } from './acme.js';
import type { HaproxyDriver } from './haproxy.js';
import type { NftDriver } from './nft.js';
import type { OpensslDriver } from './openssl.js';
import type { RootfsDriver } from './rootfs.js';
import type { SysctlDriver } from './sysctl.js';
import type { OpenvpnDriver } from './openvpn.js';
import type { PingDriver } from './ping.js';
import type { NspawnDriver } from './runtime.js';
import type { SshdDriver } from './sshd.js';
import type { DirEntry, FileStat } from './no-follow-fs.js';

export type { DirEntry, FileStat } from './no-follow-fs.js';

export interface ExecOptions {
  /** Text written to the command's stdin (e.g. an `ip -batch -` script). */
  input?: string;
  /** Kill the command after this many ms (default 60 s). */
  timeoutMs?: number;
  /**
   * Run inside the context's network namespace (default true). The exec layer decides how:
   * `ip -n NS …` for ip, `nsenter --net=/run/netns/NS …` for systemd-nspawn,
   * `ip netns exec NS …` for the rest. Set false for commands that must not (e.g. git).
   */
  inNetns?: boolean;
  /** Return a non-zero exit as a result instead of throwing HostCommandError. */
  allowFailure?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * The command prints a lot (megabytes): its stdout goes through a temporary file, not a pipe,
   * so it never waits for sc to read while sc is busy (spawn-collect.ts).
   */
  bulkOutput?: boolean;
}

export interface ExecResult {
  command: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface Exec {
  readonly netns?: string;
  run(command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Runs a command on the caller's terminal (stdin, stdout and stderr inherited, no timeout, only
   * the environment in `env`) and returns its exit code: for `sc shell`. Absent in fakes.
   */
  interactive?(command: string, args: readonly string[], options?: Pick<ExecOptions, 'inNetns' | 'env'>): Promise<number>;
}

/** One `ip -json -details link show` entry, the fields sc reads. */
export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  operstate?: string;
  mtu?: number;
  master?: string;
  ifalias?: string;
  link_type?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** One `ip -json addr show` entry. */
export interface IpAddrEntry {
  ifindex: number;
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; label?: string; [k: string]: unknown }[];
  [k: string]: unknown;
}

export interface IpDriver {
  /** All links, one `ip -json -details link show` call. */
  listLinks(): Promise<IpLink[]>;
  /**
   * Every IPv4 address, one `ip -4 -json addr show` call (retried on an interrupted dump). Links
   * without an IPv4 address are not listed; sc manages no IPv6 addresses.
   */
  listAddresses(): Promise<IpAddrEntry[]>;
  /**
   * Starts both dumps now, in the background, for the next observation pass (see shareReads) to
   * use: a command calls it before loading the datastore, so the kernel's dump runs while sc
   * parses and validates. Only where nothing can change the links in between (no apply of another
   * sc: under the host lock, or for a read-only command).
   */
  prefetch?(): void;
  /**
   * Until the returned function is called, listLinks() and listAddresses() return one shared dump
   * each (the prefetched one, else the first call's): one observation pass reads each kind once,
   * however many handlers ask. A batch() drops what was shared; ending the last share drops it too,
   * prefetched dumps included, so the next pass reads afresh.
   */
  shareReads?(): () => void;
  /**
   * Runs ip commands (each an argument array without the leading `ip`), as one `ip -batch -`
   * when there is more than one. Throws HostCommandError naming the failed line(s).
   */
  batch(commands: readonly (readonly string[])[]): Promise<void>;
}

/** Where a files-driver call may trust the path: everything below `within` is never followed through a symlink. */
export interface FilesScope {
  /**
   * A host path (default `/`, i.e. --root itself) whose own components are resolved normally; every
   * component below it is opened without following symlinks, race-free (e.g. a container's root:
   * `/srv/NAME/rootfs`).
   */
  readonly within?: string;
}

/** Host files under --root. Reads and writes never follow a symlink below their `within`. */
export interface FilesDriver {
  /** Absolute path of a host path under --root. */
  hostPath(path: string): string;
  /** A regular file's text; undefined when missing. Refuses symlinks, FIFOs, devices and files over `maxBytes`. */
  read(path: string, options?: FilesScope & { readonly maxBytes?: number }): Promise<string | undefined>;
  /** Like read, as bytes. */
  readBytes(path: string, options?: FilesScope & { readonly maxBytes?: number }): Promise<Buffer | undefined>;
  /**
   * Replaces the file atomically (temp + fsync + rename) with this content, mode (default 0o644,
   * whatever the umask) and owner, creating missing directories (`dirMode`, `dirUid`/`dirGid`); a
   * symlink at the path is replaced, never followed. Returns false (and writes nothing) when it
   * already is exactly that.
   */
  write(
    path: string,
    content: string | Uint8Array,
    options?: FilesScope & {
      readonly mode?: number;
      readonly uid?: number;
      readonly gid?: number;
      readonly dirMode?: number;
      readonly dirUid?: number;
      readonly dirGid?: number;
    },
  ): Promise<boolean>;
  /** Removes a file or symlink (never a symlink's target); false when it was not there. */
  remove(path: string, options?: FilesScope): Promise<boolean>;
  /** A directory's entries sorted by name (symlinks reported as such); undefined when missing. */
  list(path: string, options?: FilesScope): Promise<DirEntry[] | undefined>;
  /** Type, size, mode and owner of the path itself; undefined when missing. */
  stat(path: string, options?: FilesScope): Promise<FileStat | undefined>;
  /** Creates a directory and missing parents (default mode 0o755). */
  mkdir(path: string, options?: FilesScope & { readonly mode?: number }): Promise<void>;
}

export interface Drivers {
  readonly exec: Exec;
  readonly ip: IpDriver;
  readonly files: FilesDriver;
  /** nftables (port-map kind). */
  readonly nft: NftDriver;
  /** Images and container trees (image, container kinds) and files inside them. */
  readonly rootfs: RootfsDriver;
  /** Kernel parameters (sysctl kind). */
  readonly sysctl: SysctlDriver;
  /** The cluster PKI's keys, requests and signing (pki kind). */
  readonly openssl: OpensslDriver;
  /** Containers (machine, container-address kinds); absent in fakes that do not need it. */
  readonly nspawn?: NspawnDriver;
  /** ACME orders (certificate kind); absent in fakes that do not need it. */
  readonly acme?: AcmeDriver;
  /** The reverse proxy (reverse-proxy kind); absent in fakes that do not need it. */
  readonly haproxy?: HaproxyDriver;
  /** Host-to-host tunnels (vpn-link kind); absent in fakes that do not need it. */
  readonly openvpn?: OpenvpnDriver;
  /** Whether containers answer (status, the check after an apply); absent in fakes that do not probe. */
  readonly ping?: PingDriver;
  /** The host's account files (jump-account and ssh-jump kinds); absent in fakes that do not need it. */
  readonly accounts?: AccountsDriver;
  /** The host's OpenSSH server (ssh-jump kind); absent in fakes that do not need it. */
  readonly sshd?: SshdDriver;
}
