// The container-address resource: host0 inside each running container holds the container's
// address and a default route via its bridge's .1 (SPEC §3). Images without networkd (busybox)
// cannot do that themselves on every boot, so sc checks and sets it from the host side, in the
// container's network namespace — one `ip -batch` per container, all containers in parallel.
import type { Model } from '../datastore/model.js';
import { NET_OBSERVE_BATCH, type MachineRecord } from '../drivers/runtime.js';
import type { Drivers } from '../drivers/types.js';
import { HostCommandError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { containerNetwork } from './container-files-render.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';
import { MACHINE_KIND, machineRuntime } from './machine.js';

export const CONTAINER_ADDRESS_KIND = 'container-address';
export const CONTAINER_LINK = 'host0';

export interface ContainerAddressSpec {
  /** IPv4 addresses on host0 in CIDR form, sorted. */
  readonly addresses: readonly string[];
  /** The default route's gateway; null when there is none. */
  readonly gateway: string | null;
  readonly up: boolean;
}

/** What one container's namespace is asked: the default route first, so a missing host0 cannot shift it. */
export const OBSERVE_BATCH = NET_OBSERVE_BATCH;

interface IpRoute {
  dst?: string;
  gateway?: string;
}
interface IpAddr {
  ifname?: string;
  flags?: string[];
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** Parses `ip -j -force -batch` output of OBSERVE_BATCH: one JSON array per answered line. */
export function parseObservation(stdout: string): ContainerAddressSpec | undefined {
  const arrays = stdout
    .split('\n')
    .filter((line) => line.startsWith('['))
    .map((line) => JSON.parse(line) as unknown[]);
  const routes = (arrays[0] ?? []) as IpRoute[];
  const link = (arrays[1] as IpAddr[] | undefined)?.[0];
  if (!link) return undefined; // no host0 (yet): the container's network is not there
  const addresses = (link.addr_info ?? [])
    .filter((a) => a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();
  const gateway = routes.find((r) => r.dst === 'default' && r.gateway !== undefined)?.gateway ?? null;
  return { addresses, gateway, up: (link.flags ?? []).includes('UP') };
}

/**
 * ip commands (without `ip`) that take host0 from `have` to `want`: removals first (the route
 * before the address it goes through, which would take the route with it), then additions.
 */
export function convergeCommands(want: ContainerAddressSpec, have?: ContainerAddressSpec): string[][] {
  const commands: string[][] = [];
  if (want.gateway === null && have?.gateway) commands.push(['route', 'del', 'default']);
  for (const extra of have?.addresses ?? []) {
    if (!want.addresses.includes(extra)) commands.push(['addr', 'del', extra, 'dev', CONTAINER_LINK]);
  }
  for (const address of want.addresses) {
    if (!have?.addresses.includes(address)) commands.push(['addr', 'replace', address, 'dev', CONTAINER_LINK]);
  }
  if (want.up && !have?.up) commands.push(['link', 'set', CONTAINER_LINK, 'up']);
  // An address change drops the routes through the old one: re-add the route whenever it changed.
  const addressesChanged = (have?.addresses ?? []).join() !== want.addresses.join();
  if (want.gateway !== null && (have?.gateway !== want.gateway || addressesChanged)) {
    commands.push(['route', 'replace', 'default', 'via', want.gateway, 'dev', CONTAINER_LINK]);
  }
  return commands;
}

/** One machine's record: read alone where the runtime can, else picked from the listing. */
async function findMachine(drivers: Drivers, host: HostContext, name: string): Promise<MachineRecord | undefined> {
  const runtime = machineRuntime(drivers, host);
  return runtime.find ? runtime.find(name) : (await runtime.list()).find((m) => m.name === name);
}

async function runningMachine(drivers: Drivers, host: HostContext, name: string): Promise<MachineRecord> {
  const machine = await findMachine(drivers, host, name);
  if (machine?.state !== 'running' || machine.initPid === undefined) {
    throw new ScError(`container ${name} is not running, so its address cannot be set`);
  }
  return machine;
}

async function applyCommands(drivers: Drivers, machine: MachineRecord, commands: readonly string[][]): Promise<void> {
  if (commands.length === 0 || !drivers.nspawn) return;
  const result = await drivers.nspawn.enter(machine, ['ip', '-batch', '-'], { net: true, input: `${commands.map((c) => c.join(' ')).join('\n')}\n` });
  if (result.exitCode !== 0) throw new HostCommandError(result.command, result.exitCode, result.stderr, result.stdout);
}

export const containerAddressHandler = {
  kind: CONTAINER_ADDRESS_KIND,
  dependsOnKinds: [MACHINE_KIND],

  desired(model: Model, host: HostContext): DesiredObject<ContainerAddressSpec>[] {
    const objects: DesiredObject<ContainerAddressSpec>[] = [];
    for (const [name, container] of Object.entries(model.containers)) {
      if (container.host !== host.name || container.enabled === false) continue;
      const network = containerNetwork(model, host, name, container);
      objects.push({
        ref: { kind: CONTAINER_ADDRESS_KIND, id: name },
        spec: { addresses: [network.cidr], gateway: network.gateway, up: true },
        dependsOn: [{ kind: MACHINE_KIND, id: name }],
        description: `${network.cidr} via ${network.gateway}`,
      });
    }
    return objects.sort((a, b) => (a.ref.id < b.ref.id ? -1 : a.ref.id > b.ref.id ? 1 : 0));
  },

  /** Every running sc machine's host0, all namespaces entered in parallel. */
  async observe(drivers: Drivers, host: HostContext): Promise<ObservedObject<ContainerAddressSpec>[]> {
    const nspawn = drivers.nspawn;
    if (!nspawn) return [];
    const running = (await machineRuntime(drivers, host).list()).filter((m) => m.state === 'running' && m.initPid !== undefined);
    const observed = await Promise.all(
      running.map(async (machine): Promise<ObservedObject<ContainerAddressSpec> | undefined> => {
        // The machine kind reads host0 from the same answer (one nsenter per machine and pass).
        const result = nspawn.observeNet
          ? await nspawn.observeNet(machine)
          : await nspawn.enter(machine, ['ip', '-j', '-force', '-batch', '-'], { net: true, input: OBSERVE_BATCH });
        const spec = parseObservation(result.stdout);
        // Exited between the listing and now, or no host0: nothing observed, a create is planned.
        if (!spec) return undefined;
        return { ref: { kind: CONTAINER_ADDRESS_KIND, id: machine.name }, spec, owned: true };
      }),
    );
    return observed.filter((o): o is ObservedObject<ContainerAddressSpec> => o !== undefined);
  },

  normalize(spec: ContainerAddressSpec): ContainerAddressSpec {
    return { addresses: [...spec.addresses].sort(), gateway: spec.gateway, up: spec.up };
  },

  canUpdate: () => true,

  async create(drivers: Drivers, host: HostContext, want: DesiredObject<ContainerAddressSpec>): Promise<void> {
    const machine = await runningMachine(drivers, host, want.ref.id);
    // Observed afresh: the image's own boot scripts may have set part of it meanwhile.
    const result = await drivers.nspawn?.enter(machine, ['ip', '-j', '-force', '-batch', '-'], { net: true, input: OBSERVE_BATCH });
    await applyCommands(drivers, machine, convergeCommands(want.spec, parseObservation(result?.stdout ?? '')));
  },

  // Same as create: a machine restarted since the plan was made has a fresh, empty host0.
  async update(drivers: Drivers, host: HostContext, want: DesiredObject<ContainerAddressSpec>): Promise<void> {
    await containerAddressHandler.create(drivers, host, want);
  },

  /** A container that should no longer have its address (disabled, removed) but still runs. */
  async delete(drivers: Drivers, host: HostContext, have: ObservedObject<ContainerAddressSpec>): Promise<void> {
    const machine = await findMachine(drivers, host, have.ref.id);
    if (machine?.state !== 'running') return; // stopped meanwhile: its namespace and address are gone
    await applyCommands(drivers, machine, convergeCommands({ addresses: [], gateway: null, up: have.spec.up }, have.spec));
  },
} satisfies ResourceHandler<ContainerAddressSpec>;
