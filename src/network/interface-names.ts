// Deterministic interface names derived from the address plan, and the kernel's naming rules.
// Names must fit IFNAMSIZ (15 bytes) and be recognisably sc's so foreign links are never touched.
import { userSubnetOctets, type UserNet } from './address-plan.js';

/** Everything sc creates carries an ifalias starting with this mark (e.g. `srvctl:bridge user=alice`). */
export const SC_LINK_ALIAS_PREFIX = 'srvctl:';

/** Bridge names: `sc-<second octet>-<user_id>`. */
export const BRIDGE_NAME_PREFIX = 'sc-';

/** Linux IFNAMSIZ is 16 including the terminating NUL. */
export const MAX_INTERFACE_NAME_LENGTH = 15;

/** `sc-17-3` for 10.17.3.0/24 — deterministic, ≤ 15 chars, recognisably sc's. */
export function bridgeName(n: UserNet): string {
  // The name mirrors the subnet's 2nd and 3rd octets (10.(16·H+R).U.0/24); userSubnet validates the ranges.
  const { secondOctet, thirdOctet } = userSubnetOctets(n);
  return `${BRIDGE_NAME_PREFIX}${secondOctet}-${thirdOctet}`;
}

/** Decimal without leading zeros, so each name has exactly one spelling. */
const CANONICAL_NUMBER = '(0|[1-9][0-9]{0,2})';
const BRIDGE_NAME_PATTERN = new RegExp(`^${BRIDGE_NAME_PREFIX}${CANONICAL_NUMBER}-${CANONICAL_NUMBER}$`);

/** Inverse of bridgeName; undefined for any name bridgeName cannot produce. */
export function parseBridgeName(name: string): { secondOctet: number; userId: number } | undefined {
  const match = BRIDGE_NAME_PATTERN.exec(name);
  if (!match) return undefined;
  const secondOctet = Number(match[1]);
  const userId = Number(match[2]);
  // Hostnets 1–15 put the second octet in 16–255; lower octets belong to the VPN reservation.
  if (secondOctet < 16 || secondOctet > 255 || userId > 255) return undefined;
  return { secondOctet, userId };
}

/** The UserNet a bridge name stands for (hostnet and reseller split from the second octet). */
export function userNetOfBridgeName(name: string): UserNet | undefined {
  const parsed = parseBridgeName(name);
  if (!parsed) return undefined;
  return { hostnet: parsed.secondOctet >> 4, resellerId: parsed.secondOctet & 15, userId: parsed.userId };
}

/** Bytes the kernel refuses: NUL, its isspace() set (\t\n\v\f\r, space, Latin-1 NBSP), '/' and ':'. */
const FORBIDDEN_NAME_BYTES = new Set([0x00, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x2f, 0x3a, 0xa0]);

/** Kernel rules (dev_valid_name): 1–15 bytes, no '/', ':', whitespace, not '.'/'..'. */
export function isValidInterfaceName(name: string): boolean {
  // The kernel judges bytes, not characters, so check the UTF-8 encoding.
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_INTERFACE_NAME_LENGTH) return false;
  if (name === '.' || name === '..') return false;
  return !bytes.some((byte) => FORBIDDEN_NAME_BYTES.has(byte));
}
