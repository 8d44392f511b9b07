// Containers: srvctl 3.2 addressed a container 10.HOSTNET.USER_ID.C, so its old address names its
// host (the one with that hostnet; there was no host field). Each gets its host and a new address
// in sc's plan (lowest free from .20 in its owner's /24 on that host, in the order of the old
// addresses). Bridge containers keep their bridge. Every field sc or srvctl 3 knows is carried.
import { allocateContainerAddress, parseIPv4Octets, PlanError } from '../network/address-plan.js';
import { resolveUserNet, ROOT_USERNAME } from '../network/user-network.js';
import type { Users } from '../datastore/model.js';
import type { ImportContext } from './import-context.js';
import { carriedSrvctl3Fields, SC_FIELDS, type Record3 } from './srvctl3-fields.js';
import type { HostPlan } from './srvctl3-hosts.js';

export interface ContainerPlan {
  /** The new containers document, in the srvctl 3 file's order. */
  readonly containers: Record<string, Record3>;
  /** Container → its srvctl 3.2 address (absent for a bridge container that had none). */
  readonly oldAddresses: ReadonlyMap<string, string>;
}

const isRecord = (value: unknown): value is Record3 => typeof value === 'object' && value !== null && !Array.isArray(value);

/** srvctl 3 network overrides that describe the old network; sc derives all three from its plan. */
const OLD_NETWORK_FIELDS = ['br', 'gateway', 'interface'];
/** What this module turns into sc's fields itself: sc's own container fields and the old network overrides. */
const HANDLED = [...SC_FIELDS.containers, ...OLD_NETWORK_FIELDS];

interface Placed {
  readonly name: string;
  readonly record: Record3;
  readonly user: string;
  readonly host: string;
  readonly hostnet: number;
  readonly oldIp?: string;
  /** For ordering: the old address as a number. */
  readonly order: number;
}

/** srvctl 3 stored port numbers as it parsed them: numbers, sometimes strings. */
function portNumber(value: unknown): unknown {
  return typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
}

function mappedPorts(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((port: unknown) => {
    if (!isRecord(port)) return port;
    const { proto, host_port, container_port, ...rest } = port;
    // srvctl 3's map-port defaulted to tcp.
    return { proto: proto ?? 'tcp', host_port: portNumber(host_port), container_port: portNumber(container_port), ...rest };
  });
}

/** DNS names are case-insensitive; sc stores them in lowercase. */
function lowercaseNames(value: unknown): unknown {
  return Array.isArray(value) ? value.map((v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v)) : value;
}

export function mapContainers(ctx: ImportContext, hosts: HostPlan, users: Readonly<Users>): ContainerPlan {
  const data = ctx.document('containers').data as Record3;
  const oldUsers = ctx.document('users').data as Record3;
  const ipOwner = new Map<string, string>();
  const placed: Placed[] = [];
  const onlyHost = hosts.mappings.length === 1 ? hosts.mappings[0] : undefined;
  const hostList = hosts.mappings.map((h) => `${h.old_hostnet} ${h.name}`).join(', ');
  const overrides = ctx.options.containerHosts ?? new Map<string, string>();
  for (const [name, host] of overrides) {
    if (!Object.hasOwn(data, name)) ctx.optionError(`--container-host ${name}=${host}: there is no container "${name}" in containers.json`);
    if (!hosts.byName.has(host)) ctx.optionError(`--container-host ${name}=${host}: there is no host "${host}" in the clusters`);
  }

  const noHost = new Map<number, { name: string; ip: string }[]>();
  for (const [name, record] of Object.entries(data)) {
    if (!isRecord(record)) {
      ctx.error('containers', [name], 'a container must be an object (user, ip, type, …)');
      continue;
    }
    let ok = true;
    const fail = (path: (string | number)[], message: string): void => {
      ctx.error('containers', [name, ...path], message);
      ok = false;
    };
    const user = record.user;
    if (typeof user !== 'string') fail(['user'], 'no owner (user)');
    else if (user !== ROOT_USERNAME && !Object.hasOwn(oldUsers, user)) fail(['user'], `owner "${user}" is not in users.json`);
    if (typeof record.type !== 'string') fail(['type'], 'no type (the base image: fedora, mail, codepad, …)');
    const bridge = record.bridge;
    if (bridge !== undefined && typeof bridge !== 'string') fail(['bridge'], `bridge ${JSON.stringify(bridge)} is not a bridge name`);

    // The host: from the old address, or --container-host, or the only host there is.
    let oldIp: string | undefined;
    let fromAddress: string | undefined;
    let order = Number.MAX_SAFE_INTEGER;
    const ip = record.ip;
    if (ip !== undefined) {
      const octets = typeof ip === 'string' && !ip.includes('/') ? parseIPv4Octets(ip) : undefined;
      if (typeof ip === 'string' && /nan/i.test(ip)) {
        fail(
          ['ip'],
          `address "${ip}" is not an address: srvctl 3.2's new_reseller bug (the owner's reseller had no user_id); set the address the container really has (\`ip addr\` inside it)`,
        );
      } else if (!octets) {
        fail(['ip'], `${JSON.stringify(ip)} is not an IPv4 address`);
      } else {
        oldIp = ip as string;
        order = ((octets[0] * 256 + octets[1]) * 256 + octets[2]) * 256 + octets[3];
        const other = ipOwner.get(oldIp);
        if (other !== undefined) fail(['ip'], `address ${oldIp} is also the address of "${other}"`);
        else ipOwner.set(oldIp, name);
        const host = octets[0] === 10 ? hosts.byOldHostnet.get(octets[1]) : undefined;
        if (host) fromAddress = host.name;
        else if (bridge === undefined && octets[0] !== 10) fail(['ip'], `address ${oldIp} is not a srvctl 3 address (10.HOSTNET.USER_ID.N)`);
        else if (bridge === undefined) {
          // One error per missing hostnet (a host's hostnet typo strands all its containers), at its first container.
          noHost.set(octets[1], [...(noHost.get(octets[1]) ?? []), { name, ip: oldIp }]);
          ok = false;
        }
        const owner = typeof user === 'string' ? oldUsers[user] : undefined;
        const ownerId = isRecord(owner) ? owner.user_id : undefined;
        if (host && typeof ownerId === 'number' && ownerId !== octets[2]) {
          ctx.warn(
            'containers',
            name,
            `address ${oldIp} is in the network of user_id ${octets[2]}, but its owner ${String(user)} has user_id ${ownerId}: sc puts it into its owner's network`,
          );
        }
      }
    }
    const override = overrides.get(name);
    if (override !== undefined && fromAddress !== undefined && override !== fromAddress) {
      ctx.optionError(`--container-host ${name}=${override}: its address ${oldIp} says it runs on ${fromAddress}`);
      ok = false;
    }
    let host = override ?? fromAddress;
    if (host === undefined && ok && onlyHost) {
      host = onlyHost.name;
      ctx.warn(
        'containers',
        name,
        `${oldIp === undefined ? 'no address' : `address ${oldIp} (not in the farm's plan)`}: placed on ${host}, the only host`,
      );
    }
    if (host === undefined && ok) {
      fail(
        [],
        `${bridge !== undefined ? `bridge container (bridge ${String(bridge)})` : 'container'} without a srvctl 3 address: its host cannot be told from the datastore; pass --container-host ${name}=HOST`,
      );
    }
    const hostnet = host !== undefined ? hosts.byName.get(host)?.hostnet : undefined;
    if (!ok || typeof user !== 'string' || host === undefined || hostnet === undefined) continue;
    if (bridge !== undefined && oldIp !== undefined && fromAddress === undefined) {
      ctx.warn(
        'containers',
        name,
        `bridge container: its address ${oldIp} came from the bridge's own network (DHCP); sc gives it a plan address on bridge ${String(bridge)}`,
      );
    }
    for (const field of ['users', 'readers']) {
      const names = record[field];
      if (!Array.isArray(names)) continue;
      for (const other of names) {
        if (typeof other === 'string' && other !== ROOT_USERNAME && !Object.hasOwn(oldUsers, other))
          ctx.warn('containers', name, `${field} names "${other}", who is not in users.json`);
      }
    }
    placed.push({ name, record, user, host, hostnet, ...(oldIp !== undefined ? { oldIp } : {}), order });
  }

  for (const [hostnet, stranded] of noHost) {
    const [first, ...more] = stranded;
    if (!first) continue;
    const others = more.length
      ? `; so do ${more.length} more: ${more
          .slice(0, 5)
          .map((c) => `${c.name} (${c.ip})`)
          .join(', ')}${more.length > 5 ? ', …' : ''}`
      : '';
    ctx.error('containers', [first.name, 'ip'], `address ${first.ip}: hostnet ${hostnet} matches no host (hostnets: ${hostList || 'none'})${others}`);
  }
  // With errors already found nothing is written: placing containers of broken users only adds noise.
  if (ctx.errors.length > 0) return { containers: {}, oldAddresses: new Map() };
  // New addresses per owner and host, in the order of the old ones: .2 → .20, .3 → .21, …
  const newIp = new Map<string, string>();
  const used: string[] = [];
  const ordered = [...placed].sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const c of ordered) {
    const net = resolveUserNet(users, c.user, c.hostnet);
    if ('problem' in net) {
      ctx.error('containers', [c.name, 'user'], `cannot place it on ${c.host}: ${net.problem}`);
      continue;
    }
    try {
      const ip = allocateContainerAddress(net, used, c.user);
      used.push(ip);
      newIp.set(c.name, ip);
    } catch (error) {
      if (!(error instanceof PlanError)) throw error;
      ctx.error('containers', [c.name], error.message);
    }
  }

  const containers: Record<string, Record3> = {};
  const oldAddresses = new Map<string, string>();
  for (const c of placed) {
    const ip = newIp.get(c.name);
    if (ip === undefined) continue;
    const r = c.record;
    for (const field of OLD_NETWORK_FIELDS) {
      if (Object.hasOwn(r, field))
        ctx.drop('containers', c.name, field, 'srvctl 3 network override: sc derives the bridge, gateway and interface from its plan');
    }
    const pick = (field: string, value: unknown = r[field]): Record3 => (Object.hasOwn(r, field) && r[field] !== undefined ? { [field]: value } : {});
    containers[c.name] = {
      user: c.user,
      host: c.host,
      type: r.type,
      ip,
      ...pick('enabled'),
      ...pick('mapped_ports', mappedPorts(r.mapped_ports)),
      ...pick('aliases', lowercaseNames(r.aliases)),
      ...pick('http_port', portNumber(r.http_port)),
      ...pick('https_port', portNumber(r.https_port)),
      ...pick('http-redirect'),
      ...pick('https-redirect'),
      ...pick('bridge'),
      ...carriedSrvctl3Fields(ctx, 'containers', c.name, r, HANDLED),
    };
    if (Array.isArray(r.altnames)) (containers[c.name] as Record3).altnames = lowercaseNames(r.altnames);
    if (c.oldIp !== undefined) oldAddresses.set(c.name, c.oldIp);
  }
  return { containers, oldAddresses };
}
