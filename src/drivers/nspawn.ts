// The nspawn driver: picks the container runtime (systemd or direct) for this host and runs
// commands inside running machines. Both runtimes share the MachineRuntime shape of runtime.ts.
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { detectCgroupLayout, type CgroupLayout } from './cgroups.js';
import { createDirectRuntime } from './nspawn-direct.js';
import { createSystemdRuntime } from './nspawn-systemd.js';
import {
  NET_OBSERVE_BATCH,
  NET_OBSERVE_COMMAND,
  resolveRuntime,
  type Host0Link,
  type MachineRecord,
  type MachineRuntime,
  type NspawnDriver,
  type RuntimeKind,
} from './runtime.js';
import type { Exec, ExecResult, FilesDriver } from './types.js';

export interface NspawnDriverOptions {
  readonly exec: Exec;
  readonly files: FilesDriver;
  readonly root: string;
  readonly netns?: string;
  readonly logger?: Logger;
  /** For tests; detected from /sys/fs/cgroup otherwise. */
  readonly cgroups?: CgroupLayout;
}

/** `nsenter -t <init> …`: all of init's namespaces, or only its network namespace. */
export function enterCommand(initPid: number, argv: readonly string[], net = false): string[] {
  return ['-t', String(initPid), ...(net ? ['-n'] : ['-a']), '--', ...argv];
}

/** Namespaces entered at once to read host0: enough for hundreds of containers, gentle on 2 cores. */
const HOST0_CONCURRENCY = 16;
export const HOST0_COMMAND = ['ip', '-json', 'link', 'show', 'dev', 'host0'] as const;

interface Host0Json {
  ifindex?: number;
  link_index?: number;
  flags?: string[];
}

/**
 * host0 from the answer of HOST0_COMMAND or of NET_OBSERVE_COMMAND (one JSON array per line; the
 * route lines hold no ifindex) run inside a container's network namespace.
 */
export function parseHost0(result: Pick<ExecResult, 'exitCode' | 'stdout' | 'stderr'>): Host0Link {
  let link: Host0Json | undefined;
  try {
    for (const line of result.stdout.split('\n')) {
      if (!line.startsWith('[')) continue;
      link ??= (JSON.parse(line) as Host0Json[]).find((entry) => typeof entry.ifindex === 'number');
    }
  } catch (error) {
    return {
      state: 'unreadable',
      reason: `unreadable output of ip: ${String(error)}`,
    };
  }
  if (link && typeof link.ifindex === 'number') {
    return {
      state: 'present',
      ifindex: link.ifindex,
      ...(typeof link.link_index === 'number' ? { peerIndex: link.link_index } : {}),
      up: (link.flags ?? []).includes('UP'),
    };
  }
  if (result.exitCode !== 0 && !/does not exist|Cannot find device/i.test(result.stderr)) {
    return {
      state: 'unreadable',
      reason: result.stderr.trim() || `exit ${result.exitCode}`,
    };
  }
  return { state: 'missing' };
}

export function createNspawnDriver(options: NspawnDriverOptions): NspawnDriver {
  const runtimes = new Map<RuntimeKind, MachineRuntime>();
  let cgroups: CgroupLayout | undefined = options.cgroups;
  const layout = () => (cgroups ??= detectCgroupLayout());

  const enter: NspawnDriver['enter'] = async (machine, argv, enterOptions = {}) => {
    if (machine.state !== 'running' || machine.initPid === undefined) {
      throw new Error(`machine ${machine.name} is not running`);
    }
    // The init pid names the container's namespaces; the --netns wrapper must not apply.
    return options.exec.run('nsenter', enterCommand(machine.initPid, argv, enterOptions.net), {
      inNetns: false,
      allowFailure: true,
      ...(enterOptions.input !== undefined ? { input: enterOptions.input } : {}),
    });
  };

  /** Per machine (name and init pid), its NET_OBSERVE_COMMAND answer while a share is open. */
  let shared: Map<string, Promise<ExecResult>> | undefined;
  let shares = 0;
  const observeNet = (machine: MachineRecord): Promise<ExecResult> => {
    const key = `${machine.name}\0${machine.initPid ?? ''}`;
    const known = shared?.get(key);
    if (known) return known;
    const answer = enter(machine, NET_OBSERVE_COMMAND, { net: true, input: NET_OBSERVE_BATCH });
    shared?.set(key, answer);
    return answer;
  };

  return {
    enter,
    observeNet,
    shareReads() {
      shares++;
      shared ??= new Map();
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        if (--shares === 0) shared = undefined;
      };
    },
    async host0Links(machines: readonly MachineRecord[]) {
      const queue = new PQueue({ concurrency: HOST0_CONCURRENCY });
      const links = new Map<string, Host0Link>();
      await Promise.all(
        machines.map((machine) =>
          queue.add(async () => {
            try {
              links.set(machine.name, parseHost0(await observeNet(machine)));
            } catch (error) {
              links.set(machine.name, {
                state: 'unreadable',
                reason: error instanceof Error ? error.message : String(error),
              });
            }
          }),
        ),
      );
      return links;
    },
    runtime(setting) {
      const kind = resolveRuntime(setting);
      let runtime = runtimes.get(kind);
      if (!runtime) {
        runtime =
          kind === 'direct'
            ? createDirectRuntime({ root: options.root, files: options.files, netns: options.netns, cgroups: layout(), logger: options.logger })
            : createSystemdRuntime({ exec: options.exec, files: options.files, cgroups: layout() });
        runtimes.set(kind, runtime);
      }
      return runtime;
    },
    async shell(machine, argv, env) {
      if (machine.state !== 'running' || machine.initPid === undefined) throw new Error(`machine ${machine.name} is not running`);
      if (!options.exec.interactive) throw new Error('this exec layer cannot run interactive commands');
      return options.exec.interactive('nsenter', enterCommand(machine.initPid, argv), { inNetns: false, env: { ...env } });
    },
  };
}
