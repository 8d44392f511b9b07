// The machine resource: a container of this host running (or stopped, for `enabled: false`) in
// the host's runtime (SPEC §3). Its spec is the state plus a hash of the inputs that need a
// restart, so a changed bridge, address or port restarts only that container, and — while it
// runs — its link to the bridge: a detached or down veth is re-attached in place, a missing one
// (veth deleted, no host0) needs a restart, planned as a replace.
import { createHash } from 'node:crypto';
import type { Container, Model } from '../datastore/model.js';
import type { MachineRuntime, MachineState } from '../drivers/runtime.js';
import type { Drivers } from '../drivers/types.js';
import { ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { BRIDGE_KIND } from './bridge.js';
import { CONTAINER_KIND } from './container.js';
import { containerNetwork, type ContainerNetwork } from './container-files-render.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';
import { imageRecipe } from './image-builders.js';
import { linksByIndex, machineLinkView, observedMachineLink, reattachCommands, type MachineLink, type MachineLinkView } from './machine-link.js';

export const MACHINE_KIND = 'machine';

export interface MachineSpec {
  readonly state: MachineState;
  /** sha256 of the inputs that need a restart (what the machine was started with, when observed). */
  readonly config: string;
  /** Desired only, not compared: what a start passes to nspawn. */
  readonly launch?: { readonly killSignal: string; readonly env: Readonly<Record<string, string>> };
  /** A running machine's attachment to its bridge (desired: the bridge, up). */
  readonly link?: MachineLink;
  /**
   * Observed only: the record says running but nspawn (or init) is gone. Compared, so that a
   * stale machine is cleaned up even when it should be stopped: a SIGKILLed nspawn leaves its
   * payload running, still answering on the container's address.
   */
  readonly stale?: boolean;
  /** Observed only, not compared. */
  readonly pid?: number;
  readonly initPid?: number;
}

/** busybox init stops on SIGUSR2 and ignores nspawn's default; systemd images use SIGRTMIN+3. */
export function killSignalFor(model: Model, type: string): string {
  return imageRecipe(type, model.settings).builder === 'busybox' ? 'SIGUSR2' : 'SIGRTMIN+3';
}

/**
 * Everything that shapes the .nspawn file or the container's network, plus the user-namespace
 * setting: a change to any of these only takes effect on a restart. Files that are re-read live
 * (resolv.conf, hosts) are not in it.
 */
export function machineConfigInputs(model: Model, container: Readonly<Container>, network: ContainerNetwork) {
  const ports = [...(container.mapped_ports ?? [])].map((p) => `${p.proto}:${p.host_port}:${p.container_port}`).sort();
  return {
    type: container.type,
    address: network.cidr,
    gateway: network.gateway,
    bridge: network.bridge,
    ports,
    private_users: model.settings.private_users !== false,
  };
}

export function machineConfigHash(inputs: ReturnType<typeof machineConfigInputs>): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16)}`;
}

function describeOwner(model: Model, container: Readonly<Container>): string {
  if (container.user === 'root') return 'user root';
  return `user ${container.user} (reseller ${model.users[container.user]?.reseller ?? 'root'})`;
}

/** The runtime of this host; the driver is absent only in fakes that do not expect containers. */
export function machineRuntime(drivers: Drivers, host: HostContext): MachineRuntime {
  if (!drivers.nspawn) throw new ScError('this driver set cannot run containers (no nspawn driver)');
  return drivers.nspawn.runtime(host.runtime);
}

function launchOf(want: DesiredObject<MachineSpec>) {
  return { name: want.ref.id, config: want.spec.config, killSignal: want.spec.launch?.killSignal ?? 'SIGRTMIN+3', env: want.spec.launch?.env ?? {} };
}

export const machineHandler = {
  kind: MACHINE_KIND,
  dependsOnKinds: [CONTAINER_KIND],

  desired(model: Model, host: HostContext): DesiredObject<MachineSpec>[] {
    const objects: DesiredObject<MachineSpec>[] = [];
    for (const [name, container] of Object.entries(model.containers)) {
      if (container.host !== host.name) continue;
      const network = containerNetwork(model, host, name, container);
      const running = container.enabled !== false;
      objects.push({
        ref: { kind: MACHINE_KIND, id: name },
        spec: {
          state: running ? 'running' : 'stopped',
          ...(running ? { link: { master: network.bridge, up: true } } : {}),
          config: machineConfigHash(machineConfigInputs(model, container, network)),
          // busybox rcS also reads these (the container kind's network.env is the durable copy).
          launch: { killSignal: killSignalFor(model, container.type), env: { ADDR: network.cidr, GW: network.gateway } },
        },
        // The bridge directly too: a link re-attach must wait for a bridge being (re)created, even
        // when the container's files need nothing. A custom bridge is not sc's.
        dependsOn: [{ kind: CONTAINER_KIND, id: name }, ...(container.bridge ? [] : [{ kind: BRIDGE_KIND, id: network.bridge }])],
        description: `${describeOwner(model, container)}, ${network.ip}`,
      });
    }
    return objects.sort((a, b) => (a.ref.id < b.ref.id ? -1 : a.ref.id > b.ref.id ? 1 : 0));
  },

  /** The records (file reads), then for the running ones host0 inside (in parallel) and the host's links (one call). */
  async observe(drivers: Drivers, host: HostContext): Promise<ObservedObject<MachineSpec>[]> {
    const machines = await machineRuntime(drivers, host).list();
    const running = machines.filter((m) => m.state === 'running' && m.initPid !== undefined);
    const [host0s, links] =
      running.length && drivers.nspawn ? await Promise.all([drivers.nspawn.host0Links(running), drivers.ip.listLinks()]) : [new Map(), []];
    const byIndex = linksByIndex(links);
    return machines.map((m) => {
      const link = m.state === 'running' ? observedMachineLink(host0s.get(m.name), byIndex) : undefined;
      const detail =
        link === undefined
          ? ''
          : link.missing !== undefined
            ? `, link missing (${link.missing})`
            : `, ${link.veth}${link.master ? ` on ${link.master}` : ' on no bridge'}${link.up ? '' : ', down'}`;
      return {
        ref: { kind: MACHINE_KIND, id: m.name },
        spec: {
          state: m.state,
          config: m.config ?? '',
          ...(m.stale ? { stale: true } : {}),
          ...(link !== undefined ? { link } : {}),
          ...(m.pid !== undefined ? { pid: m.pid } : {}),
          ...(m.initPid !== undefined ? { initPid: m.initPid } : {}),
        },
        owned: true,
        description: m.stale
          ? `${m.runtime} runtime, processes gone (stale record)`
          : `${m.runtime} runtime${m.pid !== undefined ? `, pid ${m.pid}` : ''}${detail}`,
      };
    });
  },

  /** The link counts only while the machine runs (a stopped machine has none). */
  normalize(spec: MachineSpec): {
    state: MachineState | 'stale';
    config: string;
    link?: MachineLinkView;
  } {
    return {
      state: spec.stale ? 'stale' : spec.state,
      config: spec.config,
      ...(spec.state === 'running' ? { link: machineLinkView(spec.link) } : {}),
    };
  },

  /** A running machine that lost its link (veth deleted, no host0) is restarted: a replace. */
  canUpdate: (_patch, want, have) => !(want.state === 'running' && have.state === 'running' && have.link?.missing !== undefined),

  async create(drivers: Drivers, host: HostContext, want: DesiredObject<MachineSpec>): Promise<void> {
    const runtime = machineRuntime(drivers, host);
    if (want.spec.state === 'running') await runtime.start(launchOf(want));
    else await runtime.markStopped(want.ref.id, want.spec.config);
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<MachineSpec>, have: ObservedObject<MachineSpec>): Promise<void> {
    const runtime = machineRuntime(drivers, host);
    if (want.spec.state === 'stopped') {
      await runtime.stop(want.ref.id, want.spec.config);
      return;
    }
    const wantLink = want.spec.link;
    const haveLink = have.spec.link;
    if (have.spec.state === 'running' && have.spec.config === want.spec.config && wantLink && haveLink && haveLink.missing === undefined) {
      // Only the link drifted (bridge recreated under it, veth set down or detached): re-attach.
      await drivers.ip.batch(reattachCommands(wantLink, haveLink));
      return;
    }
    // A running machine with another config is restarted; start() clears a dead run's leftovers.
    if (have.spec.state === 'running') await runtime.stop(want.ref.id, have.spec.config);
    await runtime.start(launchOf(want));
  },

  async delete(drivers: Drivers, host: HostContext, have: ObservedObject<MachineSpec>): Promise<void> {
    await machineRuntime(drivers, host).remove(have.ref.id);
  },
} satisfies ResourceHandler<MachineSpec>;
