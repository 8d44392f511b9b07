// How containers run on this host (SPEC §3): the runtime choice (systemd or direct), the shape
// both runtimes share, and sc's per-machine state record under <root>/run/srvctl — read for
// all machines in one pass (state files + /proc, no subprocess per machine).
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import type { ExecResult } from './types.js';

export type RuntimeSetting = 'auto' | 'systemd' | 'direct';
export type RuntimeKind = 'systemd' | 'direct';

/** `auto`: systemd iff it is PID 1 (the marker directory systemd creates at boot). */
export function resolveRuntime(setting: RuntimeSetting | undefined, exists: (p: string) => boolean = existsSync): RuntimeKind {
  if (setting === 'systemd' || setting === 'direct') return setting;
  return exists('/run/systemd/system') ? 'systemd' : 'direct';
}

/** What a start needs beyond the files the container kind wrote. */
export interface MachineLaunch {
  readonly name: string;
  /** The hash of the inputs that need a restart; recorded so a change is seen as drift. */
  readonly config: string;
  /** Signal nspawn sends init to stop it: SIGUSR2 for busybox init, SIGRTMIN+3 for systemd. */
  readonly killSignal: string;
  /** Environment for init (busybox rcS reads ADDR/GW). */
  readonly env: Readonly<Record<string, string>>;
}

export type MachineState = 'running' | 'stopped';

/** One machine as sc knows it: its state record, with liveness checked against /proc. */
export interface MachineRecord {
  readonly name: string;
  readonly runtime: RuntimeKind;
  readonly state: MachineState;
  readonly config?: string;
  /** The nspawn (supervisor) pid. */
  readonly pid?: number;
  /** The container's init (PID 1 inside): the door into its namespaces. */
  readonly initPid?: number;
  readonly started?: string;
  readonly netns?: string;
  /** A record says running but its processes are gone. */
  readonly stale?: boolean;
}

export interface MachineRuntime {
  readonly kind: RuntimeKind;
  /** Every machine sc has a record of, in one pass. */
  list(): Promise<MachineRecord[]>;
  /** One machine's record (undefined: none), without reading every other machine's. */
  find?(name: string): Promise<MachineRecord | undefined>;
  /** Starts (after clearing leftovers of a dead run) and records the machine; resolves once init runs. */
  start(launch: MachineLaunch): Promise<MachineRecord>;
  /** Stops it (gracefully, then hard) and keeps a stopped record with this config. */
  stop(name: string, config: string): Promise<void>;
  /** Records a machine that should exist but not run, without starting it. */
  markStopped(name: string, config: string): Promise<void>;
  /** Stops it and forgets it (record, settings copy, cgroup). */
  remove(name: string): Promise<void>;
}

/**
 * A running machine's `host0` as seen inside its network namespace: present (with the ifindex of
 * its veth peer on the host side, the `vb-…` link), missing (no host0: its veth was deleted), or
 * unreadable (the namespace could not be entered, e.g. init exited since the listing).
 */
export type Host0Link =
  | { readonly state: 'present'; readonly ifindex: number; readonly peerIndex?: number; readonly up: boolean }
  | { readonly state: 'missing' }
  | { readonly state: 'unreadable'; readonly reason: string };

/**
 * What sc reads of a machine's network, in one process per machine: the default route and host0
 * with its addresses (whose JSON carries host0's ifindex, peer index and flags too). The machine
 * kind (host0's link) and the container-address kind (addresses, gateway) both read it: within one
 * observation pass (shareReads) each machine's namespace is entered once, not once per kind.
 */
export const NET_OBSERVE_BATCH = 'route show default\naddr show dev host0\n';
export const NET_OBSERVE_COMMAND = ['ip', '-j', '-force', '-batch', '-'] as const;

export interface NspawnDriver {
  /** The runtime for a setting (`auto` resolved once per process). */
  runtime(setting?: RuntimeSetting): MachineRuntime;
  /** Runs a command inside a running machine's namespaces (`nsenter -t <init> -a`). */
  enter(machine: MachineRecord, argv: readonly string[], options?: { net?: boolean; input?: string }): Promise<ExecResult>;
  /** host0 of each running machine: one observeNet() in each namespace, several at once. */
  host0Links(machines: readonly MachineRecord[]): Promise<Map<string, Host0Link>>;
  /** A running machine's default route and host0 with its addresses (NET_OBSERVE_COMMAND in its network namespace). */
  observeNet?(machine: MachineRecord): Promise<ExecResult>;
  /** Until the returned function is called, observeNet() enters each machine once and shares the answer. */
  shareReads?(): () => void;
  /** Runs `argv` inside a running machine on the caller's terminal (all of init's namespaces); its exit code. */
  shell?(machine: MachineRecord, argv: readonly string[], env: Readonly<Record<string, string>>): Promise<number>;
}

// ---- the state record --------------------------------------------------------------------------

/** sc's mark in each record: only files carrying it are machines sc owns. */
export const STATE_MARK = 'srvctl-machine';
export const STATE_DIR = '/run/srvctl';

export interface StateFile {
  readonly srvctl: typeof STATE_MARK;
  readonly name: string;
  readonly runtime: RuntimeKind;
  readonly state: MachineState;
  readonly config: string;
  readonly pid?: number;
  readonly init_pid?: number;
  readonly started?: string;
  readonly netns?: string;
}

/** Machine names double as file names, cgroup names and nspawn -M: one safe spelling. */
export const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function stateFilePath(stateDir: string, name: string): string {
  if (!MACHINE_NAME.test(name)) throw new Error(`"${name}" is not a valid machine name`);
  return path.join(stateDir, `${name}.json`);
}

export async function writeStateFile(stateDir: string, state: StateFile): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await writeFileAtomic(stateFilePath(stateDir, state.name), `${JSON.stringify(state, null, 2)}\n`);
}

export async function removeStateFile(stateDir: string, name: string): Promise<void> {
  await rm(stateFilePath(stateDir, name), { force: true });
}

function parseStateFile(text: string): StateFile | undefined {
  try {
    const value = JSON.parse(text) as Partial<StateFile>;
    if (value.srvctl !== STATE_MARK || typeof value.name !== 'string' || !MACHINE_NAME.test(value.name)) return undefined;
    if (value.state !== 'running' && value.state !== 'stopped') return undefined;
    return value as StateFile;
  } catch {
    return undefined;
  }
}

/** Every sc state record in the directory (foreign or broken files are skipped). */
export async function readStateFiles(stateDir: string): Promise<StateFile[]> {
  const names = await readdir(stateDir).catch(() => [] as string[]);
  const files = await Promise.all(
    names
      .filter((n) => n.endsWith('.json'))
      .map(async (n) => {
        const file = parseStateFile(await readFile(path.join(stateDir, n), 'utf8').catch(() => ''));
        // A record copied under another name is not the record of the machine it names.
        return file && `${file.name}.json` === n ? file : undefined;
      }),
  );
  return files.filter((f): f is StateFile => f !== undefined);
}

/** The record of one machine, if there is a valid one (same checks as readStateFiles). */
export async function readStateFileOf(stateDir: string, name: string): Promise<StateFile | undefined> {
  if (!MACHINE_NAME.test(name)) return undefined;
  const file = parseStateFile(await readFile(stateFilePath(stateDir, name), 'utf8').catch(() => ''));
  return file?.name === name ? file : undefined;
}

// ---- /proc -------------------------------------------------------------------------------------

/**
 * Alive and not a zombie (sandbox.md §4d: orphans are reaped late here, so `kill -0` lies), and,
 * when `command` is given, still that program — a recycled pid is not our machine.
 */
export async function processRuns(pid: number | undefined, command?: string): Promise<boolean> {
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return false;
  if (command === undefined) return true;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').some((arg) => path.basename(arg) === command);
}

/** The pid of the process that is PID 1 in its own pid namespace among `pids` (the container's init). */
export async function findInitPid(pids: readonly number[]): Promise<number | undefined> {
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const nspid = /^NSpid:\s*(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return pid;
  }
  return undefined;
}

/** A state record checked against /proc: running only while both nspawn and init live. */
export async function liveRecord(file: StateFile): Promise<MachineRecord> {
  const base = {
    name: file.name,
    runtime: file.runtime,
    config: file.config,
    ...(file.started !== undefined ? { started: file.started } : {}),
    ...(file.netns !== undefined ? { netns: file.netns } : {}),
  };
  if (file.state !== 'running') return { ...base, state: 'stopped' };
  const [nspawnRuns, initRuns] = await Promise.all([processRuns(file.pid, 'systemd-nspawn'), processRuns(file.init_pid)]);
  if (nspawnRuns && initRuns) return { ...base, state: 'running', pid: file.pid, initPid: file.init_pid };
  return { ...base, state: 'stopped', stale: true };
}
