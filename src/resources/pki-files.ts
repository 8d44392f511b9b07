// Where the cluster PKI lives: this host's private files under <root>/etc/srvctl/pki (keys 0600,
// never published) and the public exchange under the datastore's pki/ dir (requests, certificates,
// the CA certificate), written atomically under the datastore lock.
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import { withDatastoreLock } from '../datastore/datastore-lock.js';
import { commitEdit } from '../datastore/git-commit-edit.js';
import { publishToGitSource } from '../datastore/git-publish.js';
import { listNoFollow, readTextNoFollow, UnsafePathError, writeNoFollow } from '../drivers/no-follow-fs.js';
import type { Drivers } from '../drivers/types.js';
import { ScError, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';

export const PKI_DIR = '/etc/srvctl/pki';
export const HOST_KEY_PATH = `${PKI_DIR}/host.key`;
export const HOST_CERT_PATH = `${PKI_DIR}/host.crt`;
export const CA_CERT_PATH = `${PKI_DIR}/ca.crt`;
export const CA_KEY_PATH = `${PKI_DIR}/ca.key`;

/** The datastore's public PKI exchange, relative to the datastore dir. */
export const DATASTORE_PKI = 'pki';
export const requestFile = (fqdn: string): string => path.join(DATASTORE_PKI, 'requests', `${fqdn}.csr`);
export const certFile = (fqdn: string): string => path.join(DATASTORE_PKI, 'certs', `${fqdn}.crt`);
export const CA_CERT_FILE = path.join(DATASTORE_PKI, 'ca.crt');

const DAY_MS = 86_400_000;
/** A request or certificate is a few KiB; anything far larger in pki/ is not one. */
const PKI_FILE_MAX_BYTES = 1 << 20;
/** Certificates are re-issued when they expire within this many days. */
export const RENEW_BEFORE_DAYS = 30;

export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

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

/** The host's private PKI files, absolute under --root. */
export function localPki(drivers: Drivers) {
  const at = (p: string) => drivers.files.hostPath(p);
  return {
    path: at,
    read: (p: string) => readTextIfExists(at(p)),
    async mode(p: string): Promise<number | undefined> {
      try {
        return (await stat(at(p))).mode & 0o777;
      } catch {
        return undefined;
      }
    },
    /** Writes a file only when its content differs; `secret` files are 0600 from the first byte. */
    async write(p: string, text: string, options: { secret?: boolean } = {}): Promise<void> {
      const file = at(p);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
      const mode = options.secret ? 0o600 : 0o644;
      if ((await readTextIfExists(file)) === text) {
        await chmod(file, mode);
        return;
      }
      await writeFileAtomic(file, text, { mode });
    },
    chmod: (p: string, mode: number) => chmod(at(p), mode),
  };
}

/** The datastore's pki/ dir of this host's datastore; a UserError when this run has none. */
export function datastorePki(host: HostContext) {
  const location = host.datastore;
  const dir = location?.dir;
  const at = (rel: string): string => {
    if (dir === undefined) throw new UserError('the cluster PKI needs the datastore directory, and this run has none');
    return path.join(dir, rel);
  };
  return {
    /** A public PKI file's text, never through a link or from a special file (refused: UserError). */
    read: (rel: string) => (dir === undefined ? Promise.resolve(undefined) : readTextNoFollow(dir, rel, { maxBytes: PKI_FILE_MAX_BYTES })),
    /** The host names with a published request (plain files only; a link is never a request). */
    async requestHosts(): Promise<string[]> {
      if (dir === undefined) return [];
      const entries = (await listNoFollow(dir, path.join(DATASTORE_PKI, 'requests'))) ?? [];
      return entries
        .filter((e) => e.type === 'file' && e.name.endsWith('.csr') && !e.name.startsWith('.'))
        .map((e) => e.name.slice(0, -'.csr'.length))
        .sort();
    },
    /** Publishes public PKI files (requests, certificates, the CA certificate) atomically, under the datastore lock. */
    async publish(files: Readonly<Record<string, string>>, command: string): Promise<void> {
      if (!location || dir === undefined) throw new UserError('the cluster PKI needs the datastore directory, and this run has none');
      for (const text of Object.values(files)) {
        if (/PRIVATE KEY/.test(text)) throw new Error('refusing to publish a private key into the datastore');
      }
      const names = Object.keys(files).join(', ');
      const message = `${command} on ${host.name}: publish ${names}`;
      const actor = `sc on ${host.name}`;
      // A --source checkout: the files reach the other hosts only as a commit pushed to the source.
      if (location.gitSource !== undefined) {
        await publishToGitSource({ root: host.root, spec: location.gitSource, files, message, actor, host: host.name });
        return;
      }
      if (location.readOnly) {
        throw new UserError(
          `cannot publish ${names}: the datastore ${dir} is the read-only fallback; ` +
            'make the read-write datastore available (or pass a writable --datastore DIR) and apply again',
        );
      }
      // Written and committed under the datastore lock: hosts sharing one work tree never
      // interleave their commits. A work tree of its own gets a commit of exactly these files
      // (pushed when settings.source.push asks for it), like every datastore edit.
      const commit = await withDatastoreLock(dir, command, async () => {
        const changed: string[] = [];
        for (const [rel, text] of Object.entries(files)) {
          // Relative to the opened datastore dir, no link followed: a `pki` link cannot send the write elsewhere.
          // A link or oversized file where the file should be is replaced (the write never follows
          // it); a link on the way (`pki` itself) is refused by the write.
          const current = await readTextNoFollow(dir, rel, { maxBytes: PKI_FILE_MAX_BYTES }).catch((error: unknown) => {
            if (error instanceof UnsafePathError) return undefined;
            throw error;
          });
          if (current === text) continue;
          await writeNoFollow(dir, rel, text);
          changed.push(at(rel));
        }
        return commitEdit({ dir, files: changed, message, actor, push: location.push === true });
      });
      if (commit?.pushProblem !== undefined) throw new ScError(`published ${names} and committed ${commit.revision.slice(0, 12)}, but ${commit.pushProblem}`);
    },
  };
}
