// Where the datastore is: --datastore/SC_DATASTORE, else the srvctl 3 locations under --root
// (read-write, then the read-only fallback), plus /etc/srvctl/data for static, hand-written input.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../errors.js';
import type { GitSourceSpec } from './git-source.js';

export interface DatastoreLocation {
  /** The datastore dir (rw, ro or --datastore); users/containers live here. */
  dir: string;
  /** `<root>/etc/srvctl/data` when it exists and no --datastore was given (hand-written input, e.g. clusters). */
  staticDir?: string;
  /** True on the read-only fallback: reads work, writes are refused. */
  readOnly: boolean;
  origin: 'option' | 'env' | 'rw' | 'ro';
  /** Why a fallback is in use; the CLI shows it once. */
  notice?: string;
  /** Set when `dir` is the checkout of a --source repository (read-only; the PKI publishes by push). */
  gitSource?: GitSourceSpec;
  /** The commit checked out, for a --source checkout. */
  revision?: string;
}

export const READ_WRITE_DATASTORE = 'var/srvctl3/datastore/rw';
export const READ_ONLY_DATASTORE = 'var/srvctl3/datastore/ro';
export const STATIC_DATA_DIR = 'etc/srvctl/data';

/**
 * --datastore (or SC_DATASTORE, resolved by the caller and passed as `datastore`; say so with
 * `datastoreOrigin: 'env'`) wins and is a single dir. Otherwise under `root`: the read-write
 * datastore if it is a readable dir (+ the static dir), else the read-only fallback, else a UserError
 * saying where sc looked and how to point it elsewhere.
 */
export async function resolveDatastoreLocation(opts: {
  datastore?: string;
  root: string;
  datastoreOrigin?: 'option' | 'env';
}): Promise<DatastoreLocation> {
  if (opts.datastore !== undefined && opts.datastore !== '') {
    const origin = opts.datastoreOrigin ?? 'option';
    const dir = resolve(opts.datastore);
    const problem = await directoryProblem(dir);
    if (problem) {
      const given = origin === 'env' ? 'SC_DATASTORE' : '--datastore';
      throw new UserError(`${given} ${dir}: ${problem}; point ${given} at the directory that holds clusters, users and containers (.json or .yaml)`);
    }
    return { dir, readOnly: false, origin };
  }

  const root = resolve(opts.root);
  const rw = join(root, READ_WRITE_DATASTORE);
  const ro = join(root, READ_ONLY_DATASTORE);
  const staticCandidate = join(root, STATIC_DATA_DIR);
  const staticDir = (await directoryProblem(staticCandidate)) === undefined ? staticCandidate : undefined;

  const rwProblem = await directoryProblem(rw);
  if (rwProblem === undefined) return withStatic({ dir: rw, readOnly: false, origin: 'rw' }, staticDir);

  const roProblem = await directoryProblem(ro);
  if (roProblem === undefined) {
    return withStatic(
      {
        dir: ro,
        readOnly: true,
        origin: 'ro',
        notice: `reading the read-only fallback ${ro}: the read-write datastore ${rw} is unavailable (${rwProblem}); writes are refused`,
      },
      staticDir,
    );
  }

  throw new UserError(
    `no datastore found: the read-write datastore ${rw} ${rwProblem}, and the read-only fallback ${ro} ${roProblem}; ` +
      'create one of them, or point sc at a datastore directory with --datastore DIR (or SC_DATASTORE), or use --root DIR for another root',
  );
}

/** Throws when `location` is the read-only fallback. Call before any write. */
export function assertWritable(location: DatastoreLocation): void {
  if (!location.readOnly) return;
  throw new UserError(
    `the datastore is read-only: ${location.dir} is the read-only fallback, in use because the read-write datastore is unavailable; ` +
      'make it available again (mount it), or pass a writable directory with --datastore DIR',
  );
}

function withStatic(location: DatastoreLocation, staticDir: string | undefined): DatastoreLocation {
  return staticDir === undefined ? location : { ...location, staticDir };
}

/** Why `dir` cannot serve as a datastore dir, phrased to follow the path; undefined when it can. */
async function directoryProblem(dir: string): Promise<string | undefined> {
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return 'is not a directory';
    await access(dir, constants.R_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'does not exist';
    if (code === 'EACCES' || code === 'EPERM') return 'is not readable';
    // A dead gluster/NFS mount answers ENOTCONN, EIO or ESTALE: the rw datastore is "unavailable".
    return `is unavailable: ${code ?? (error instanceof Error ? error.message : String(error))}`;
  }
}
