// The certificates the reverse proxy can serve: an operator's PEMs in a root-only host directory
// (`/etc/srvctl/cert/NAME.pem`, or a wildcard in `/etc/srvctl/cert/DOMAIN/`), and those ACME
// issued. Parsing is pure (node:crypto on the text); reading goes through the files driver.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { FilesDriver } from '../drivers/types.js';
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

async function pemFilesIn(files: FilesDriver, dir: string, depth: number): Promise<string[]> {
  const entries = (await files.list(dir)) ?? [];
  const found: string[] = [];
  for (const e of entries) {
    if (e.type === 'file' && e.name.endsWith('.pem')) found.push(`${dir}/${e.name}`);
    else if (e.type === 'dir' && depth > 0) found.push(...(await pemFilesIn(files, `${dir}/${e.name}`, depth - 1)));
  }
  return found;
}

/** Every PEM of the operator (top level and one directory down) and of ACME, parsed, by path. */
export async function readCertificateInventory(files: FilesDriver, now: Date): Promise<FoundCertificate[]> {
  const sources: [string, CertificateInfo['source'], number][] = [
    [OPERATOR_CERT_DIR, 'operator', 1],
    [ACME_CERT_DIR, 'acme', 0],
  ];
  const found: FoundCertificate[] = [];
  for (const [dir, source, depth] of sources) {
    for (const file of await pemFilesIn(files, dir, depth)) {
      const text = await files.read(file, { maxBytes: 1 << 20 });
      if (text === undefined) continue;
      found.push({ info: parsePemBundle(file, source, text, now), sha256: createHash('sha256').update(text).digest('hex') });
    }
  }
  return found;
}

/** What the proxy's config depends on of the certificates: which files, their bytes, usable or not. */
export function inventoryDigest(found: readonly FoundCertificate[]): string {
  const view = found.map((f) => [f.info.path, f.sha256, f.info.usable]).sort();
  return createHash('sha256').update(JSON.stringify(view)).digest('hex').slice(0, 16);
}
