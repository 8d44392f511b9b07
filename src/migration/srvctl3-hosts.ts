// Hosts: srvctl 3.2's hostnet (16–255, the second octet of its containers' addresses) becomes an sc
// hostnet 1–15 (a /12 each): in order of the old hostnet, or as --hostnet OLD=NEW says. The host's
// other fields are carried; srvctl 3's own (dns_server, mac_address, host_key, …) as they were.
import { HOSTNET_RANGE } from '../network/address-plan.js';
import type { ImportContext } from './import-context.js';
import type { HostMapping } from './migration-report.js';
import { carriedScFields, carriedSrvctl3Fields, type Record3 } from './srvctl3-fields.js';

export interface HostPlan {
  /** The new clusters document. */
  readonly clusters: Record<string, Record<string, Record3>>;
  /** Report rows, in order of the new hostnet (containers counted later). */
  readonly mappings: HostMapping[];
  /** srvctl 3 hostnet → the host that had it. */
  readonly byOldHostnet: ReadonlyMap<number, HostMapping>;
  readonly byName: ReadonlyMap<string, HostMapping>;
}

const isRecord = (value: unknown): value is Record3 => typeof value === 'object' && value !== null && !Array.isArray(value);

/** srvctl 3 wrote numbers; a hand-edited file may hold "78". Anything else is not a hostnet. */
function oldHostnetOf(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^[0-9]{1,3}$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 255 ? n : undefined;
}

export function mapHosts(ctx: ImportContext): HostPlan {
  const data = ctx.document('clusters').data as Record3;
  const source = ctx.source.hostsCluster !== undefined ? { [ctx.source.hostsCluster]: data } : data;
  const found: { cluster: string; name: string; record: Record3; old: number }[] = [];
  const owner = new Map<number, string>();
  const seen = new Map<string, string>();

  for (const [cluster, hosts] of Object.entries(source)) {
    if (!isRecord(hosts)) {
      ctx.error('clusters', [cluster], 'a cluster must be an object of hosts (host FQDN → host)');
      continue;
    }
    for (const [name, record] of Object.entries(hosts)) {
      if (!isRecord(record)) {
        ctx.error('clusters', [cluster, name], 'a host must be an object (hostnet, host_ip, …)');
        continue;
      }
      const earlier = seen.get(name);
      if (earlier !== undefined) {
        ctx.error('clusters', [cluster, name], `host "${name}" is also in cluster "${earlier}"; a host belongs to one cluster`);
        continue;
      }
      seen.set(name, cluster);
      const old = oldHostnetOf(record.hostnet);
      if (old === undefined) {
        const what = record.hostnet === undefined ? 'no hostnet' : `hostnet ${JSON.stringify(record.hostnet)} is not a number 0–255`;
        ctx.error(
          'clusters',
          [cluster, name, ...(record.hostnet === undefined ? [] : ['hostnet'])],
          `${what}: give the host the hostnet srvctl 3 really used (the second octet of its containers' addresses; srvctl 3 silently fell back to 250)`,
        );
        continue;
      }
      const other = owner.get(old);
      if (other !== undefined) {
        ctx.error(
          'clusters',
          [cluster, name, 'hostnet'],
          `hostnet ${old} is also the hostnet of ${other}: the containers' addresses cannot tell the two hosts apart`,
        );
        continue;
      }
      owner.set(old, name);
      found.push({ cluster, name, record, old });
    }
  }

  const capacity = HOSTNET_RANGE.last - HOSTNET_RANGE.first + 1;
  if (found.length > capacity) {
    ctx.error(
      'clusters',
      [],
      `${found.length} hosts, but sc's network plan has ${capacity} hostnets (1–15): ${found.map((h) => `${h.name} (${h.old})`).join(', ')}`,
    );
  }

  // --hostnet OLD=NEW first; the rest take the lowest free sc hostnets in order of their old one.
  const assigned = new Map<number, number>();
  const taken = new Map<number, number>();
  for (const [old, next] of ctx.options.hostnets ?? []) {
    if (!owner.has(old)) {
      ctx.optionError(
        `--hostnet ${old}=${next}: no host has hostnet ${old} (hosts: ${
          [...owner]
            .sort(([a], [b]) => a - b)
            .map(([h, n]) => `${h} ${n}`)
            .join(', ') || 'none'
        })`,
      );
      continue;
    }
    const clash = taken.get(next);
    if (clash !== undefined) {
      ctx.optionError(`--hostnet ${old}=${next}: hostnet ${next} is already given to hostnet ${clash}`);
      continue;
    }
    assigned.set(old, next);
    taken.set(next, old);
  }
  let candidate = HOSTNET_RANGE.first;
  for (const host of [...found].sort((a, b) => a.old - b.old)) {
    if (assigned.has(host.old)) continue;
    while (taken.has(candidate)) candidate += 1;
    if (candidate > HOSTNET_RANGE.last) break;
    assigned.set(host.old, candidate);
    taken.set(candidate, host.old);
  }

  const clusters: Record<string, Record<string, Record3>> = {};
  const mappings: HostMapping[] = [];
  for (const host of found) {
    const hostnet = assigned.get(host.old);
    if (hostnet === undefined) continue;
    const record: Record3 = {
      hostnet,
      ...carriedScFields('clusters', host.record, ['hostnet']),
      ...carriedSrvctl3Fields(ctx, 'clusters', host.name, host.record, []),
    };
    (clusters[host.cluster] ??= {})[host.name] = record;
    mappings.push({ name: host.name, cluster: host.cluster, old_hostnet: host.old, hostnet, containers: 0 });
  }
  mappings.sort((a, b) => a.hostnet - b.hostnet);
  return {
    clusters,
    mappings,
    byOldHostnet: new Map(mappings.map((m) => [m.old_hostnet, m])),
    byName: new Map(mappings.map((m) => [m.name, m])),
  };
}
