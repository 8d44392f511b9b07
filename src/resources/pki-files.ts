// Where the cluster PKI lives: this host's private files under <root>/etc/srvctl/pki (keys 0600,
// never published) and the public exchange under the datastore's pki/ dir (requests, certificates,
// the CA certificate), written atomically under the datastore lock.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import path from 'node:path';
import type { Drivers } from '../drivers/types.js';
import { UserError } from '../errors.js';
import type { HostContext, PkiExchange } from '../host-context.js';

export const PKI_DIR = '/etc/srvctl/pki';
export const HOST_KEY_PATH = `${PKI_DIR}/host.key`;
export const HOST_CERT_PATH = `${PKI_DIR}/host.crt`;
export const CA_CERT_PATH = `${PKI_DIR}/ca.crt`;
export const CA_KEY_PATH = `${PKI_DIR}/ca.key`;
/** The cluster's CRL as installed on a host with a user VPN server (its `crl-verify`). */
export const CRL_PATH = `${PKI_DIR}/crl.pem`;

/** The datastore's public PKI exchange, relative to the datastore dir. */
export const DATASTORE_PKI = 'pki';
export const requestFile = (fqdn: string): string => path.join(DATASTORE_PKI, 'requests', `${fqdn}.csr`);
export const certFile = (fqdn: string): string => path.join(DATASTORE_PKI, 'certs', `${fqdn}.crt`);
export const CA_CERT_FILE = path.join(DATASTORE_PKI, 'ca.crt');
/** The latest certificate the CA issued to a user VPN device (CN `USER@DEVICE`); kept after revocation. */
export const clientCertFile = (commonName: string): string => path.join(DATASTORE_PKI, 'clients', `${commonName}.crt`);
/** The CA's certificate revocation list: the user VPN servers refuse what it lists. */
export const CRL_FILE = path.join(DATASTORE_PKI, 'crl.pem');

const DAY_MS = 86_400_000;
/** Certificates are re-issued when they expire within this many days. */
export const RENEW_BEFORE_DAYS = 30;

export function parseCertificate(pem: string | undefined): X509Certificate | undefined {
  if (pem === undefined) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

export function parsePrivateKey(pem: string | undefined): KeyObject | undefined {
  if (pem === undefined) return undefined;
  try {
    return createPrivateKey(pem);
  } catch {
    return undefined;
  }
}

/** The SPKI PEM of a key, to compare with a request's or certificate's public key. */
export const publicKeyPem = (key: KeyObject): string => createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();

export const commonNameOf = (cert: X509Certificate): string | undefined => /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];

export const renewDue = (cert: X509Certificate, now: Date): boolean => Date.parse(cert.validTo) - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS;

/** Whether `cert` was issued by the CA whose certificate is `ca` (signature and issuer name). */
export function issuedBy(cert: X509Certificate, ca: X509Certificate | undefined): boolean {
  if (!ca) return false;
  try {
    return cert.issuer === ca.subject && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** The DER of a PEM block. */
const pemDer = (pem: string): Buffer => Buffer.from(pem.replace(/-----[A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64');

/**
 * Whether `cert` certifies the key of the request `csrPem`: a request carries its SubjectPublicKeyInfo
 * verbatim, so the certificate's SPKI DER is found inside the request's DER (no process per device).
 */
export function certifiesRequestKey(cert: X509Certificate, csrPem: string): boolean {
  return pemDer(csrPem).includes(cert.publicKey.export({ type: 'spki', format: 'der' }));
}

/** Whether the request `csrPem` is for the private key `key` (the same verbatim SPKI test). */
export const requestIsForKey = (csrPem: string, key: KeyObject): boolean =>
  pemDer(csrPem).includes(createPublicKey(key).export({ type: 'spki', format: 'der' }));

/** The host's private PKI files under --root, through the files driver. */
export function localPki(drivers: Drivers) {
  const { files } = drivers;
  return {
    /** Absolute path (for programs given a file name: openssl, openvpn). */
    path: (p: string) => files.hostPath(p),
    read: (p: string) => files.read(p),
    async mode(p: string): Promise<number | undefined> {
      const stat = await files.stat(p);
      return stat?.type === 'file' ? stat.mode & 0o777 : undefined;
    },
    /** Writes a file (or fixes its mode) when it differs; `secret` files are 0600 from the first byte. */
    async write(p: string, text: string, options: { secret?: boolean } = {}): Promise<void> {
      await files.write(p, text, { mode: options.secret ? 0o600 : 0o644 });
    },
    /** Sets the mode of an existing file, keeping its content. */
    async chmod(p: string, mode: number): Promise<void> {
      const text = await files.read(p);
      if (text !== undefined) await files.write(p, text, { mode });
    },
  };
}

/** The datastore's PKI exchange the engine provides; a UserError when this run has no datastore. */
export function datastorePki(host: HostContext): PkiExchange {
  if (host.pki === undefined) throw new UserError('the cluster PKI needs the datastore directory, and this run has none');
  return host.pki;
}
