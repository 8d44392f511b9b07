// Reads a srvctl 3.2 datastore directory as it is on disk: clusters.json (or the datastore's own
// hosts.json), users.json, containers.json with source positions, and a listing of users/NAME/
// in which only public keys are ever read. Everything else of the import is pure (srvctl3-import.ts).
// The old datastore is input like any other: nothing below its directory is read through a symlink
// or as a special file, and every read is bounded (the no-follow reads of the files driver).
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { UnsafePathError, UserError, type Diagnostic } from '../errors.js';
import { FileTooLargeError, listNoFollow, readTextNoFollow, statNoFollow, type EntryType } from '../drivers/no-follow-fs.js';
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

const kindOf = (type: EntryType): UserFileEntry['kind'] => type;

/** Reads `trusted/rel` (never through a symlink, never a special file, at most the limit). */
async function readDocument(
  trusted: string,
  rel: string,
  kind: 'clusters' | 'users' | 'containers',
  problems: Diagnostic[],
): Promise<SourceDocument | undefined> {
  const file = path.join(trusted, rel);
  const shown = displayPathOf(file);
  let text: string | undefined;
  try {
    text = await readTextNoFollow(trusted, rel, { maxBytes: MAX_DATASTORE_FILE_BYTES });
  } catch (error) {
    let message: string;
    if (error instanceof FileTooLargeError)
      message = `${error.size} bytes: larger than a srvctl 3 datastore file can be (${MAX_DATASTORE_FILE_BYTES})`;
    else if (error instanceof UnsafePathError) message = `not a regular file (refused: ${error.message}); sc reads no symlink or special file here`;
    else message = `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
    problems.push({ severity: 'error', file: shown, message });
    return undefined;
  }
  if (text === undefined) {
    problems.push({ severity: 'error', file: shown, message: 'missing: a srvctl 3 datastore has this file' });
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

async function exists(trusted: string, rel: string): Promise<boolean> {
  return (await statNoFollow(trusted, rel).catch(() => undefined)) !== undefined;
}

/** users/NAME/ listed without following links; only regular `.pub` files within the limit are read. */
async function readUserDir(trusted: string, rel: string): Promise<UserFileEntry[]> {
  const entries = (await listNoFollow(trusted, rel)) ?? [];
  return Promise.all(
    entries.map(async ({ name }): Promise<UserFileEntry> => {
      const fileRel = `${rel}/${name}`;
      const info = await statNoFollow(trusted, fileRel);
      if (info === undefined) return { name, kind: 'other', size: 0 };
      const kind = kindOf(info.type);
      if (kind === 'file' && name.endsWith('.pub') && info.size <= MAX_PUBLIC_KEY_FILE_BYTES) {
        // Swapped for a link or grown past the limit since the listing: left behind like any other such entry.
        const text = await readTextNoFollow(trusted, fileRel, { maxBytes: MAX_PUBLIC_KEY_FILE_BYTES }).catch((error: unknown) => {
          if (error instanceof UnsafePathError) return undefined;
          throw error;
        });
        return text === undefined ? { name, kind: 'other', size: info.size } : { name, kind, size: info.size, text };
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
  // --clusters FILE is the operator's own pointer (followed to where it leads); files inside SRC are not.
  const explicit =
    options.clustersFile !== undefined ? await realpath(options.clustersFile).catch(() => path.resolve(options.clustersFile!)) : undefined;
  let clusters: { trusted: string; rel: string } =
    explicit !== undefined ? { trusted: path.dirname(explicit), rel: path.basename(explicit) } : { trusted: dir, rel: 'clusters.json' };
  let hostsCluster: string | undefined;
  if (options.clustersFile === undefined && !(await exists(dir, 'clusters.json')) && (await exists(dir, 'hosts.json'))) {
    // The 3.2 datastore itself holds only hosts.json (its cluster's hosts); clusters.json lived in /etc/srvctl/data.
    clusters = { trusted: dir, rel: 'hosts.json' };
    hostsCluster = options.cluster ?? 'srvctl3';
  }
  const [clustersDoc, users, containers] = await Promise.all([
    readDocument(clusters.trusted, clusters.rel, 'clusters', problems),
    readDocument(dir, 'users.json', 'users', problems),
    readDocument(dir, 'containers.json', 'containers', problems),
  ]);

  const userDirs = new Map<string, UserFileEntry[]>();
  const strayUserEntries: UserFileEntry[] = [];
  const usersDir = path.join(dir, 'users');
  const usersInfo = await statNoFollow(dir, 'users').catch(() => undefined);
  if (usersInfo?.type === 'dir') {
    for (const { name } of (await listNoFollow(dir, 'users')) ?? []) {
      const entry = await statNoFollow(dir, `users/${name}`);
      if (entry === undefined) continue;
      if (entry.type === 'dir') userDirs.set(name, await readUserDir(dir, `users/${name}`));
      else strayUserEntries.push({ name, kind: kindOf(entry.type), size: entry.size });
    }
  } else if (usersInfo) {
    problems.push({ severity: 'error', file: displayPathOf(usersDir), message: "users must be a directory (users/NAME/ holds each user's keys)" });
  }

  if (problems.length > 0 || !clustersDoc || !users || !containers) {
    const errors = problems.filter((p) => p.severity === 'error').length;
    throw new UserError(`${src} is not a readable srvctl 3 datastore: ${errors} ${errors === 1 ? 'error' : 'errors'}`, problems);
  }
  return { dir, clusters: clustersDoc, ...(hostsCluster !== undefined ? { hostsCluster } : {}), users, containers, userDirs, strayUserEntries };
}
