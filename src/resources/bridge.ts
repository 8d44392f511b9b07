// The bridge resource: one Linux bridge per user with a container on this host, holding the
// user's .1/24 (SPEC §2, §3). Observed with one `ip -json` pass, changed with `ip -batch`.
import type { Model, Users } from '../datastore/model.js';
import type { Drivers, IpAddrEntry, IpLink } from '../drivers/types.js';
import { IpBatchError, prepareBatchScript } from '../drivers/ip-batch.js';
import { ConflictError, HostCommandError, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { userSubnet } from '../network/address-plan.js';
import { bridgeName, parseBridgeName } from '../network/interface-names.js';
import { resolveUserNet } from '../network/user-network.js';
import {
  addBridgeCommand,
  BRIDGE_ALIAS_PREFIX,
  bridgeAlias,
  convergeBridgeCommands,
  deleteBridgeCommand,
  SC_BRIDGE_GROUP,
  userOfBridgeAlias,
} from './bridge-commands.js';
import { refString, type BatchOutcome, type DesiredObject, type ObservedObject, type PlannedAction, type ResourceHandler } from './contract.js';

export const BRIDGE_KIND = 'bridge';

export interface BridgeSpec {
  /** IPv4 addresses in CIDR form, sorted (IPv6 link-local addresses are not sc's business). */
  readonly addresses: readonly string[];
  /** Administrative state: `UP` among the link's flags. */
  readonly up: boolean;
  /** The ifalias: sc's mark on desired and owned bridges; whatever a foreign link carries. */
  readonly alias?: string;
  /**
   * Observed links only: the link's kind (`bridge`, `dummy`, `veth`, '' for none). Links that are
   * not bridges are observed only so conflict() sees them in the way; they are never owned.
   */
  readonly linkKind?: string;
}

/** An IPv4 prefix as numbers: the address (unsigned 32-bit) and the prefix length. */
interface Prefix {
  readonly address: number;
  readonly length: number;
}

// Hand-parsed rather than with ipaddr.js: observe() runs this for every address on a host with
// thousands of bridges, on every `sc diff`.
const CIDR_V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

function parsePrefix(cidr: string): Prefix | undefined {
  const m = CIDR_V4.exec(cidr);
  if (!m) return undefined;
  const [a, b, c, d, length] = m.slice(1).map(Number) as [number, number, number, number, number];
  if (a > 255 || b > 255 || c > 255 || d > 255 || length > 32) return undefined;
  return { address: ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, length };
}

const networkOf = (p: Prefix, length = p.length): number => (length === 0 ? 0 : (p.address & (~0 << (32 - length))) >>> 0);

/** Whether two IPv4 prefixes share any address (the shorter one contains the other's network). */
export function prefixesOverlap(a: string, b: string): boolean {
  const pa = parsePrefix(a);
  const pb = parsePrefix(b);
  if (!pa || !pb) return false;
  const shorter = Math.min(pa.length, pb.length);
  return networkOf(pa, shorter) === networkOf(pb, shorter);
}

const formatNetwork = (p: Prefix): string => {
  const n = networkOf(p);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${p.length}`;
};

/** Foreign non-bridge links matter only when they could collide with a bridge of the plan. */
const inFarmNetwork = (cidr: string): boolean => prefixesOverlap(cidr, '10.0.0.0/8');

/** Numeric order (10.9… before 10.10…), so the same set always reads the same. */
function sortCidrs(cidrs: string[]): string[] {
  if (cidrs.length < 2) return cidrs;
  const key = (c: string) => {
    const p = parsePrefix(c);
    return p ? p.address * 64 + p.length : Number.MAX_SAFE_INTEGER;
  };
  return cidrs.sort((x, y) => key(x) - key(y) || (x < y ? -1 : x > y ? 1 : 0));
}

function describeUser(users: Readonly<Users>, username: string): string {
  const reseller = Object.hasOwn(users, username) ? users[username]?.reseller : undefined;
  return username === 'root' ? 'user root' : `user ${username} (reseller ${reseller ?? 'root'})`;
}

/** The bridge of one user on this host. */
export function desiredBridge(users: Readonly<Users>, username: string, host: HostContext): DesiredObject<BridgeSpec> {
  const net = resolveUserNet(users, username, host.host.hostnet);
  if ('problem' in net) {
    // Validation rejects such a datastore before any handler runs; reaching this is a bug upstream.
    throw new UserError(`cannot place the bridge of user "${username}" on ${host.name}: ${net.problem}`);
  }
  return {
    ref: { kind: BRIDGE_KIND, id: bridgeName(net) },
    spec: { addresses: [userSubnet(net).bridgeCidr], up: true, alias: bridgeAlias(username) },
    description: describeUser(users, username),
  };
}

/**
 * sc's bridges carry its alias. A bridge without any alias but in sc's device group and with an
 * sc bridge name is one an interrupted run created and had not marked yet: still sc's.
 */
function isOwnedBridge(link: IpLink): boolean {
  if (link.linkinfo?.info_kind !== 'bridge') return false;
  if (link.ifalias !== undefined && link.ifalias !== '') {
    return link.ifalias === BRIDGE_ALIAS_PREFIX || link.ifalias.startsWith(`${BRIDGE_ALIAS_PREFIX} `);
  }
  return String(link.group) === String(SC_BRIDGE_GROUP) && parseBridgeName(link.ifname) !== undefined;
}

function ipv4ByIndex(entries: readonly IpAddrEntry[]): Map<number, string[]> {
  const byIndex = new Map<number, string[]>();
  for (const entry of entries) {
    const v4 = (entry.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    byIndex.set(entry.ifindex, sortCidrs(v4));
  }
  return byIndex;
}

/** Every bridge, plus the other links that hold farm addresses or look like sc bridges. */
export function observedBridges(links: readonly IpLink[], addresses: readonly IpAddrEntry[]): ObservedObject<BridgeSpec>[] {
  const v4 = ipv4ByIndex(addresses);
  const observed: ObservedObject<BridgeSpec>[] = [];
  for (const link of links) {
    const linkKind = link.linkinfo?.info_kind ?? '';
    const cidrs = v4.get(link.ifindex) ?? [];
    const relevant = linkKind === 'bridge' || parseBridgeName(link.ifname) !== undefined || cidrs.some(inFarmNetwork);
    if (!relevant) continue;
    const owned = isOwnedBridge(link);
    const user = owned ? userOfBridgeAlias(link.ifalias) : undefined;
    observed.push({
      ref: { kind: BRIDGE_KIND, id: link.ifname },
      spec: {
        addresses: cidrs,
        up: link.flags.includes('UP'),
        ...(link.ifalias ? { alias: link.ifalias } : {}),
        linkKind,
      },
      owned,
      description: owned ? (user ? `user ${user}` : 'unfinished (no alias yet)') : `foreign ${linkKind || 'link'}`,
    });
  }
  return observed;
}

const linkLabel = (o: ObservedObject<BridgeSpec>): string =>
  `${o.spec.linkKind === 'bridge' ? 'bridge' : `${o.spec.linkKind || 'link'} link`} ${o.ref.id}`;

export const bridgeHandler = {
  kind: BRIDGE_KIND,

  desired(model: Model, host: HostContext): DesiredObject<BridgeSpec>[] {
    const users = new Set<string>();
    for (const container of Object.values(model.containers)) {
      // A container with a custom bridge uses that bridge, which sc does not manage.
      if (container.host === host.name && !container.bridge) users.add(container.user);
    }
    return [...users].sort().map((u) => desiredBridge(model.users, u, host));
  },

  async observe(drivers: Drivers): Promise<ObservedObject<BridgeSpec>[]> {
    const [links, addresses] = await Promise.all([drivers.ip.listLinks(), drivers.ip.listAddresses()]);
    return observedBridges(links, addresses);
  },

  // Only what sc sets: the alias and link kind are ownership, not state to converge.
  normalize(spec: BridgeSpec): { addresses: string[]; up: boolean } {
    return { addresses: sortCidrs([...spec.addresses]), up: spec.up };
  },

  conflict(want: DesiredObject<BridgeSpec>, observed: readonly ObservedObject<BridgeSpec>[]): string | undefined {
    const problems: string[] = [];
    for (const other of observed) {
      if (other.owned) continue;
      if (other.ref.id === want.ref.id) {
        problems.push(
          `foreign ${linkLabel(other)} (not created by sc: no "${BRIDGE_ALIAS_PREFIX}" alias) has this bridge's name; remove or rename it`,
        );
        continue;
      }
      for (const held of other.spec.addresses) {
        const clash = want.spec.addresses.find((mine) => prefixesOverlap(held, mine));
        if (clash) {
          const subnet = parsePrefix(clash);
          const network = subnet ? formatNetwork(subnet) : clash;
          problems.push(`foreign ${linkLabel(other)} holds ${held}, which overlaps ${network} of this bridge; remove that address`);
        }
      }
    }
    return problems.length > 0 ? problems.join('; ') : undefined;
  },

  canUpdate: () => true,

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<BridgeSpec>): Promise<void> {
    const name = want.ref.id;
    try {
      await drivers.ip.batch([addBridgeCommand(name)]);
    } catch (error) {
      if (!(error instanceof HostCommandError) || !/File exists/i.test(error.stderr)) throw error;
      // Created since the plan was made — by an interrupted batch of this run, or by someone else.
      const found = (await bridgeHandler.observe(drivers)).find((o) => o.ref.id === name);
      if (!found?.owned) {
        throw new ConflictError(`link ${name} appeared after the plan was made and is not sc's; it is left alone`, { cause: error });
      }
      await drivers.ip.batch(convergeBridgeCommands(name, want.spec, found.spec));
      return;
    }
    await drivers.ip.batch(convergeBridgeCommands(name, want.spec));
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<BridgeSpec>, have: ObservedObject<BridgeSpec>): Promise<void> {
    assertOwned(have, 'update');
    await drivers.ip.batch(convergeBridgeCommands(want.ref.id, want.spec, have.spec));
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<BridgeSpec>): Promise<void> {
    assertOwned(have, 'delete');
    try {
      await drivers.ip.batch([deleteBridgeCommand(have.ref.id)]);
    } catch (error) {
      // Already gone (deleted by hand, or by a batch line whose failure was about something else).
      if (error instanceof HostCommandError && /Cannot find device/.test(error.stderr)) return;
      throw error;
    }
  },

  /**
   * Many bridges in two `ip -force -batch` runs: first every delete, update and `link add`; then
   * the alias, address and up of the bridges whose `link add` succeeded. With -force every line
   * runs even after a failure, so configuring a bridge in the same run as its `link add` could,
   * if the add failed because a foreign link took the name, mark and readdress that foreign link.
   */
  async applyBatch(drivers: Drivers, _host: HostContext, actions: readonly PlannedAction<BridgeSpec>[]): Promise<BatchOutcome> {
    const failed = new Set<string>();
    const first = new BatchLines();
    const creating: DesiredObject<BridgeSpec>[] = [];
    for (const action of actions) {
      const key = refString(action.ref);
      const { want, have } = action;
      if (have && !have.owned && action.type !== 'create') {
        // The executor never sends these; if one slips through, the single-object path refuses it.
        failed.add(key);
        continue;
      }
      if ((action.type === 'delete' || action.type === 'replace') && have) {
        first.add(key, [deleteBridgeCommand(have.ref.id)]);
      }
      if (action.type === 'update' && want && have) {
        first.add(key, convergeBridgeCommands(want.ref.id, want.spec, have.spec));
      }
      if ((action.type === 'create' || action.type === 'replace') && want) {
        first.add(key, [addBridgeCommand(want.ref.id)]);
        creating.push(want);
      }
    }
    const firstRun = first.run(drivers, failed);
    // The new bridges' settings are worked out while ip creates them (thousands of lines at a
    // large apply); only the lines of bridges whose creation succeeded are sent.
    await new Promise((resolve) => setImmediate(resolve));
    const settle = new BatchLines();
    for (const want of creating) settle.add(refString(want.ref), convergeBridgeCommands(want.ref.id, want.spec));
    settle.prepare();
    await firstRun;
    await settle.without(failed).run(drivers, failed);
    return { failed };
  },
} satisfies ResourceHandler<BridgeSpec>;

function assertOwned(have: ObservedObject<BridgeSpec>, what: string): void {
  if (!have.owned) throw new ConflictError(`refusing to ${what} ${have.ref.id}: it was not created by sc`);
}

/** Batch lines with the ref each line belongs to, so failed line numbers name failed objects. */
class BatchLines {
  private readonly commands: string[][] = [];
  private readonly owners: string[] = [];
  /** The commands, frozen with their script encoded ahead (prepare()); nothing is added after. */
  private prepared: readonly (readonly string[])[] | undefined;

  add(owner: string, commands: readonly string[][]): void {
    if (Object.isFrozen(this.commands)) throw new Error('BatchLines: add() after prepare()');
    for (const command of commands) {
      this.commands.push(command);
      this.owners.push(owner);
    }
  }

  /** The lines of every owner not in `skip` (this batch itself when none is skipped). */
  without(skip: ReadonlySet<string>): BatchLines {
    if (!this.owners.some((owner) => skip.has(owner))) return this;
    const kept = new BatchLines();
    this.owners.forEach((owner, i) => {
      if (!skip.has(owner)) kept.add(owner, [this.commands[i] as string[]]);
    });
    return kept;
  }

  /** Encodes the script now (while another batch runs); run() then only sends it. */
  prepare(): this {
    try {
      this.prepared ??= prepareBatchScript(this.commands);
    } catch {
      // A line ip's tokenizer cannot carry: run() meets the same error and fails its objects.
    }
    return this;
  }

  async run(drivers: Drivers, failed: Set<string>): Promise<void> {
    if (this.commands.length === 0) return;
    try {
      await drivers.ip.batch(this.prepared ?? this.commands);
    } catch (error) {
      if (error instanceof IpBatchError) {
        for (const index of error.failedIndices) {
          const owner = this.owners[index];
          if (owner !== undefined) failed.add(owner);
        }
      } else {
        // Nothing known about which lines ran (ip missing, timeout): all of them are retried.
        for (const owner of this.owners) failed.add(owner);
      }
    }
  }
}
