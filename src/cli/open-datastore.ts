// Finds and loads the datastore for a command, and this host's place in it.
import { resolveDatastoreLocation, type DatastoreLocation } from '../datastore/datastore-location.js';
import { loadDatastore, type LoadedDatastore, type LoadOptions } from '../datastore/load-datastore.js';
import { exportRevision, parseGitSource, redactUrl, sourceLabel, syncGitSource, verifyRevision, withSourceLock } from '../datastore/git-source.js';
import { verifyRequiredInForce } from '../datastore/source-verify.js';
import { sourceFromHostSettings } from '../datastore/host-settings-source.js';
import { findHost } from '../datastore/model.js';
import { readApplyRecord } from '../reconciler/apply-record.js';
import { readReconcileStatus } from '../reconciler/reconcile-status.js';
import { formatDiagnostic, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { CommandContext } from './command-runner.js';
import { datastorePlace, pkiExchange } from '../datastore/pki-exchange.js';

/**
 * --source, else --datastore, else the git source named in this host's own settings
 * (`source.url`), else the datastore locations under --root.
 */
export async function openDatastoreLocation(ctx: CommandContext, mode: { view?: boolean } = {}): Promise<DatastoreLocation> {
  const { source, datastore, datastoreOrigin, root } = ctx.options;
  if (source !== undefined) return openGitSource(ctx, source, mode);
  if (datastore === undefined) {
    const configured = await sourceFromHostSettings(root);
    if (configured !== undefined) {
      ctx.logger.info({ source: redactUrl(configured) }, "the source named in this host's settings (source.url)");
      return openGitSource(ctx, configured, mode);
    }
  }
  const location = await resolveDatastoreLocation({ datastore, root, datastoreOrigin });
  if (location.notice) ctx.notice(location.notice);
  return location;
}

/**
 * --source URL[#REF]: fetch into the cache under --root and check REF out; a failed fetch falls
 * back to the last good revision of `sc reconcile` (or the cached one) with a notice.
 */
async function openGitSource(ctx: CommandContext, source: string, mode: { view?: boolean }): Promise<DatastoreLocation> {
  const spec = parseGitSource(source);
  const root = ctx.options.root;
  const lastGood = (await readReconcileStatus(root))?.last_good_revision ?? undefined;
  const checkout = await withSourceLock(root, `sc --source ${sourceLabel(spec)}`, async () => {
    const verify = await verifyRequiredInForce(root);
    return syncGitSource(spec, { root, lastGoodRevision: lastGood, verify, view: mode.view === true });
  });
  if (checkout.fetchError !== undefined) {
    const which = checkout.revision === lastGood ? 'the last good revision' : 'the cached revision';
    ctx.notice(`fetching ${sourceLabel(spec)} failed (${checkout.fetchError}); using ${which} ${checkout.revision.slice(0, 12)}`);
  }
  ctx.logger.info({ source: sourceLabel(spec), revision: checkout.revision }, 'desired state from git');
  return { dir: checkout.dir, readOnly: true, origin: 'option', gitSource: spec, revision: checkout.revision };
}

export async function openDatastore(ctx: CommandContext, options?: LoadOptions, open: { lastGoodFallback?: boolean } = {}): Promise<LoadedDatastore> {
  // The last-good fallback is `sc status`'s: it reads the source without touching the cache's checkout.
  const location = await openDatastoreLocation(ctx, { view: open.lastGoodFallback === true });
  const loaded = await loadDatastore(location, options).catch((error: unknown) => {
    if (!open.lastGoodFallback || location.gitSource === undefined || !(error instanceof UserError)) throw error;
    return loadLastGoodRevision(ctx, location, error, options);
  });
  // A revision that asks for signatures is checked itself too (the one in force was checked before the checkout).
  if (location.gitSource !== undefined && location.revision !== undefined && loaded.model.settings.source?.verify === true) {
    await verifyRevision(ctx.options.root, location.gitSource, location.revision);
  }
  for (const w of loaded.warnings) ctx.logger.warn({ diagnostic: w }, w.message);
  return loaded;
}

/**
 * The source's newest revision is invalid: check out (and load) the last revision this host applied
 * successfully instead — the last good one of `sc reconcile`, else that of a converged `sc apply` —
 * saying so. Without one the error stands.
 */
async function loadLastGoodRevision(
  ctx: CommandContext,
  location: DatastoreLocation,
  error: UserError,
  options?: LoadOptions,
): Promise<LoadedDatastore> {
  const root = ctx.options.root;
  const lastApply = await readApplyRecord(root);
  const lastGood =
    (await readReconcileStatus(root))?.last_good_revision ??
    (lastApply?.converged && lastApply.source !== undefined ? lastApply.revision : undefined);
  if (lastGood === undefined || lastGood === null || lastGood === location.revision) throw error;
  const dir = await withSourceLock(root, 'sc status (last good revision)', () => exportRevision(root, lastGood));
  const first = error.diagnostics[0];
  ctx.notice(
    `the newest revision ${location.revision?.slice(0, 12) ?? ''} of the source is invalid (${first ? formatDiagnostic(first) : error.message}); ` +
      `showing this host against the last good revision ${lastGood.slice(0, 12)}`,
  );
  return loadDatastore({ ...location, dir, revision: lastGood }, options);
}

/** This host's entry in the model, with --root and --netns: what the reconciler works on. */
export function hostContext(ctx: CommandContext, loaded: LoadedDatastore): HostContext {
  const ref = findHost(loaded.model, ctx.options.host);
  if (!ref) {
    const known = Object.values(loaded.model.clusters).flatMap((hosts) => Object.keys(hosts));
    throw new UserError(
      `host "${ctx.options.host}" is not in the datastore's clusters (${known.length ? `known hosts: ${known.join(', ')}` : 'no hosts defined'}); pass --host FQDN or set SC_HOST`,
    );
  }
  const runtime = loaded.model.settings.runtime;
  const pki = pkiExchange(datastorePlace(loaded), ref.name, ctx.options.root);
  return { ...ref, root: ctx.options.root, netns: ctx.options.netns, pki, ...(runtime !== undefined ? { runtime } : {}) };
}
