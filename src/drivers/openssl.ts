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
        await writeFile(extPath, `${HOST_CERT_EXTENSIONS}\n`, { mode: 0o600 });
        const serial = randomBytes(16)
          .toString('hex')
          .replace(/^[89a-f]/, '1');
        return pemOnly((await openssl(signRequestArgs(requestPath, extPath, input, serial))).stdout, 'CERTIFICATE');
      } finally {
        await rm(dir, { recursive: true, force: true });
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
