// Who and where this run is: the host sc reconciles, the --root prefix and the --netns.
import type { GitSourceSpec } from './datastore/git-source.js';
import type { LoadedDatastore } from './datastore/load-datastore.js';
import type { HostRef } from './datastore/model.js';

export interface HostContext extends HostRef {
  /** Prefix for every host path sc reads or writes; '/' on a real host. */
  readonly root: string;
  /** Network namespace all network work (and the containers) run in; undefined = the caller's. */
  readonly netns?: string;
  /** `sc apply --prune-data` or settings.prune.data: deleting a container also deletes /srv/NAME. */
  readonly pruneData?: boolean;
  /** settings.runtime: how containers run here (`auto`, the default, detects systemd as PID 1). */
  readonly runtime?: 'auto' | 'systemd' | 'direct';
  /** Where the datastore is: the cluster PKI publishes requests and certificates under its pki/ dir. */
  readonly datastore?: {
    readonly dir: string;
    readonly readOnly: boolean;
    /** settings.source.push: a datastore that is a git work tree pushes the PKI commits to its upstream. */
    readonly push?: boolean;
    /** The datastore is the checkout of this --source repository: the PKI publishes by commit + push to it. */
    readonly gitSource?: GitSourceSpec;
  };
}

/** What the cluster PKI needs to know about the datastore: where, writable or not, and how it publishes. */
export function hostDatastore(loaded: LoadedDatastore): NonNullable<HostContext['datastore']> {
  const { location, model } = loaded;
  return {
    dir: location.dir,
    readOnly: location.readOnly,
    push: model.settings.source?.push === true,
    ...(location.gitSource !== undefined ? { gitSource: location.gitSource } : {}),
  };
}
