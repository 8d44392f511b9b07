// `sc add-vpn-client USER DEVICE [--csr FILE]` and `sc remove-vpn-client USER DEVICE`: a user's VPN
// devices in users.json/yaml. A device gets its host part in .201–.250 once (the lowest free one
// of the user's devices), the same on every host. Only public material is stored: a certificate
// request or a certificate (PEM); a private key is refused whole and never shown.
import { PRIVATE_KEY_REFUSAL, looksLikePrivateKey } from '../access/public-keys.js';
import { UserError } from '../errors.js';
import { ROOT_USERNAME } from '../network/user-network.js';
import { allocateVpnHostPart, csrCommonName, vpnClientCommonName, VPN_DEVICE_NAME } from '../network/vpn-clients.js';

export { csrCommonName };
import { assertUserName } from './edit-arguments.js';
import { runDatastoreEdit, type EditContext, type EditResult } from './edit-session.js';
import type { VpnClient } from './model.js';

/** A request or certificate is a few KiB. */
export const VPN_MATERIAL_MAX_BYTES = 64 * 1024;

const PEM_BLOCK = /^-----BEGIN (CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|CERTIFICATE)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/;

export type VpnMaterial = { csr: string } | { certificate: string };

export function assertDeviceName(device: string): void {
  if (!VPN_DEVICE_NAME.test(device)) {
    throw new UserError(
      `invalid device name ${JSON.stringify(device.slice(0, 60))}: must be a lowercase DNS label of at most 32 characters (letters, digits and '-')`,
    );
  }
}

/**
 * The request or certificate in `text` (`where` names it in errors, the text itself is never shown),
 * normalized to one PEM block with 64-column lines. A private key, several blocks or anything else is refused.
 */
export function parseVpnMaterial(text: string, where: string): VpnMaterial {
  if (looksLikePrivateKey(text))
    throw new UserError(`${where}: ${PRIVATE_KEY_REFUSAL.replace('the public key (the .pub file)', 'the certificate request (the .csr file)')}`);
  if (Buffer.byteLength(text) > VPN_MATERIAL_MAX_BYTES) throw new UserError(`${where}: too big for a certificate request or certificate`);
  const match = PEM_BLOCK.exec(text.trim());
  if (!match) {
    throw new UserError(
      `${where}: not one PEM certificate request ("-----BEGIN CERTIFICATE REQUEST-----") or certificate ("-----BEGIN CERTIFICATE-----")`,
    );
  }
  const body = (match[2] ?? '').replace(/\s+/g, '');
  const der = Buffer.from(body, 'base64');
  // DER: a SEQUENCE (0x30), and the base64 must round-trip (no stray characters).
  if (der.length < 16 || der[0] !== 0x30 || der.toString('base64') !== body) throw new UserError(`${where}: the PEM block does not hold DER data`);
  const lines = body.match(/.{1,64}/g) ?? [];
  if (match[1] === 'CERTIFICATE') return { certificate: `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n` };
  return { csr: `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n` };
}

function assertRequestFor(material: VpnMaterial | undefined, user: string, device: string): void {
  if (material === undefined || !('csr' in material)) return;
  const expected = vpnClientCommonName(user, device);
  const cn = csrCommonName(material.csr);
  if (cn !== expected) {
    throw new UserError(
      `the certificate request is for ${cn === undefined ? 'no common name' : JSON.stringify(cn.slice(0, 80))}, not ${expected}: make it with "sc vpn-config ${user} ${device}"'s openssl command (-subj /CN=${expected}); nothing was written`,
    );
  }
}

function clientsOf(clients: readonly VpnClient[] | undefined): readonly VpnClient[] {
  return clients ?? [];
}

/** Adds DEVICE to USER's VPN clients with the lowest free host part in .201–.250. */
export async function addVpnClient(ctx: EditContext, user: string, device: string, material?: VpnMaterial): Promise<EditResult> {
  assertUserName(user);
  assertDeviceName(device);
  assertRequestFor(material, user, device);
  return runDatastoreEdit(ctx, { command: `add-vpn-client ${user} ${device}` }, (edit) => {
    if (user === ROOT_USERNAME) throw new UserError('root has no VPN clients: the administrator works on the hosts');
    if (!Object.hasOwn(edit.model.users, user)) throw new UserError(`unknown user "${user}": add it first with "sc add-user ${user}"`);
    const clients = clientsOf(edit.model.users[user]?.vpn_clients);
    const index = clients.findIndex((c) => c.device === device);
    const existing = clients[index];
    if (existing !== undefined) {
      if (material === undefined) {
        throw new UserError(
          `${user} already has a VPN client "${device}" (give its request with --csr FILE, or remove it first with "sc remove-vpn-client ${user} ${device}")`,
        );
      }
      // The device's (new) request or certificate: the address stays. A new request means a new
      // key, so the certificate of the old one goes.
      const updated: VpnClient = {
        device,
        host_part: existing.host_part,
        ...('certificate' in material && existing.csr !== undefined ? { csr: existing.csr } : {}),
        ...material,
      };
      const same = JSON.stringify(updated) === JSON.stringify(existing);
      if (same) return `${user}'s VPN client ${device} already has this ${'csr' in material ? 'request' : 'certificate'}; nothing to change`;
      edit.document('users').set([user, 'vpn_clients', index], updated);
      edit.record({ kind: 'users', key: user, action: 'update', value: { vpn_clients: clients.map((c, i) => (i === index ? updated : c)) } });
      return `stored the ${'csr' in material ? 'certificate request' : 'certificate'} of ${user}'s VPN client ${device} (${vpnClientCommonName(user, device)}, address .${existing.host_part})`;
    }
    let hostPart: number;
    try {
      hostPart = allocateVpnHostPart(
        clients.map((c) => c.host_part),
        user,
      );
    } catch (error) {
      if (error instanceof UserError) throw new UserError(`add-vpn-client ${user} ${device}: ${error.message}; nothing was written`);
      throw error;
    }
    const client: VpnClient = { device, host_part: hostPart, ...material };
    const doc = edit.document('users');
    if (clients.length === 0) doc.set([user, 'vpn_clients'], [client]);
    else doc.append([user, 'vpn_clients'], client);
    edit.record({ kind: 'users', key: user, action: 'update', value: { vpn_clients: [...clients, client] } });
    const next =
      material === undefined
        ? `; "sc vpn-config ${user} ${device}" prints the client configuration and the openssl command that makes the device's key and request`
        : '';
    return `added VPN client ${device} of ${user} (certificate name ${vpnClientCommonName(user, device)}, address .${hostPart} of ${user}'s /24 on each host of ${user}'s containers)${next}`;
  });
}

/** Removes DEVICE from USER's VPN clients; its host part is free again. */
export async function removeVpnClient(ctx: EditContext, user: string, device: string): Promise<EditResult> {
  assertUserName(user);
  assertDeviceName(device);
  return runDatastoreEdit(ctx, { command: `remove-vpn-client ${user} ${device}` }, (edit) => {
    if (!Object.hasOwn(edit.model.users, user)) throw new UserError(`unknown user "${user}"`);
    const clients = clientsOf(edit.model.users[user]?.vpn_clients);
    const keep = clients.filter((c) => c.device !== device);
    if (keep.length === clients.length) {
      const known = clients.map((c) => c.device);
      throw new UserError(
        `${user} has no VPN client "${device}"${known.length ? ` (${user}'s devices: ${known.join(', ')})` : ` (${user} has none)`}`,
      );
    }
    const doc = edit.document('users');
    if (keep.length === 0) doc.delete([user, 'vpn_clients']);
    else doc.set([user, 'vpn_clients'], keep);
    edit.record({ kind: 'users', key: user, action: 'update', value: { vpn_clients: keep } });
    return `removed VPN client ${device} of ${user}`;
  });
}
