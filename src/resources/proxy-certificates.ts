// The certificates the reverse proxy can serve: an operator's PEMs in a root-only host directory
// (`/etc/srvctl/cert/NAME.pem`, or a wildcard in `/etc/srvctl/cert/DOMAIN/`), and those ACME
// issued. Parsing is pure (node:crypto on the text); reading goes through the files driver.
// Root-only means it: /etc/srvctl, the cert directory, a DOMAIN/ directory and a PEM owned by
// someone else than root, or writable by group or others, are refused (a key from a place another
// user could have written is never read, let alone served); `sc status` says which and why.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { FileStat, FilesDriver } from '../drivers/types.js';
import type { CertificateInfo } from './proxy-routes.js';

export const OPERATOR_CERT_DIR = '/etc/srvctl/cert';
export const ACME_CERT_DIR = '/var/lib/srvctl/acme/certs';

const CLOCK_SKEW_MS = 5 * 60_000;
const PRIVATE_KEY_BLOCK = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]+?-----END \1PRIVATE KEY-----/;

/** One PEM bundle (certificate chain + private key) as the route model sees it. */
export function parsePemBundle(path: string, source: CertificateInfo['source'], text: string, now: Date): CertificateInfo {
  try {
    const cert = new X509Certificate(text);
    const san = cert.subjectAltName ?? '';
    const dnsNames = san
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.startsWith('DNS:'))
      .map((s) => s.slice(4).toLowerCase());
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]?.toLowerCase();
    const names = dnsNames.length > 0 ? dnsNames : cn ? [cn] : [];
    const notAfter = new Date(cert.validTo);
    const notBefore = new Date(cert.validFrom);
    const keyText = PRIVATE_KEY_BLOCK.exec(text)?.[0];
    const keyMatches = keyText !== undefined && cert.checkPrivateKey(createPrivateKey(keyText));
    // A few minutes of clock skew do not make a just-issued certificate unusable.
    const started = notBefore.getTime() <= now.getTime() + CLOCK_SKEW_MS;
    return { path, source, names, notAfter: notAfter.toISOString(), usable: keyMatches && started && now < notAfter };
  } catch {
    return { path, source, names: [], notAfter: '', usable: false };
  }
}

/** A certificate found on the host, with a digest of its bytes (a replaced file is a change). */
export interface FoundCertificate {
  readonly info: CertificateInfo;
  readonly sha256: string;
}

/** A PEM or directory of the operator's that is not root-only, and why: it was not read. */
export interface RefusedCertificate {
  readonly path: string;
  readonly reason: string;
}

export interface CertificateInventory {
  readonly found: readonly FoundCertificate[];
  readonly refused: readonly RefusedCertificate[];
}

/** Why a file or directory of the operator's certificates is not root-only; undefined when it is. */
export function notRootOnly(stat: Pick<FileStat, 'uid' | 'mode'>): string | undefined {
  const problems: string[] = [];
  if (stat.uid !== 0) problems.push(`owned by uid ${stat.uid}, not root`);
  if ((stat.mode & 0o022) !== 0) {
    const who = [(stat.mode & 0o020) !== 0 ? 'group' : '', (stat.mode & 0o002) !== 0 ? 'others' : ''].filter(Boolean).join(' and ');
    problems.push(`writable by ${who} (mode ${(stat.mode & 0o7777).toString(8).padStart(4, '0')})`);
  }
  return problems.length > 0 ? problems.join(', ') : undefined;
}

const refusal = (what: string, reason: string): string =>
  `${what} is ${reason}: refused, nothing in it is loaded (make it root-owned and writable by root only: chown root, chmod go-w)`;

async function pemFilesIn(files: FilesDriver, dir: string, depth: number, rootOnly: boolean, refused: RefusedCertificate[]): Promise<string[]> {
  const entries = (await files.list(dir)) ?? [];
  const found: string[] = [];
  for (const e of entries) {
    const entryPath = `${dir}/${e.name}`;
    const isPem = e.type === 'file' && e.name.endsWith('.pem');
    const isDir = e.type === 'dir' && depth > 0;
    if (!isPem && !isDir) continue;
    if (rootOnly) {
      const stat = await files.stat(entryPath);
      const reason = stat ? notRootOnly(stat) : 'gone while read';
      if (reason !== undefined) {
        refused.push({
          path: entryPath,
          reason: isPem ? `${entryPath} is ${reason}: refused, not loaded (chown root, chmod go-w)` : refusal(entryPath, reason),
        });
        continue;
      }
    }
    if (isPem) found.push(entryPath);
    else found.push(...(await pemFilesIn(files, entryPath, depth - 1, rootOnly, refused)));
  }
  return found;
}

/**
 * Every PEM of the operator (top level and one directory down) and of ACME, parsed, by path; and
 * the operator's files and directories refused for not being root-only (their PEMs are not read).
 */
export async function readCertificateInventory(files: FilesDriver, now: Date): Promise<CertificateInventory> {
  const sources: [string, CertificateInfo['source'], number][] = [
    [OPERATOR_CERT_DIR, 'operator', 1],
    [ACME_CERT_DIR, 'acme', 0],
  ];
  const found: FoundCertificate[] = [];
  const refused: RefusedCertificate[] = [];
  for (const [dir, source, depth] of sources) {
    const rootOnly = source === 'operator';
    if (rootOnly) {
      // The directory and its parent under --root: whoever may write there may swap the PEMs.
      const unsafe = await unsafeDirectory(files, dir);
      if (unsafe) {
        refused.push(unsafe);
        continue;
      }
    }
    for (const file of await pemFilesIn(files, dir, depth, rootOnly, refused)) {
      const text = await files.read(file, { maxBytes: 1 << 20 });
      if (text === undefined) continue;
      found.push({ info: parsePemBundle(file, source, text, now), sha256: createHash('sha256').update(text).digest('hex') });
    }
  }
  return { found, refused };
}

async function unsafeDirectory(files: FilesDriver, dir: string): Promise<RefusedCertificate | undefined> {
  for (const d of [dir.slice(0, dir.lastIndexOf('/')), dir]) {
    const stat = await files.stat(d);
    if (stat === undefined) return undefined; // nothing there: nothing to load
    if (stat.type !== 'dir') return { path: d, reason: `${d} is not a directory: refused, no operator certificate is loaded` };
    const reason = notRootOnly(stat);
    if (reason !== undefined) return { path: d, reason: refusal(d, reason) };
  }
  return undefined;
}

/** What the proxy's config depends on of the certificates: which files, their bytes, usable or not. */
export function inventoryDigest(found: readonly FoundCertificate[]): string {
  const view = found.map((f) => [f.info.path, f.sha256, f.info.usable]).sort();
  return createHash('sha256').update(JSON.stringify(view)).digest('hex').slice(0, 16);
}
