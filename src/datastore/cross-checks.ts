// Checks across records and files that a schema cannot express (SPEC §1, §2): every problem is
// collected, none stops the others. Hosts are checked here; users and containers in their own modules.
import { checkContainers, type HostFacts } from './container-cross-checks.js';
import { integerField, isRawObject, objectEntries } from './raw-data.js';
import type { DocumentProblem } from './schema-validation.js';
import { checkUsers } from './user-cross-checks.js';

export interface CrossCheckInput {
  clusters: unknown;
  users: unknown;
  containers: unknown;
  /** settings.json: `proxy.enabled: false` frees ports 80/443 on every host. */
  settings?: unknown;
}

export function crossCheckProblems(data: CrossCheckInput, options: { allowUnallocated?: boolean } = {}): DocumentProblem[] {
  const allowUnallocated = options.allowUnallocated ?? false;
  const { problems: hostProblems, hosts } = checkHosts(data.clusters, proxyOffEverywhere(data.settings));
  const userChecks = checkUsers(data.users, { allowUnallocated });
  const containerProblems = checkContainers(data.containers, { users: data.users, userChecks, hosts, allowUnallocated });
  return [...hostProblems, ...userChecks.problems, ...containerProblems, ...checkUserVpnPort(data.settings)];
}

/** The host links' UDP ports (11000 + 16·low + high, SPEC §2): the user VPN server cannot listen on one. */
const LINK_PORTS = { first: 11000, last: 11255 } as const;

/** settings.user_vpn.port must not be one of the host links' ports, which every host of a cluster binds on its host_ip. */
function checkUserVpnPort(settings: unknown): DocumentProblem[] {
  if (!isRawObject(settings) || !isRawObject(settings.user_vpn)) return [];
  const port = integerField(settings.user_vpn, 'port', 1, 65535);
  if (port === undefined || port < LINK_PORTS.first || port > LINK_PORTS.last) return [];
  return [
    {
      severity: 'error',
      kind: 'settings',
      path: ['user_vpn', 'port'],
      message: `udp port ${port} is in ${LINK_PORTS.first}–${LINK_PORTS.last}, the ports of the VPN links between hosts; choose another port for the user VPN (default 1194)`,
    },
  ];
}

/** A host is in one cluster, a hostnet belongs to one host (across all clusters), a cluster has at most one CA (and one when it has several hosts: a warning). */
/** settings.proxy.enabled is false: no host runs sc's reverse proxy. */
function proxyOffEverywhere(settings: unknown): boolean {
  if (!isRawObject(settings) || !isRawObject(settings.proxy)) return false;
  return settings.proxy.enabled === false;
}

export function checkHosts(clusters: unknown, proxyOff = false): { problems: DocumentProblem[]; hosts: Map<string, HostFacts> } {
  const problems: DocumentProblem[] = [];
  const error = (path: (string | number)[], message: string): void => {
    problems.push({ severity: 'error', kind: 'clusters', path, message });
  };
  const hosts = new Map<string, HostFacts>();
  const hostnetOwner = new Map<number, string>();
  for (const [cluster, members] of objectEntries(clusters)) {
    let authority: string | undefined;
    for (const [name, host] of objectEntries(members)) {
      const earlier = hosts.get(name);
      if (earlier) {
        error([cluster, name], `host "${name}" is also in cluster "${earlier.cluster}"; a host belongs to one cluster`);
        continue;
      }
      const hostnet = integerField(host, 'hostnet', 1, 15);
      const reverseProxy = host.reverse_proxy;
      hosts.set(name, { cluster, hostnet, proxy: !proxyOff && (reverseProxy === undefined || reverseProxy === 'haproxy') });
      if (hostnet !== undefined) {
        const other = hostnetOwner.get(hostnet);
        if (other !== undefined) {
          error([cluster, name, 'hostnet'], `hostnet ${hostnet} is also used by ${other}; every host needs its own hostnet (1–15)`);
        } else {
          hostnetOwner.set(hostnet, name);
        }
      }
      const hostIp = typeof host.host_ip === 'string' ? host.host_ip : undefined;
      const unusable = hostIp === undefined ? undefined : unusableHostIp(hostIp);
      if (unusable !== undefined)
        error([cluster, name, 'host_ip'], `${hostIp} is not a usable host address (${unusable}); give the host's public IPv4 address`);
      if (host.ca === true) {
        if (authority !== undefined) {
          error([cluster, name, 'ca'], `cluster "${cluster}" has more than one certificate authority: ${authority} is already ca: true`);
        } else {
          authority = name;
        }
      }
    }
    const size = objectEntries(members).length;
    if (size > 1 && authority === undefined) {
      problems.push({
        severity: 'warning',
        kind: 'clusters',
        path: [cluster],
        message: `cluster "${cluster}" has ${size} hosts but none with ca: true: its hosts get no certificates and no VPN tunnels; mark one host ca: true`,
      });
    }
  }
  return { problems, hosts };
}

/**
 * Why an IPv4 address cannot be a host's underlay address (tunnels go to it, the port map
 * listens on it), or undefined when it can. Only well-formed dotted quads are judged (the schema
 * reports the others).
 */
export function unusableHostIp(ip: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const [a, b, c, d] = m.slice(1).map(Number) as [number, number, number, number];
  if ([a, b, c, d].some((x) => x > 255)) return undefined;
  if (a === 0) return 'the unspecified "this network" range 0.0.0.0/8';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return a === 255 && b === 255 && c === 255 && d === 255 ? 'broadcast' : 'reserved 240.0.0.0/4';
  return undefined;
}
