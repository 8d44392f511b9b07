// The cluster PKI's public exchange in the datastore (pki/requests, pki/certs, pki/ca.crt, and the
// user VPN's pki/clients and pki/crl.pem): the
// engine's side of the PkiExchange port. Reads never follow a link; publishing writes under the
// datastore lock relative to the opened datastore dir and commits (a work tree), or commits and
// pushes to the --source branch (a checkout), with the same race handling as every edit.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { listNoFollow, readTextNoFollow, UnsafePathError, writeNoFollow } from '../drivers/no-follow-fs.js';
import { ScError, UserError } from '../errors.js';
import type { PkiExchange } from '../host-context.js';
import { withDatastoreLock } from './datastore-lock.js';
import { commitEdit } from './git-commit-edit.js';
import { publishToGitSource, readFromSourceTip } from './git-publish.js';
import { sourceLabel, type GitSourceSpec } from './git-source.js';
import type { LoadedDatastore } from './load-datastore.js';

/** A request or certificate is a few KiB; anything far larger in pki/ is not one. */
const PKI_FILE_MAX_BYTES = 1 << 20;

/** Where the datastore is and how it publishes. */
export interface DatastorePlace {
  readonly dir: string;
  readonly readOnly: boolean;
  /** settings.source.push: a datastore that is a git work tree pushes the PKI commits to its upstream. */
  readonly push?: boolean;
  /** The datastore is the checkout of this --source repository: the PKI publishes by commit + push to it. */
  readonly gitSource?: GitSourceSpec;
}

export function datastorePlace(loaded: LoadedDatastore): DatastorePlace {
  const { location, model } = loaded;
  return {
    dir: location.dir,
    readOnly: location.readOnly,
    push: model.settings.source?.push === true,
    ...(location.gitSource !== undefined ? { gitSource: location.gitSource } : {}),
  };
}

/**
 * How long a pass waits for a file another host publishes (a host whose request is out waits for
 * the CA host's signature: hosts whose timers fire together converge in the same round instead of
 * the next), and how often it looks. No wait unless asked for (`sc reconcile` asks).
 */
export interface PublishedWait {
  readonly timeoutMs: number;
  readonly pollMs: number;
  /** Stops waiting (the pass is being stopped: SIGTERM to `sc reconcile`). */
  readonly signal?: AbortSignal;
}

/** `sc reconcile`'s wait: the CA host's pass signs within seconds of its start. */
export const RECONCILE_PUBLISHED_WAIT: PublishedWait = { timeoutMs: 30_000, pollMs: 1_000 };

/** The PKI exchange of the datastore at `place`, for host `hostName` under `root`. */
export function pkiExchange(place: DatastorePlace, hostName: string, root: string, wait?: PublishedWait): PkiExchange {
  const { dir } = place;
  const latest = (rel: string): Promise<string | undefined> =>
    place.gitSource !== undefined
      ? readFromSourceTip(root, place.gitSource, rel, PKI_FILE_MAX_BYTES)
      : readTextNoFollow(dir, rel, { maxBytes: PKI_FILE_MAX_BYTES }).catch(() => undefined);
  return {
    where: place.gitSource !== undefined ? `in the source branch ${sourceLabel(place.gitSource)}` : 'in the datastore',
    read: (rel) => readTextNoFollow(dir, rel, { maxBytes: PKI_FILE_MAX_BYTES }),
    async requestHosts() {
      const entries = (await listNoFollow(dir, path.join('pki', 'requests'))) ?? [];
      return entries
        .filter((e) => e.type === 'file' && e.name.endsWith('.csr') && !e.name.startsWith('.'))
        .map((e) => e.name.slice(0, -'.csr'.length))
        .sort();
    },
    async clientCertNames() {
      const entries = (await listNoFollow(dir, path.join('pki', 'clients'))) ?? [];
      return entries
        .filter((e) => e.type === 'file' && e.name.endsWith('.crt') && !e.name.startsWith('.'))
        .map((e) => e.name.slice(0, -'.crt'.length))
        .sort();
    },
    async publish(files, command) {
      for (const text of Object.values(files)) {
        if (/PRIVATE KEY/.test(text)) throw new Error('refusing to publish a private key into the datastore');
      }
      const names = Object.keys(files).join(', ');
      const message = `${command} on ${hostName}: publish ${names}`;
      const actor = `sc on ${hostName}`;
      // A --source checkout: the files reach the other hosts only as a commit pushed to the source.
      if (place.gitSource !== undefined) {
        await publishToGitSource({ root, spec: place.gitSource, files, message, actor, host: hostName });
        return;
      }
      if (place.readOnly) {
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
          changed.push(path.join(dir, rel));
        }
        return commitEdit({ dir, files: changed, message, actor, push: place.push === true });
      });
      if (commit?.pushProblem !== undefined)
        throw new ScError(`published ${names} and committed ${commit.revision.slice(0, 12)}, but ${commit.pushProblem}`);
    },
    ...(wait !== undefined && wait.timeoutMs > 0
      ? {
          async awaitPublished(rel: string, accept: (text: string) => boolean): Promise<string | undefined> {
            const deadline = Date.now() + wait.timeoutMs;
            for (;;) {
              const text = await latest(rel);
              if (text !== undefined && accept(text)) return text;
              if (Date.now() + wait.pollMs > deadline || wait.signal?.aborted) return undefined;
              await sleep(wait.pollMs, undefined, wait.signal ? { signal: wait.signal } : {}).catch(() => undefined);
            }
          },
        }
      : {}),
  };
}
