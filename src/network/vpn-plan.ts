// Host-to-host tunnel addressing in the reserved 10.0.0.0/12: one point-to-point link per pair of
// hostnets, numbered from the pair alone so every host derives the same plan without coordination.
import { HOSTNET_RANGE, PlanError, hostnetCidr } from './address-plan.js';

export const VPN_RESERVED_CIDR = '10.0.0.0/12';
export const VPN_BASE_PORT = 11000;
export const VPN_DEVICE_PREFIX = 'scv-';

export interface VpnLink {
  /** The smaller hostnet of the pair; it takes the .1 end. */
  low: number;
  high: number;
  /** UDP port, 11000 + 16·low + high: unique per pair. */
  port: number;
  /** `scv-<low>-<high>`, the tun device on both hosts. */
  device: string;
  /** `10.<low>.<high>.0/24`, the /24 reserved for this link. */
  subnet: string;
  /** This host's tunnel address. */
  addressOf(hostnet: number): string;
  /** The other end's tunnel address, as seen from `hostnet`. */
  peerAddressOf(hostnet: number): string;
  /** The /12 that `hostnet` routes through this link: the peer's hostnet. */
  routeVia(hostnet: number): string;
}

function assertHostnet(hostnet: number): void {
  if (!Number.isInteger(hostnet) || hostnet < HOSTNET_RANGE.first || hostnet > HOSTNET_RANGE.last) {
    throw new PlanError(`hostnet ${String(hostnet)} is out of range: a hostnet is an integer 1–15`);
  }
}

/**
 * One point-to-point tunnel per unordered pair of hostnets (a≠b). Deterministic:
 * low = min(a,b), high = max(a,b); addresses 10.low.high.1 (low host) / 10.low.high.2 (high host);
 * UDP port 11000 + 16*low + high; device name `scv-<low>-<high>` (≤ 15 chars). Routes: the peer's /12.
 */
export function vpnLink(a: number, b: number): VpnLink {
  assertHostnet(a);
  assertHostnet(b);
  if (a === b) throw new PlanError(`a VPN link joins two different hostnets, got ${a} twice`);
  const low = Math.min(a, b);
  const high = Math.max(a, b);
  const endOf = (hostnet: number): 'low' | 'high' => {
    if (hostnet === low) return 'low';
    if (hostnet === high) return 'high';
    throw new PlanError(`hostnet ${String(hostnet)} is not an end of the VPN link between hostnets ${low} and ${high}`);
  };
  const address = (end: 'low' | 'high'): string => `10.${low}.${high}.${end === 'low' ? 1 : 2}`;
  const other = (end: 'low' | 'high'): 'low' | 'high' => (end === 'low' ? 'high' : 'low');
  return {
    low,
    high,
    port: VPN_BASE_PORT + 16 * low + high,
    device: `${VPN_DEVICE_PREFIX}${low}-${high}`,
    subnet: `10.${low}.${high}.0/24`,
    addressOf: (hostnet) => address(endOf(hostnet)),
    peerAddressOf: (hostnet) => address(other(endOf(hostnet))),
    routeVia: (hostnet) => hostnetCidr(endOf(hostnet) === 'low' ? high : low),
  };
}

/** The links `hostnet` needs: one to each other hostnet in its cluster (duplicates and itself skipped). */
export function vpnLinksOf(hostnet: number, clusterHostnets: Iterable<number>): VpnLink[] {
  assertHostnet(hostnet);
  const peers = [...new Set(clusterHostnets)].filter((peer) => peer !== hostnet).sort((x, y) => x - y);
  return peers.map((peer) => vpnLink(hostnet, peer));
}

const VPN_DEVICE_PATTERN = /^scv-([1-9]|1[0-5])-([1-9]|1[0-5])$/;

/** Inverse of the device name; undefined for names vpnLink cannot produce. */
export function parseVpnDeviceName(name: string): { low: number; high: number } | undefined {
  const match = VPN_DEVICE_PATTERN.exec(name);
  if (!match) return undefined;
  const low = Number(match[1]);
  const high = Number(match[2]);
  return low < high ? { low, high } : undefined;
}
