// Reads a srvctl 3.2 datastore directory as it is on disk: clusters.json (or the datastore's own
// hosts.json), users.json, containers.json with source positions, and a listing of users/NAME/
// in which only public keys are ever read. Everything else of the import is pure (srvctl3-import.ts).
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError, type Diagnostic } from '../errors.js';
import { displayPathOf, sourceDocumentFromText, type SourceDocument } from '../datastore/source-document.js';

/** One entry of users/NAME/ (or of users/ itself): only `.pub` files are read, never a secret. */
export interface UserFileEntry {
  readonly name: string;
  readonly kind: 'file' | 'symlink' | 'dir' | 'other';
  readonly size: number;
  /** The text of a regular `.pub` file within the size limit; absent for everything else. */
  readonly text?: string;
}

export interface Srvctl3Source {
  /** The datastore directory (absolute). */
  readonly dir: string;
  /** clusters.json, or hosts.json (one cluster's hosts) wrapped under `hostsCluster`. */
  readonly clusters: SourceDocument;
  /** Set when the hosts came from hosts.json: the cluster name they are put in. */
  readonly hostsCluster?: string;
  readonly users: SourceDocument;
  readonly containers: SourceDocument;
  /** users/NAME → its entries; users/ entries that are not directories are under their own name with `kind`. */
  readonly userDirs: ReadonlyMap<string, readonly UserFileEntry[]>;
  /** users/ entries that are not plain directories (files, symlinks). */
  readonly strayUserEntries: readonly UserFileEntry[];
}

/** A 3.2 datastore of 4,000 containers is a few MB; anything far larger is not one. */
export const MAX_DATASTORE_FILE_BYTES = 64 * 1024 * 1024;
/** A public key file holds a few keys. */
export const MAX_PUBLIC_KEY_FILE_BYTES = 64 * 1024;

export interface ReadSourceOptions {
  /** --clusters FILE: clusters.json from elsewhere (srvctl 3 kept it in /etc/srvctl/data). */
  readonly clustersFile?: string;
  /** --cluster NAME: the cluster name for hosts.json (default `srvctl3`). */
  readonly cluster?: string;
}

const kindOf = (s: import('node:fs').Stats): UserFileEntry['kind'] =>
  s.isSymbolicLink() ? 'symlink' : s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';

async function readDocument(file: string, kind: 'clusters' | 'users' | 'containers', problems: Diagnostic[]): Promise<SourceDocument | undefined> {
  const shown = displayPathOf(file);
  let text: string;
  try {
    const info = await stat(file);
    if (!info.isFile()) {
      problems.push({ severity: 'error', file: shown, message: 'not a regular file' });
      return undefined;
    }
    if (info.size > MAX_DATASTORE_FILE_BYTES) {
      problems.push({
        severity: 'error',
        file: shown,
        message: `${info.size} bytes: larger than a srvctl 3 datastore file can be (${MAX_DATASTORE_FILE_BYTES})`,
      });
      return undefined;
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    problems.push({
      severity: 'error',
      file: shown,
      message: code === 'ENOENT' ? 'missing: a srvctl 3 datastore has this file' : `cannot read it (${code ?? String(error)})`,
    });
    return undefined;
  }
  try {
    const document = sourceDocumentFromText(kind, file, text);
    if (typeof document.data !== 'object' || document.data === null || Array.isArray(document.data)) {
      problems.push({ severity: 'error', file: shown, line: 1, column: 1, message: 'must hold one JSON object (name → record)' });
      return undefined;
    }
    return document;
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    problems.push(...error.diagnostics);
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** users/NAME/ listed without following links; only regular `.pub` files within the limit are read. */
async function readUserDir(dir: string): Promise<UserFileEntry[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(
    names.map(async (name): Promise<UserFileEntry> => {
      const info = await lstat(path.join(dir, name));
      const kind = kindOf(info);
      if (kind === 'file' && name.endsWith('.pub') && info.size <= MAX_PUBLIC_KEY_FILE_BYTES) {
        return { name, kind, size: info.size, text: await readFile(path.join(dir, name), 'utf8') };
      }
      return { name, kind, size: info.size };
    }),
  );
}

/** Reads SRC; every problem (missing file, malformed JSON with line and column) is reported at once. */
export async function readSrvctl3Source(src: string, options: ReadSourceOptions = {}): Promise<Srvctl3Source> {
  const dir = path.resolve(src);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new UserError(`${src} is not a directory: name the srvctl 3 datastore directory (e.g. /var/srvctl3/datastore)`);

  const problems: Diagnostic[] = [];
  let clustersFile = options.clustersFile !== undefined ? path.resolve(options.clustersFile) : path.join(dir, 'clusters.json');
  let hostsCluster: string | undefined;
  if (options.clustersFile === undefined && !(await exists(clustersFile)) && (await exists(path.join(dir, 'hosts.json')))) {
    // The 3.2 datastore itself holds only hosts.json (its cluster's hosts); clusters.json lived in /etc/srvctl/data.
    clustersFile = path.join(dir, 'hosts.json');
    hostsCluster = options.cluster ?? 'srvctl3';
  }
  const [clusters, users, containers] = await Promise.all([
    readDocument(clustersFile, 'clusters', problems),
    readDocument(path.join(dir, 'users.json'), 'users', problems),
    readDocument(path.join(dir, 'containers.json'), 'containers', problems),
  ]);

  const userDirs = new Map<string, UserFileEntry[]>();
  const strayUserEntries: UserFileEntry[] = [];
  const usersDir = path.join(dir, 'users');
  const usersInfo = await lstat(usersDir).catch(() => undefined);
  if (usersInfo?.isDirectory()) {
    for (const name of (await readdir(usersDir)).sort()) {
      const entry = await lstat(path.join(usersDir, name));
      if (entry.isDirectory()) userDirs.set(name, await readUserDir(path.join(usersDir, name)));
      else strayUserEntries.push({ name, kind: kindOf(entry), size: entry.size });
    }
  } else if (usersInfo) {
    problems.push({ severity: 'error', file: displayPathOf(usersDir), message: "users must be a directory (users/NAME/ holds each user's keys)" });
  }

  if (problems.length > 0 || !clusters || !users || !containers) {
    const errors = problems.filter((p) => p.severity === 'error').length;
    throw new UserError(`${src} is not a readable srvctl 3 datastore: ${errors} ${errors === 1 ? 'error' : 'errors'}`, problems);
  }
  return { dir, clusters, ...(hostsCluster !== undefined ? { hostsCluster } : {}), users, containers, userDirs, strayUserEntries };
}
