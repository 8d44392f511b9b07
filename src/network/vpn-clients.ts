// The user VPN's share of the address plan (SPEC §2): a user's devices get host parts .201–.250,
// one per device, allocated once and the same on every host — so a device's address on a host is
// .host_part of the user's /24 there. Pure arithmetic and naming, no I/O.
import { PlanError, userSubnet, VPN_CLIENTS, lowestFree, type UserNet } from './address-plan.js';

/** How many VPN clients one user can have (50). */
export const VPN_CLIENT_CAPACITY = VPN_CLIENTS.last - VPN_CLIENTS.first + 1;

/** Same pattern as `vpnClient.device` in schemas/users.schema.json. */
export const VPN_DEVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * The lowest free host part in .201–.250 around `used` (the user's other devices).
 * Throws PlanError naming the user when all 50 are taken.
 */
export function allocateVpnHostPart(used: Iterable<number>, user: string): number {
  const hostPart = lowestFree(used, VPN_CLIENTS.first, VPN_CLIENTS.last);
  if (hostPart === undefined) {
    throw new PlanError(
      `user ${user} has no free VPN client address: all ${VPN_CLIENT_CAPACITY} addresses .${VPN_CLIENTS.first}–.${VPN_CLIENTS.last} ` +
        `of ${user}'s /24 are taken by ${user}'s devices; remove one with "sc remove-vpn-client ${user} DEVICE"`,
    );
  }
  return hostPart;
}

/** The device's address on the host whose plan places the user's /24 at `n`. */
export function vpnClientAddress(n: UserNet, hostPart: number): string {
  if (!Number.isInteger(hostPart) || hostPart < VPN_CLIENTS.first || hostPart > VPN_CLIENTS.last) {
    throw new PlanError(`host part ${String(hostPart)} is outside the VPN client range .${VPN_CLIENTS.first}–.${VPN_CLIENTS.last}`);
  }
  return `${userSubnet(n).network.replace(/\.0$/, '')}.${hostPart}`;
}

/**
 * The certificate common name of a user's device: `USER@DEVICE`. The `@` keeps it apart from host
 * certificates (host names are DNS names, which never contain one) and OpenVPN keeps it as is.
 */
export function vpnClientCommonName(user: string, device: string): string {
  return `${user}@${device}`;
}

/** OID 2.5.4.3 (commonName) as DER: 06 03 55 04 03. */
const CN_OID = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);

/**
 * The subject common name of a PEM certificate request: in a request the subject is the first
 * name, so the first commonName attribute is its CN (short-form lengths: a CN is at most 64 bytes).
 */
export function csrCommonName(csr: string): string | undefined {
  const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const at = der.indexOf(CN_OID);
  if (at < 0) return undefined;
  const length = der[at + CN_OID.length + 1];
  if (length === undefined || length > 0x7f) return undefined;
  const start = at + CN_OID.length + 2;
  return der.subarray(start, start + length).toString('utf8');
}
