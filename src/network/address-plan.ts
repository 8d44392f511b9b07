// The address plan of SPEC §2 as pure arithmetic: hostnet /12s, a user's /24 per host, the
// roles of the host parts inside a /24, and lowest-free allocation. No I/O, no state.
import { UserError } from '../errors.js';

/** Containers get host parts .20–.200 of their owner's /24. */
export const CONTAINER_FIRST_HOST = 20;
export const CONTAINER_LAST_HOST = 200;
/** Host-side addresses besides the bridge's .1 (e.g. helper interfaces). */
export const HOST_RESERVED = { first: 2, last: 16 } as const;
/** OpenVPN clients of the user. */
export const VPN_CLIENTS = { first: 201, last: 250 } as const;
/** How many containers one user can have on one host (181). */
export const CONTAINER_CAPACITY = CONTAINER_LAST_HOST - CONTAINER_FIRST_HOST + 1;

export const HOSTNET_RANGE = { first: 1, last: 15 } as const;
export const RESELLER_ID_RANGE = { first: 0, last: 15 } as const;
export const USER_ID_RANGE = { first: 0, last: 255 } as const;

/** Input that the plan cannot place: out-of-range numbers, a full /24, a malformed address. */
export class PlanError extends UserError {}

/** The three numbers that pick a user's /24 on one host. */
export interface UserNet {
  hostnet: number;
  resellerId: number;
  userId: number;
}

export interface UserSubnet {
  /** `10.17.3.0` */
  network: string;
  /** `10.17.3.0/24` */
  cidr: string;
  prefixLength: 24;
  /** `10.17.3.1`: the host's bridge address, the containers' gateway. */
  bridgeAddress: string;
  /** `10.17.3.1/24` */
  bridgeCidr: string;
  /** `10.17.3.255` */
  broadcast: string;
}

export type AddressRole = 'network' | 'bridge' | 'host-reserved' | 'container' | 'vpn-client' | 'unassigned' | 'broadcast';

export interface AddressLocation {
  hostnet: number;
  resellerId: number;
  userId: number;
  hostPart: number;
  role: AddressRole;
}

function isIntegerIn(value: number, range: { first: number; last: number }): boolean {
  return Number.isInteger(value) && value >= range.first && value <= range.last;
}

function assertHostnet(hostnet: number): void {
  if (!isIntegerIn(hostnet, HOSTNET_RANGE)) {
    throw new PlanError(`hostnet ${String(hostnet)} is out of range: a hostnet is an integer 1–15 (hostnet H owns 10.(16·H).0.0/12)`);
  }
}

function assertUserNet(n: UserNet): void {
  assertHostnet(n.hostnet);
  if (!isIntegerIn(n.resellerId, RESELLER_ID_RANGE)) {
    throw new PlanError(`reseller_id ${String(n.resellerId)} is out of range: a reseller_id is an integer 0–15 (root is 0)`);
  }
  if (!isIntegerIn(n.userId, USER_ID_RANGE)) {
    throw new PlanError(`user_id ${String(n.userId)} is out of range: a user_id is an integer 1–255 (root is 0)`);
  }
}

/** Second octet of every address in the user's /24: hostnet in the high nibble, reseller in the low. */
function secondOctet(n: UserNet): number {
  return 16 * n.hostnet + n.resellerId;
}

/** 10.(16*H+R).U.0/24 with .1 bridge address; validates ranges (H 1–15, R 0–15, U 0–255). */
export function userSubnet(n: UserNet): UserSubnet {
  assertUserNet(n);
  const prefix = `10.${secondOctet(n)}.${n.userId}`;
  return {
    network: `${prefix}.0`,
    cidr: `${prefix}.0/24`,
    prefixLength: 24,
    bridgeAddress: `${prefix}.1`,
    bridgeCidr: `${prefix}.1/24`,
    broadcast: `${prefix}.255`,
  };
}

/** The 2nd and 3rd octets of the user's /24 (validated like userSubnet), without building its addresses. */
export function userSubnetOctets(n: UserNet): { secondOctet: number; thirdOctet: number } {
  assertUserNet(n);
  return { secondOctet: secondOctet(n), thirdOctet: n.userId };
}

/** 10.16.0.0/12 for hostnet 1 … 10.240.0.0/12 for hostnet 15. */
export function hostnetCidr(hostnet: number): string {
  assertHostnet(hostnet);
  return `10.${16 * hostnet}.0.0/12`;
}

/** Four decimal octets without leading zeros, and an optional prefix length. */
const DOTTED_QUAD = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})(?:\/([0-9]+))?$/;

/**
 * The four octets of a dotted-quad IPv4 address (an optional `/prefix` of 0–32 is ignored), or
 * undefined. Strict on purpose: `010.1.2.3` or `10.1.515` are read by other parsers (ipaddr.js)
 * as octal / short forms, which would let two spellings of different addresses look alike in the
 * datastore. One regular expression: the cross-checks parse every address of the datastore.
 */
export function parseIPv4Octets(text: string): [number, number, number, number] | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (!m) return undefined;
  const octets: [number, number, number, number] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  if (octets[0] > 255 || octets[1] > 255 || octets[2] > 255 || octets[3] > 255) return undefined;
  if (m[5] !== undefined && Number(m[5]) > 32) return undefined;
  return octets;
}

function roleOfHostPart(hostPart: number): AddressRole {
  if (hostPart === 0) return 'network';
  if (hostPart === 1) return 'bridge';
  if (hostPart >= HOST_RESERVED.first && hostPart <= HOST_RESERVED.last) return 'host-reserved';
  if (hostPart >= CONTAINER_FIRST_HOST && hostPart <= CONTAINER_LAST_HOST) return 'container';
  if (hostPart >= VPN_CLIENTS.first && hostPart <= VPN_CLIENTS.last) return 'vpn-client';
  if (hostPart === 255) return 'broadcast';
  return 'unassigned';
}

/** Where an address sits in the plan, or undefined if outside 10.16.0.0–10.255.255.255. */
export function locateAddress(ip: string): AddressLocation | undefined {
  const octets = parseIPv4Octets(ip);
  if (!octets) return undefined;
  const [a, b, c, d] = octets;
  if (a !== 10 || b < 16) return undefined;
  return { hostnet: b >> 4, resellerId: b & 15, userId: c, hostPart: d, role: roleOfHostPart(d) };
}

const ROLE_PHRASES: Record<AddressRole, string> = {
  network: 'the network address',
  bridge: "the host's bridge address",
  'host-reserved': 'reserved for host-side addresses',
  container: 'a container address',
  'vpn-client': 'reserved for VPN clients',
  unassigned: 'unassigned in the plan',
  broadcast: 'the broadcast address',
};

function describeUserNet(n: UserNet): string {
  return `hostnet ${n.hostnet}, reseller_id ${n.resellerId}, user_id ${n.userId}`;
}

/** Problem text when `ip` is not a valid container address for `n` (wrong /24, not in .20–.200, malformed). */
export function containerAddressProblem(ip: string, n: UserNet): string | undefined {
  const subnet = userSubnet(n);
  const octets = parseIPv4Octets(ip);
  if (!octets || ip.includes('/')) {
    return `"${ip}" is not an IPv4 address (expected four decimal numbers like 10.17.3.20)`;
  }
  const [a, b, c, d] = octets;
  if (a !== 10 || b !== secondOctet(n) || c !== n.userId) {
    return `${ip} is not in the owner's /24 ${subnet.cidr} (${describeUserNet(n)})`;
  }
  if (d < CONTAINER_FIRST_HOST || d > CONTAINER_LAST_HOST) {
    return `${ip} is outside the container range .${CONTAINER_FIRST_HOST}–.${CONTAINER_LAST_HOST} of ${subnet.cidr} (.${d} is ${ROLE_PHRASES[roleOfHostPart(d)]})`;
  }
  return undefined;
}

/** Lowest free integer in [min,max] not in `used`, or undefined. Used for user_id, reseller_id, uid. */
export function lowestFree(used: Iterable<number>, min: number, max: number): number | undefined {
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max)) {
    throw new RangeError(`lowestFree needs integer bounds, got [${min}, ${max}]`);
  }
  const taken = new Set<number>();
  for (const value of used) if (value >= min && value <= max) taken.add(value);
  // At most taken.size + 1 candidates need checking, so huge ranges (uids) stay cheap.
  for (let candidate = min; candidate <= max; candidate++) {
    if (!taken.has(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Lowest free address in .20–.200 of the subnet, skipping `used` (any strings; foreign ones ignored).
 * `label` is the owner's username, named in the error. Throws PlanError when none is free.
 */
export function allocateContainerAddress(n: UserNet, used: Iterable<string>, label?: string): string {
  const subnet = userSubnet(n);
  const second = secondOctet(n);
  const prefix = `10.${second}.${n.userId}.`;
  const takenHostParts: number[] = [];
  for (const address of used) {
    // The cheap prefix test first: `used` is often every address of the farm, and full parsing
    // is only needed for the few in this /24. The typeof guard keeps unvalidated data from throwing.
    if (typeof address !== 'string' || !address.startsWith(prefix)) continue;
    const octets = parseIPv4Octets(address);
    if (octets && octets[0] === 10 && octets[1] === second && octets[2] === n.userId) {
      takenHostParts.push(octets[3]);
    }
  }
  const hostPart = lowestFree(takenHostParts, CONTAINER_FIRST_HOST, CONTAINER_LAST_HOST);
  if (hostPart === undefined) {
    const whose =
      label !== undefined ? `user ${label}'s /24 ${subnet.cidr}` : `the /24 ${subnet.cidr} (reseller_id ${n.resellerId}, user_id ${n.userId})`;
    throw new PlanError(
      `${whose} on hostnet ${n.hostnet} is full: all ${CONTAINER_CAPACITY} container addresses ` +
        `.${CONTAINER_FIRST_HOST}–.${CONTAINER_LAST_HOST} are in use; remove one of ` +
        `${label !== undefined ? `${label}'s` : 'its'} containers on this host or place the new container on another host`,
    );
  }
  return `${prefix}${hostPart}`;
}
