// The CA host's share of the user VPN (issue 18): it signs the devices' requests (users.vpn_clients)
// with the client profile (clientAuth + the user VPN EKU, never serverAuth) and publishes the
// certificates as pki/clients/USER@DEVICE.crt, and it keeps the cluster's CRL (pki/crl.pem): the
// certificate of a removed device, or of a device whose key was replaced, is revoked. Both go
// through the PKI exchange in one publish, like the host certificates.
import type { X509Certificate } from 'node:crypto';
import type { Model } from '../datastore/model.js';
import { normalSerial, USER_VPN_CLIENT_EKU, type RevokedEntry } from '../drivers/openssl.js';
import type { Drivers } from '../drivers/types.js';
import { ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { csrCommonName, vpnClientCommonName } from '../network/vpn-clients.js';
import {
  CA_CERT_FILE,
  CA_KEY_PATH,
  CRL_FILE,
  certifiesRequestKey,
  clientCertFile,
  commonNameOf,
  datastorePki,
  issuedBy,
  localPki,
  parseCertificate,
  renewDue,
} from './pki-files.js';

export const CLIENT_CERT_DAYS = 825;
/** A CRL's validity: OpenVPN refuses every client once the installed CRL is past its nextUpdate, so it is long and renewed early. */
export const CRL_DAYS = 365;
const DAY_MS = 86_400_000;
const CRL_RENEW_BEFORE_DAYS = 60;

/** A device's public material as the datastore has it. */
export interface ClientMaterial {
  readonly csr?: string;
  readonly certificate?: string;
}

/** Every user's devices with public material, by certificate name. */
export function clientMaterials(model: Model): Record<string, ClientMaterial> {
  const out: Record<string, ClientMaterial> = {};
  for (const [user, record] of Object.entries(model.users).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (const client of record.vpn_clients ?? []) {
      if (client.csr === undefined && client.certificate === undefined) continue;
      out[vpnClientCommonName(user, client.device)] = {
        ...(client.csr !== undefined ? { csr: client.csr } : {}),
        ...(client.certificate !== undefined ? { certificate: client.certificate } : {}),
      };
    }
  }
  return out;
}

export const isUserVpnClientCert = (cert: X509Certificate): boolean => (cert.keyUsage ?? []).includes(USER_VPN_CLIENT_EKU);

/** Whether `cert` is the device's current certificate: for its name, from this CA, a client one, for the device's key, not due. */
export function clientCertFits(
  cert: X509Certificate | undefined,
  commonName: string,
  material: ClientMaterial,
  ca: X509Certificate | undefined,
  now: Date,
): boolean {
  if (!cert || !issuedBy(cert, ca) || commonNameOf(cert) !== commonName || !isUserVpnClientCert(cert) || renewDue(cert, now)) return false;
  if (material.certificate !== undefined) return parseCertificate(material.certificate)?.fingerprint256 === cert.fingerprint256;
  return material.csr !== undefined && certifiesRequestKey(cert, material.csr);
}

export interface ClientSigningState {
  /** Devices whose certificate is to be issued (or re-issued, or copied from the datastore). */
  readonly pending: string[];
  /** Published certificates (by name) to add to the CRL: their device is gone or has another key now. */
  readonly revoke: string[];
  readonly crl: 'current' | 'stale' | 'absent';
  /** Devices whose material the CA will not certify, with the reason. */
  readonly refused: string[];
  /** Internal to the action: the CRL's entries, the certificates to revoke. */
  readonly crlEntries: readonly RevokedEntry[];
  readonly toRevoke: readonly X509Certificate[];
}

/** What the CA host has to do for the devices in `materials`, judged from what is published now. */
export async function clientSigningState(
  drivers: Drivers,
  host: HostContext,
  materials: Readonly<Record<string, ClientMaterial>>,
): Promise<ClientSigningState> {
  const store = datastorePki(host);
  const now = new Date();
  const caPem = await store.read(CA_CERT_FILE);
  const ca = parseCertificate(caPem);
  const pending: string[] = [];
  const refused: string[] = [];
  for (const [cn, material] of Object.entries(materials)) {
    const published = parseCertificate(await store.read(clientCertFile(cn)));
    if (clientCertFits(published, cn, material, ca, now)) continue;
    if (material.certificate !== undefined) {
      const given = parseCertificate(material.certificate);
      if (!clientCertFits(given, cn, material, ca, now)) {
        refused.push(`${cn}: the certificate in the datastore is not a current user VPN certificate of the cluster CA for ${cn}`);
        continue;
      }
    } else if (material.csr !== undefined && csrCommonName(material.csr) !== cn) {
      refused.push(`${cn}: the request in the datastore names ${JSON.stringify(csrCommonName(material.csr) ?? 'no CN')}`);
      continue;
    }
    pending.push(cn);
  }
  // The CRL: present, signed by the CA, not near its nextUpdate.
  let crl: ClientSigningState['crl'] = 'absent';
  let crlEntries: RevokedEntry[] = [];
  const crlPem = await store.read(CRL_FILE);
  if (crlPem !== undefined && caPem !== undefined) {
    try {
      const info = await drivers.openssl.describeCrl(crlPem, await caCertFile(drivers, caPem));
      crlEntries = info.revoked;
      crl = Date.parse(info.nextUpdate) - now.getTime() < CRL_RENEW_BEFORE_DAYS * DAY_MS ? 'stale' : 'current';
    } catch {
      crl = 'stale';
    }
  }
  const listed = new Set(crlEntries.map((e) => e.serial));
  const revoke: string[] = [];
  const toRevoke: X509Certificate[] = [];
  const published = await store.clientCertNames();
  // A cluster that never had a device needs no CRL (and publishes none).
  if (crl === 'absent' && published.length === 0 && Object.keys(materials).length === 0) crl = 'current';
  for (const cn of published) {
    const cert = parseCertificate(await store.read(clientCertFile(cn)));
    if (!cert || !issuedBy(cert, ca) || listed.has(normalSerial(cert.serialNumber))) continue;
    const material = Object.hasOwn(materials, cn) ? materials[cn] : undefined;
    // Kept: the device's certificate, or one for its key that only needs renewal.
    if (material !== undefined && commonNameOf(cert) === cn && clientCertFits(cert, cn, material, ca, new Date(0))) continue;
    revoke.push(cn);
    toRevoke.push(cert);
  }
  return { pending, revoke, crl, refused, crlEntries, toRevoke };
}

/** The CA certificate as a file for openssl: the published one, next to the CA key. */
async function caCertFile(drivers: Drivers, caPem: string): Promise<string> {
  const local = localPki(drivers);
  const issuerCopy = '/etc/srvctl/pki/ca-issuer.crt';
  if ((await local.read(issuerCopy)) !== caPem) await local.write(issuerCopy, caPem);
  return local.path(issuerCopy);
}

/** Signs the pending devices, revokes what must be, re-issues the CRL when needed: one publish. */
export async function signClients(
  drivers: Drivers,
  host: HostContext,
  materials: Readonly<Record<string, ClientMaterial>>,
  command: string,
): Promise<void> {
  const store = datastorePki(host);
  const state = await clientSigningState(drivers, host, materials);
  const caPem = await store.read(CA_CERT_FILE);
  if (caPem === undefined) throw new Error('the cluster CA certificate is not published yet; pki/ca makes it');
  const caCertPath = await caCertFile(drivers, caPem);
  const caKeyPath = localPki(drivers).path(CA_KEY_PATH);
  const files: Record<string, string> = {};
  const revokedAt = new Date().toISOString();
  const entries = [...state.crlEntries, ...state.toRevoke.map((c) => ({ serial: normalSerial(c.serialNumber), revokedAt }))];
  if (state.crl !== 'current' || state.toRevoke.length > 0) {
    files[CRL_FILE] = await drivers.openssl.createCrl({ caCertPath, caKeyPath, revoked: entries, days: CRL_DAYS });
  }
  const unsigned: string[] = [];
  for (const cn of state.pending) {
    const material = materials[cn] as ClientMaterial;
    if (material.certificate !== undefined) {
      files[clientCertFile(cn)] = material.certificate;
      continue;
    }
    const request = material.csr as string;
    const info = await drivers.openssl.describeRequest(request).catch(() => undefined);
    if (info?.commonName !== cn) {
      unsigned.push(cn);
      continue;
    }
    files[clientCertFile(cn)] = await drivers.openssl.signRequest({
      request,
      caCertPath,
      caKeyPath,
      days: CLIENT_CERT_DAYS,
      profile: 'user-vpn-client',
    });
  }
  if (Object.keys(files).length > 0) await store.publish(files, command);
  if (unsigned.length > 0)
    throw new ScError(
      `not signed: the certificate request of ${unsigned.join(', ')} does not verify; give the device's request again with sc add-vpn-client USER DEVICE --csr FILE`,
    );
}
