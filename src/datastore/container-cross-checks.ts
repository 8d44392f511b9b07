// Cross-checks of containers.json against users and clusters: owners and hosts exist, addresses
// are unique and fit the plan of SPEC §2, a user's /24 is not overfull, ports and aliases are unique.
import type { Users } from './model.js';
import {
  CONTAINER_CAPACITY,
  CONTAINER_FIRST_HOST,
  CONTAINER_LAST_HOST,
  containerAddressProblem,
  parseIPv4Octets,
  userSubnetOctets,
  type UserNet,
} from '../network/address-plan.js';
import { resolveUserNet } from '../network/user-network.js';
import type { DocumentProblem } from './schema-validation.js';
import { hasField, isRawObject, objectEntries, stringField, type RawObject } from './raw-data.js';
import { ALLOCATE_HINT, type UserCheckResult } from './user-cross-checks.js';

export interface HostFacts {
  cluster: string;
  /** Undefined when invalid (the schema reports it): no plan check is possible then. */
  hostnet?: number;
  /** sc's reverse proxy runs there (ports 80 and 443 are its own). */
  proxy?: boolean;
}

/** A user's /24 on a hostnet and its 2nd and 3rd octets, or why it has none. */
type ResolvedNet = { net: UserNet; octets: { secondOctet: number; thirdOctet: number } } | { problem: string };

export function checkContainers(
  containers: unknown,
  context: { users: unknown; userChecks: UserCheckResult; hosts: ReadonlyMap<string, HostFacts>; allowUnallocated: boolean },
): DocumentProblem[] {
  const problems: DocumentProblem[] = [];
  const error = (path: (string | number)[], message: string): void => {
    problems.push({ severity: 'error', kind: 'containers', path, message });
  };
  const { userChecks, hosts } = context;
  const entries = objectEntries(containers);
  const names = new Set(entries.map(([name]) => name));

  // A (user, host) pair with more containers than its /24 holds: "sc allocate" cannot help there,
  // so its containers without an address get the capacity error instead of the allocate hint.
  const groupKey = (c: RawObject): string | undefined => {
    const user = stringField(c, 'user');
    const host = stringField(c, 'host');
    return user !== undefined && host !== undefined && !hasField(c, 'bridge') ? `${user}\u0000${host}` : undefined;
  };
  const groupSize = new Map<string, number>();
  const groupKeys = entries.map(([, c]) => {
    const key = groupKey(c);
    if (key !== undefined) groupSize.set(key, (groupSize.get(key) ?? 0) + 1);
    return key;
  });
  // A user's /24 on a hostnet, resolved once for all of the user's containers there (by hostnet, then user).
  const userNets = new Map<number, Map<string, ResolvedNet>>();
  const userNet = (user: string, hostnet: number): ResolvedNet => {
    let ofHostnet = userNets.get(hostnet);
    if (ofHostnet === undefined) userNets.set(hostnet, (ofHostnet = new Map()));
    let found = ofHostnet.get(user);
    if (found === undefined) {
      const net = resolveUserNet(context.users as Users, user, hostnet);
      found = 'problem' in net ? net : { net, octets: userSubnetOctets(net) };
      ofHostnet.set(user, found);
    }
    return found;
  };

  const seenInGroup = new Map<string, number>();
  const ipOwner = new Map<string, string>();
  const portOwner = new Map<string, string>();
  const aliasOwner = new Map<string, string>();
  for (let index = 0; index < entries.length; index++) {
    const [name, c] = entries[index] as [string, RawObject];
    const user = stringField(c, 'user');
    const host = stringField(c, 'host');
    const hostFacts = host === undefined ? undefined : hosts.get(host);
    if (user !== undefined && !userChecks.known.has(user)) error([name, 'user'], `unknown user "${user}"`);
    if (host !== undefined && !hostFacts) error([name, 'host'], `unknown host "${host}": it is in no cluster`);

    const key = groupKeys[index];
    const size = key === undefined ? 0 : (groupSize.get(key) ?? 0);
    if (key !== undefined) {
      const nth = (seenInGroup.get(key) ?? 0) + 1;
      seenInGroup.set(key, nth);
      if (nth === CONTAINER_CAPACITY + 1) {
        error(
          [name],
          `user "${String(user)}" has ${size} containers on ${String(host)}, more than the ${CONTAINER_CAPACITY} addresses ` +
            `.${CONTAINER_FIRST_HOST}–.${CONTAINER_LAST_HOST} of its /24 hold; move some to another host or another user`,
        );
      }
    }

    const customBridge = hasField(c, 'bridge');
    if (!hasField(c, 'ip')) {
      // A container on a custom bridge gets its address from that network, not from the plan.
      if (!customBridge && !context.allowUnallocated && size <= CONTAINER_CAPACITY) error([name], `missing ip: ${ALLOCATE_HINT}`);
    } else {
      const ip = stringField(c, 'ip');
      const octets = ip === undefined ? undefined : parseIPv4Octets(ip);
      if (ip !== undefined && octets !== undefined && !ip.includes('/')) {
        const other = ipOwner.get(ip);
        if (other !== undefined) error([name, 'ip'], `ip ${ip} is also the address of "${other}"`);
        else ipOwner.set(ip, name);
        const hostnet = hostFacts?.hostnet;
        if (!customBridge && user !== undefined && userChecks.known.has(user) && !userChecks.unplaced.has(user) && hostnet !== undefined) {
          const resolved = userNet(user, hostnet);
          if ('problem' in resolved) error([name, 'user'], resolved.problem);
          else if (!inContainerRange(octets, resolved.octets)) {
            // Only a misplaced address is described (containerAddressProblem builds the /24's text).
            const problem = containerAddressProblem(ip, resolved.net);
            if (problem !== undefined) error([name, 'ip'], `on ${String(host)}: ${problem}`);
          }
        }
      }
    }

    checkMappedPorts(name, c, host, portOwner, error, hostFacts?.proxy === true);
    checkAliases(name, c, names, aliasOwner, error);
  }
  return problems;
}

/** The address is a container's in the user's /24: exactly when containerAddressProblem finds nothing. */
function inContainerRange(octets: readonly [number, number, number, number], net: { secondOctet: number; thirdOctet: number }): boolean {
  const [a, b, c, d] = octets;
  return a === 10 && b === net.secondOctet && c === net.thirdOctet && d >= CONTAINER_FIRST_HOST && d <= CONTAINER_LAST_HOST;
}

function checkMappedPorts(
  name: string,
  c: RawObject,
  host: string | undefined,
  portOwner: Map<string, string>,
  error: (path: (string | number)[], message: string) => void,
  proxyOnHost: boolean,
): void {
  const ports = c.mapped_ports;
  if (!Array.isArray(ports) || host === undefined) return;
  ports.forEach((port: unknown, index) => {
    if (!isRawObject(port)) return;
    const proto = port.proto;
    const hostPort = port.host_port;
    if ((proto !== 'tcp' && proto !== 'udp') || typeof hostPort !== 'number' || !Number.isInteger(hostPort)) return;
    if (proxyOnHost && proto === 'tcp' && (hostPort === 80 || hostPort === 443)) {
      error(
        [name, 'mapped_ports', index, 'host_port'],
        `tcp port ${hostPort} on ${host} belongs to sc's reverse proxy; map another port, or set reverse_proxy of ${host} to something else than haproxy`,
      );
      return;
    }
    const key = `${host}\u0000${proto}\u0000${hostPort}`;
    const other = portOwner.get(key);
    if (other === undefined) portOwner.set(key, name);
    else {
      const whose = other === name ? 'this container already maps it' : `it is already mapped to "${other}"`;
      error([name, 'mapped_ports', index, 'host_port'], `${proto} port ${hostPort} on ${host} is taken: ${whose}`);
    }
  });
}

/** Aliases and altnames: every name the proxy answers belongs to one container. */
function checkAliases(
  name: string,
  c: RawObject,
  names: ReadonlySet<string>,
  aliasOwner: Map<string, string>,
  error: (path: (string | number)[], message: string) => void,
): void {
  for (const field of ['aliases', 'altnames'] as const) {
    const list = c[field];
    if (!Array.isArray(list)) continue;
    const what = field === 'aliases' ? 'alias' : 'altname';
    list.forEach((alias: unknown, index) => {
      if (typeof alias !== 'string' || alias === name) return;
      const other = aliasOwner.get(alias);
      if (names.has(alias)) error([name, field, index], `${what} "${alias}" is the name of another container`);
      else if (other !== undefined && other !== name) error([name, field, index], `${what} "${alias}" is also an alias or altname of "${other}"`);
      else aliasOwner.set(alias, name);
    });
  }
}
