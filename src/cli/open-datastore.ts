// A command's desired state and this host's place in it: the global options handed to the one
// module that decides where the desired state comes from (src/reconciler/desired-state.ts).
import type { DatastoreLocation } from '../datastore/datastore-location.js';
import type { LoadedDatastore, LoadOptions } from '../datastore/load-datastore.js';
import { UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import {
  hostContextOf,
  openDesiredLocation,
  openDesiredState,
  type DesiredStatePurpose,
  type DesiredStateRequest,
  type OpenReporter,
} from '../reconciler/desired-state.js';
import { resourceHandlers } from '../resources/registry.js';
import type { CommandContext } from './command-runner.js';

/** The global options that name the desired state. */
export function desiredStateRequest(ctx: CommandContext): DesiredStateRequest {
  const { source, datastore, datastoreOrigin, root } = ctx.options;
  return {
    root,
    ...(source !== undefined ? { source } : {}),
    ...(datastore !== undefined ? { datastore } : {}),
    ...(datastoreOrigin !== undefined ? { datastoreOrigin } : {}),
  };
}

export function reporterOf(ctx: CommandContext): OpenReporter {
  return { notice: (text) => ctx.notice(text), info: (fields, message) => ctx.logger.info(fields, message) };
}

/** Where the desired state is (a git source fetched and checked out); `purpose` edit refuses a git source. */
export function openDatastoreLocation(ctx: CommandContext, purpose?: DesiredStatePurpose): Promise<DatastoreLocation> {
  return openDesiredLocation(desiredStateRequest(ctx), reporterOf(ctx), purpose !== undefined ? { purpose } : {});
}

/**
 * The desired state, loaded and valid (schemas, cross-checks, the kinds' own checks). The
 * last-good fallback is `sc status`'s: it reads the source without touching the cache's checkout.
 */
export async function openDatastore(ctx: CommandContext, options?: LoadOptions, open: { lastGoodFallback?: boolean } = {}): Promise<LoadedDatastore> {
  const loaded = await openDesiredState(desiredStateRequest(ctx), reporterOf(ctx), resourceHandlers, {
    ...(options !== undefined ? { load: options } : {}),
    ...(open.lastGoodFallback !== undefined ? { lastGoodFallback: open.lastGoodFallback } : {}),
  });
  for (const w of loaded.warnings) ctx.logger.warn({ diagnostic: w }, w.message);
  return loaded;
}

/** This host's entry in the model, with --root and --netns: what the reconciler works on. `apply`: see hostContextOf. */
export function hostContext(ctx: CommandContext, loaded: LoadedDatastore, apply?: { pruneData?: boolean }): HostContext {
  const host = hostContextOf(
    loaded,
    { hostName: ctx.options.host, root: ctx.options.root, ...(ctx.options.netns !== undefined ? { netns: ctx.options.netns } : {}) },
    apply,
  );
  if (!host) {
    const known = Object.values(loaded.model.clusters).flatMap((hosts) => Object.keys(hosts));
    throw new UserError(
      `host "${ctx.options.host}" is not in the datastore's clusters (${known.length ? `known hosts: ${known.join(', ')}` : 'no hosts defined'}); pass --host FQDN or set SC_HOST`,
    );
  }
  return host;
}
