// The openssl driver: the cluster PKI's host commands (keys, requests, the CA, signing), as
// argument arrays through the exec layer. Private keys go to files only; none is ever returned
// in an error message, a log line or a result other than the one generateKey() hands its caller.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HostCommandError } from '../errors.js';
import type { Exec } from './types.js';

/** Extensions of a host certificate: both ends of a tunnel act as TLS server or client. */
export const HOST_CERT_EXTENSIONS = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyAgreement',
  'extendedKeyUsage=serverAuth,clientAuth',
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
].join('\n');

/**
 * The extended key usage that marks a user VPN device's certificate (issue 18): an OID under the
 * `2.25` arc (a UUID as an OID, ITU-T X.667: needs no registration). Host certificates never carry
 * it, so the user VPN server (`remote-cert-eku`) refuses a host certificate cryptographically.
 */
export const USER_VPN_CLIENT_EKU = '2.25.207923315947470735416327185409620374617';

/** Extensions of a user VPN device certificate: a TLS client only (no serverAuth: never a host). */
export const USER_VPN_CLIENT_CERT_EXTENSIONS = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyAgreement',
  `extendedKeyUsage=clientAuth,${USER_VPN_CLIENT_EKU}`,
  'subjectKeyIdentifier=hash',
  'authorityKeyIdentifier=keyid',
].join('\n');

/** Which kind of certificate the CA issues for a request. */
export type CertificateProfile = 'host' | 'user-vpn-client';

export interface RequestInfo {
  /** The CN of the request's subject, if any. */
  readonly commonName?: string;
  /** The request's public key (PEM, SPKI). */
  readonly publicKey: string;
}

export interface SignRequestInput {
  /** The request (PEM). */
  readonly request: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly days: number;
  /** Default `host`. */
  readonly profile?: CertificateProfile;
}

/** One entry of a certificate revocation list. */
export interface RevokedEntry {
  /** The serial number, upper-case hex without leading zeros (openssl's form). */
  readonly serial: string;
  /** When it was revoked (ISO 8601). */
  readonly revokedAt: string;
}

export interface CreateCrlInput {
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly revoked: readonly RevokedEntry[];
  readonly days: number;
}

export interface CrlInfo {
  readonly revoked: RevokedEntry[];
  /** The CRL's nextUpdate (ISO 8601). */
  readonly nextUpdate: string;
}

export interface OpensslDriver {
  /** A new EC P-256 private key (PEM); the caller writes it 0600 and never logs it. */
  generateKey(): Promise<string>;
  /** A certificate request (PEM) for the key in `keyPath`, subject CN=`commonName`. */
  createRequest(keyPath: string, commonName: string): Promise<string>;
  /** A self-signed CA certificate (PEM) for the key in `keyPath`. */
  createCaCertificate(keyPath: string, commonName: string, days: number): Promise<string>;
  /** The certificate (PEM) the CA issues for a request, with the host extensions. */
  signRequest(input: SignRequestInput): Promise<string>;
  /** Subject and public key of a request whose self-signature verifies; throws otherwise. */
  describeRequest(request: string): Promise<RequestInfo>;
  /** A new EC P-256 key and its request (CN=`commonName`) in one process, both only in memory: the caller keeps the key out of every output. */
  createKeyAndRequest(commonName: string): Promise<{ key: string; request: string }>;
  /** A CRL (PEM) the CA signs, listing `revoked`, valid `days`. */
  createCrl(input: CreateCrlInput): Promise<string>;
  /** The entries and nextUpdate of a CRL whose signature verifies against the CA certificate at `caCertPath`; throws otherwise. */
  describeCrl(crl: string, caCertPath: string): Promise<CrlInfo>;
}

// Pure command lines, exported for unit tests.
export const generateKeyArgs = (): string[] => ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];

export const createRequestArgs = (keyPath: string, commonName: string): string[] => [
  'req',
  '-new',
  '-key',
  keyPath,
  '-subj',
  `/CN=${commonName}`,
  '-out',
  '-',
];

export const createCaArgs = (keyPath: string, commonName: string, days: number): string[] => [
  'req',
  '-x509',
  '-new',
  '-key',
  keyPath,
  '-subj',
  `/CN=${commonName}`,
  '-days',
  String(days),
  '-addext',
  'basicConstraints=critical,CA:TRUE',
  '-addext',
  'keyUsage=critical,keyCertSign,cRLSign',
  '-out',
  '-',
];

export const signRequestArgs = (requestPath: string, extPath: string, input: SignRequestInput, serial: string): string[] => [
  'x509',
  '-req',
  '-in',
  requestPath,
  '-CA',
  input.caCertPath,
  '-CAkey',
  input.caKeyPath,
  '-set_serial',
  `0x${serial}`,
  '-days',
  String(input.days),
  '-extfile',
  extPath,
  '-sha256',
  '-out',
  '-',
];

export const createKeyAndRequestArgs = (commonName: string): string[] => [
  'req',
  '-new',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-keyout',
  '-',
  '-subj',
  `/CN=${commonName}`,
  '-out',
  '-',
];

export const createCrlArgs = (configPath: string, input: CreateCrlInput): string[] => [
  'ca',
  '-gencrl',
  '-batch',
  '-config',
  configPath,
  '-cert',
  input.caCertPath,
  '-keyfile',
  input.caKeyPath,
  '-crldays',
  String(input.days),
  '-md',
  'sha256',
  '-out',
  '-',
];

export const describeCrlArgs = (caCertPath: string): string[] => ['crl', '-noout', '-text', '-CAfile', caCertPath];

/** `openssl ca`'s index date: UTCTime `YYMMDDHHMMSSZ`. */
export function indexDate(iso: string): string {
  const d = new Date(iso);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
}

/**
 * The `openssl ca` index of a CRL: one revoked (`R`) line per entry. The expiry column is required by
 * the format but unused by -gencrl; the subject is unknown to a CRL and left as a placeholder.
 */
export function crlIndex(revoked: readonly RevokedEntry[]): string {
  // openssl's index wants an even number of hex digits.
  const even = (serial: string) => (serial.length % 2 === 1 ? `0${serial}` : serial);
  return revoked.map((r) => `R\t491231235959Z\t${indexDate(r.revokedAt)}\t${even(r.serial)}\tunknown\t/CN=revoked\n`).join('');
}

export const crlConfig = (dir: string): string =>
  [
    '[ca]',
    'default_ca = sc_ca',
    '[sc_ca]',
    `database = ${dir}/index.txt`,
    `crlnumber = ${dir}/crlnumber`,
    'default_md = sha256',
    'crl_extensions = sc_crl_ext',
    '[sc_crl_ext]',
    'authorityKeyIdentifier = keyid:always',
    '',
  ].join('\n');

/** Parses `openssl crl -noout -text`: the revoked serials with their dates, and nextUpdate. */
export function parseCrlText(stdout: string): CrlInfo {
  const next = /Next Update: (.+)$/m.exec(stdout)?.[1]?.trim();
  const nextUpdate = next !== undefined ? new Date(next) : undefined;
  if (nextUpdate === undefined || Number.isNaN(nextUpdate.getTime())) throw new Error('openssl printed no Next Update for the CRL');
  const revoked: RevokedEntry[] = [];
  const entry = /Serial Number: ([0-9A-Fa-f]+)\s+Revocation Date: ([^\n]+)/g;
  for (let m = entry.exec(stdout); m !== null; m = entry.exec(stdout)) {
    const at = new Date((m[2] as string).trim());
    revoked.push({ serial: normalSerial(m[1] as string), revokedAt: Number.isNaN(at.getTime()) ? new Date(0).toISOString() : at.toISOString() });
  }
  return { revoked, nextUpdate: nextUpdate.toISOString() };
}

/** Serial numbers compared as upper-case hex without leading zeros (Node's and openssl's forms differ). */
export const normalSerial = (hex: string): string => hex.toUpperCase().replace(/^0+(?=.)/, '');

export const describeRequestArgs = (): string[] => ['req', '-noout', '-verify', '-subject', '-pubkey', '-nameopt', 'RFC2253'];

/** Parses `openssl req -noout -subject -pubkey -nameopt RFC2253` output. */
export function parseRequestDescription(stdout: string): RequestInfo {
  const key = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/.exec(stdout);
  if (!key) throw new Error('openssl printed no public key for the request');
  const subject = /^subject=(.*)$/m.exec(stdout)?.[1] ?? '';
  const cn = /(?:^|,)CN=((?:\\.|[^,])*)/.exec(subject)?.[1];
  return { ...(cn !== undefined ? { commonName: cn } : {}), publicKey: `${key[0]}\n` };
}

const pemOnly = (stdout: string, label: string): string => {
  const match = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`).exec(stdout);
  if (!match) throw new Error(`openssl printed no ${label}`);
  return `${match[0]}\n`;
};

export function createOpensslDriver(exec: Exec): OpensslDriver {
  // Keys and certificates are files, not network work: never inside --netns.
  const openssl = (args: string[], input?: string) => exec.run('openssl', args, { inNetns: false, ...(input !== undefined ? { input } : {}) });

  return {
    async generateKey() {
      const { stdout } = await openssl(generateKeyArgs());
      return pemOnly(stdout, 'PRIVATE KEY');
    },
    async createRequest(keyPath, commonName) {
      return pemOnly((await openssl(createRequestArgs(keyPath, commonName))).stdout, 'CERTIFICATE REQUEST');
    },
    async createCaCertificate(keyPath, commonName, days) {
      return pemOnly((await openssl(createCaArgs(keyPath, commonName, days))).stdout, 'CERTIFICATE');
    },
    async signRequest(input) {
      // x509 -req reads extensions only from a file; both inputs are public, a private temp dir keeps them.
      const dir = await mkdtemp(path.join(tmpdir(), 'sc-sign-'));
      try {
        const requestPath = path.join(dir, 'request.csr');
        const extPath = path.join(dir, 'host.ext');
        await writeFile(requestPath, input.request, { mode: 0o600 });
        const extensions = input.profile === 'user-vpn-client' ? USER_VPN_CLIENT_CERT_EXTENSIONS : HOST_CERT_EXTENSIONS;
        await writeFile(extPath, `${extensions}\n`, { mode: 0o600 });
        const serial = randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1');
        return pemOnly((await openssl(signRequestArgs(requestPath, extPath, input, serial))).stdout, 'CERTIFICATE');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async createKeyAndRequest(commonName) {
      // Both PEM blocks come on stdout; a failure's error carries stderr only, never what was printed.
      let stdout: string;
      try {
        stdout = (await openssl(createKeyAndRequestArgs(commonName))).stdout;
      } catch (error) {
        if (error instanceof HostCommandError) throw new HostCommandError(error.command, error.code, error.stderr);
        throw error;
      }
      return { key: pemOnly(stdout, 'PRIVATE KEY'), request: pemOnly(stdout, 'CERTIFICATE REQUEST') };
    },
    async createCrl(input) {
      // openssl ca keeps its state in files: a private temp dir holds an index built from `revoked`.
      const dir = await mkdtemp(path.join(tmpdir(), 'sc-crl-'));
      try {
        const configPath = path.join(dir, 'ca.cnf');
        await writeFile(configPath, crlConfig(dir), { mode: 0o600 });
        await writeFile(path.join(dir, 'index.txt'), crlIndex(input.revoked), { mode: 0o600 });
        await writeFile(path.join(dir, 'crlnumber'), `${Date.now().toString(16).toUpperCase().padStart(16, '0')}\n`, { mode: 0o600 });
        return pemOnly((await openssl(createCrlArgs(configPath, input))).stdout, 'X509 CRL');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async describeCrl(crl, caCertPath) {
      // OpenSSL 3.0 exits 0 after "verify failure", 3.5 exits 1: judged by what it says, not its exit code.
      const result = await exec.run('openssl', describeCrlArgs(caCertPath), { inNetns: false, input: crl, allowFailure: true });
      if (result.exitCode !== 0 || !/verify OK/.test(result.stderr))
        throw new HostCommandError(result.command, result.exitCode, result.stderr, '', { reason: 'the CRL does not verify' });
      try {
        return parseCrlText(result.stdout);
      } catch (error) {
        throw new HostCommandError(result.command, result.exitCode, result.stderr, '', { reason: (error as Error).message });
      }
    },
    async describeRequest(request) {
      const result = await openssl(describeRequestArgs(), request);
      try {
        return parseRequestDescription(result.stdout);
      } catch (error) {
        throw new HostCommandError(result.command, result.exitCode, result.stderr, '', { reason: (error as Error).message });
      }
    },
  };
}
