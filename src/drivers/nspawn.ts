// The nspawn driver: picks the container runtime (systemd or direct) for this host and runs
// commands inside running machines. Both runtimes share the MachineRuntime shape of runtime.ts.
import type { Logger } from 'pino';
import { detectCgroupLayout, type CgroupLayout } from './cgroups.js';
import { createDirectRuntime } from './nspawn-direct.js';
import { createSystemdRuntime } from './nspawn-systemd.js';
import { resolveRuntime, type MachineRuntime, type NspawnDriver, type RuntimeKind } from './runtime.js';
import type { Exec, FilesDriver } from './types.js';

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

export function createNspawnDriver(options: NspawnDriverOptions): NspawnDriver {
  const runtimes = new Map<RuntimeKind, MachineRuntime>();
  let cgroups: CgroupLayout | undefined = options.cgroups;
  const layout = () => (cgroups ??= detectCgroupLayout());

  return {
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
    async enter(machine, argv, enterOptions = {}) {
      if (machine.state !== 'running' || machine.initPid === undefined) {
        throw new Error(`machine ${machine.name} is not running`);
      }
      // The init pid names the container's namespaces; the --netns wrapper must not apply.
      return options.exec.run('nsenter', enterCommand(machine.initPid, argv, enterOptions.net), {
        inNetns: false,
        allowFailure: true,
        ...(enterOptions.input !== undefined ? { input: enterOptions.input } : {}),
      });
    },
    async shell(machine, argv, env) {
      if (machine.state !== 'running' || machine.initPid === undefined) throw new Error(`machine ${machine.name} is not running`);
      if (!options.exec.interactive) throw new Error('this exec layer cannot run interactive commands');
      return options.exec.interactive('nsenter', enterCommand(machine.initPid, argv), { inNetns: false, env: { ...env } });
    },
  };
}
