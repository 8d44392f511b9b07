// Where the desired state comes from, decided in one place for every command and the reconcile
// loop: the datastore dir (--datastore / SC_DATASTORE / the default locations under --root), a git
// source (--source / SC_SOURCE, or `source.url` in this host's own settings), the last good
// revision a failed fetch or an invalid revision falls back to, and the signature policy.
//
// The decision (decideDesiredSource), in order — the first that applies wins:
//   1. --source URL[#REF]: that repository (also over --datastore). Edit commands refuse it.
//   2. --datastore DIR: that dir. `sc reconcile` alone follows a `source.url` in DIR's settings.
//   3. `source.url` (+ `source.ref`) in this host's settings (/etc/srvctl/data, then the rw, then
//      the ro datastore under --root): that repository. Edit commands refuse it.
//   4. The default datastore locations under --root (rw, else the ro fallback with a notice), else
//      the "no datastore found" error. `sc reconcile` follows a `source.url` in its settings.
// Opening a git source fetches it into the cache under --root and checks the revision out under
// the source lock (withSourceCheckout); `sc status` (view) gets a private copy of the revision's
// tree instead, so the cache's HEAD and files stay as they are.
import { resolveDatastoreLocation, type DatastoreLocation } from '../datastore/datastore-location.js';
import {
  exportRevision,
  parseGitSource,
  redactUrl,
  sourceCacheDir,
  sourceLabel,
  syncGitSource,
  verifyRevision,
  withSourceLock,
  type GitSourceSpec,
} from '../datastore/git-source.js';
import { sourceFromHostSettings } from '../datastore/host-settings-source.js';
import { loadDatastore, type LoadedDatastore, type LoadOptions } from '../datastore/load-datastore.js';
import { findHost, type Model, type Settings } from '../datastore/model.js';
import { datastorePlace, pkiExchange, type PublishedWait } from '../datastore/pki-exchange.js';
import { verifyRequiredInForce } from '../datastore/source-verify.js';
import { formatDiagnostic, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { HandlerRegistry } from '../resources/contract.js';
import { readApplyRecord } from './apply-record.js';
import { kindProblems } from './kind-validation.js';
import { readReconcileStatus } from './reconcile-status.js';

/** The desired state of a run: a git source, or a datastore dir. */
export type DesiredSource = { readonly git: GitSourceSpec } | { readonly location: DatastoreLocation };

/** What the operator named: the global options (SPEC §4), already resolved against the environment. */
export interface DesiredStateRequest {
  /** --source / SC_SOURCE. */
  readonly source?: string;
  /** --datastore / SC_DATASTORE. */
  readonly datastore?: string;
  readonly datastoreOrigin?: 'option' | 'env';
  readonly root: string;
}

/** What the desired state is for: reading it (most commands), editing it, or the reconcile loop. */
export type DesiredStatePurpose = { readonly use: 'read' } | { readonly use: 'edit'; readonly command: string } | { readonly use: 'reconcile' };

/** Which rule chose the source: --source, the host's settings, the datastore's settings, or a datastore dir. */
export type SourceOrigin = 'option' | 'host-settings' | 'datastore-settings' | 'datastore';

export interface DesiredChoice {
  readonly source: DesiredSource;
  readonly from: SourceOrigin;
  /** Why a fallback location is in use (the ro datastore); show it once. */
  readonly notice?: string;
  /** The datastore's settings, when the decision loaded them (`sc reconcile` on a datastore dir). */
  readonly settings?: Readonly<Settings>;
}

/** How the decision reads the host; the defaults read files under --root (tests pass their own). */
export interface SourceReaders {
  /** `URL[#REF]` named by `source.url` in this host's own settings files. */
  hostSettingsSource(root: string): Promise<string | undefined>;
  /** The datastore dir of --datastore, or the default locations; throws when there is none. */
  datastoreLocation(request: DesiredStateRequest): Promise<DatastoreLocation>;
  /** A datastore's settings, when it loads. */
  datastoreSettings(location: DatastoreLocation): Promise<Readonly<Settings> | undefined>;
}

export const fileReaders: SourceReaders = {
  hostSettingsSource: sourceFromHostSettings,
  datastoreLocation: (request) =>
    resolveDatastoreLocation({
      root: request.root,
      ...(request.datastore !== undefined ? { datastore: request.datastore } : {}),
      ...(request.datastoreOrigin !== undefined ? { datastoreOrigin: request.datastoreOrigin } : {}),
    }),
  datastoreSettings: (location) =>
    loadDatastore(location)
      .then((loaded) => loaded.model.settings)
      .catch(() => undefined),
};

const editRefusal = (command: string) => `edit a clone of the repository (sc --datastore CLONE ${command} …) and push`;

/** The decision table at the top of this file. Reads only what the rule in question needs. */
export async function decideDesiredSource(
  request: DesiredStateRequest,
  purpose: DesiredStatePurpose = { use: 'read' },
  readers: SourceReaders = fileReaders,
): Promise<DesiredChoice> {
  const { source, datastore, root } = request;
  if (source !== undefined) {
    if (purpose.use === 'edit') throw new UserError(`--source ${redactUrl(source)} is read-only to sc: ${editRefusal(purpose.command)}`);
    return { source: { git: parseGitSource(source) }, from: 'option' };
  }
  // The host's own settings may name the source even when no local datastore exists at all.
  if (datastore === undefined) {
    const configured = await readers.hostSettingsSource(root);
    if (configured !== undefined) {
      if (purpose.use === 'edit') {
        throw new UserError(
          `this host's desired state is the git source ${redactUrl(configured)} (source.url in its settings), which sc only reads: ${editRefusal(purpose.command)}`,
        );
      }
      return { source: { git: parseGitSource(configured) }, from: 'host-settings' };
    }
  }
  const location = await readers.datastoreLocation(request);
  const notice = location.notice !== undefined ? { notice: location.notice } : {};
  if (purpose.use !== 'reconcile') return { source: { location }, from: 'datastore', ...notice };
  // The loop follows the source a local datastore names (a clone of its own source).
  const settings = await readers.datastoreSettings(location);
  const url = settings?.source?.url;
  if (url) {
    const ref = settings?.source?.ref;
    return { source: { git: parseGitSource(ref ? `${url}#${ref}` : url) }, from: 'datastore-settings', ...notice, ...(settings ? { settings } : {}) };
  }
  return { source: { location }, from: 'datastore', ...notice, ...(settings ? { settings } : {}) };
}

/**
 * The settings in force for the loop's timing (interval, jitter): for a git source those of the
 * revision in the source cache (else those of the datastore that named it), for a dir its own.
 */
export async function settingsInForce(root: string, choice: DesiredChoice): Promise<Readonly<Settings> | undefined> {
  if (!('git' in choice.source)) return choice.settings;
  const cached = await loadDatastore({ dir: sourceCacheDir(root), readOnly: true, origin: 'option' })
    .then((loaded) => loaded.model.settings)
    .catch(() => undefined);
  return cached ?? choice.settings;
}

/** The last revision `sc reconcile` found valid and applied: what a failed fetch falls back to. */
export async function lastGoodRevision(root: string): Promise<string | undefined> {
  return (await readReconcileStatus(root))?.last_good_revision ?? undefined;
}

/** The last revision this host converged to: the last good one of `sc reconcile`, else that of a converged `sc apply`. */
export async function lastAppliedRevision(root: string): Promise<string | undefined> {
  const lastGood = await lastGoodRevision(root);
  if (lastGood !== undefined) return lastGood;
  const lastApply = await readApplyRecord(root);
  return lastApply?.converged && lastApply.source !== undefined ? lastApply.revision : undefined;
}

export interface CheckoutOptions {
  readonly root: string;
  /** Who holds the source lock, for a waiting process's message (`sc reconcile`, `sc --source …`). */
  readonly holder: string;
  /** The revision to use when the fetch fails (and the cache has it). */
  readonly lastGood?: string;
  /** --verify: require a good signature whatever the settings say. */
  readonly verify?: boolean;
  /** Read only (`sc status`): a private copy of the revision's tree; the cache's checkout stays as it is. */
  readonly view?: boolean;
  /** Told when the fetch failed and an older revision is used instead. */
  readonly onFetchFailed?: (text: string) => void;
}

/**
 * The signature policy: --verify, or `source.verify` of the revision in force (the cache's current
 * checkout; a new commit cannot switch off the check it is subject to).
 */
export async function verifyRequired(root: string, flag?: boolean): Promise<boolean> {
  return flag === true || (await verifyRequiredInForce(root));
}

/**
 * Fetches the source and checks its revision out (or, for a view, copies its tree), under the
 * source lock, and runs `use` on the result still holding the lock: nobody checks out another
 * revision in between. `checkout.verified`: the revision's signature was checked.
 */
export async function withSourceCheckout<T>(
  spec: GitSourceSpec,
  options: CheckoutOptions,
  use: (location: DatastoreLocation, checkout: { readonly revision: string; readonly verified: boolean }) => Promise<T>,
): Promise<T> {
  const { root } = options;
  return withSourceLock(root, options.holder, async () => {
    const verify = await verifyRequired(root, options.verify);
    const checkout = await syncGitSource(spec, {
      root,
      ...(options.lastGood !== undefined ? { lastGoodRevision: options.lastGood } : {}),
      verify,
      view: options.view === true,
    });
    if (checkout.fetchError !== undefined) {
      const which = checkout.revision === options.lastGood ? 'the last good revision' : 'the cached revision';
      options.onFetchFailed?.(`fetching ${sourceLabel(spec)} failed (${checkout.fetchError}); using ${which} ${checkout.revision.slice(0, 12)}`);
    }
    const location: DatastoreLocation = { dir: checkout.dir, readOnly: true, origin: 'option', gitSource: spec, revision: checkout.revision };
    return use(location, { revision: checkout.revision, verified: verify });
  });
}

/** A revision that asks for signatures itself (settings.source.verify) is checked too, when it was not already. */
export async function verifyIfAsked(root: string, location: DatastoreLocation, model: Model, verified: boolean): Promise<void> {
  if (verified || location.gitSource === undefined || location.revision === undefined) return;
  if (model.settings.source?.verify === true) await verifyRevision(root, location.gitSource, location.revision);
}

/** Loads a datastore dir: the schema and cross-checks, then each kind's own validate(model). */
export function loadDesired(location: DatastoreLocation, handlers: HandlerRegistry, options: LoadOptions = {}): Promise<LoadedDatastore> {
  return loadDatastore(location, { ...options, modelChecks: (model) => kindProblems(model, handlers) });
}

/** How a command reports along the way. */
export interface OpenReporter {
  readonly notice: (text: string) => void;
  readonly info?: (fields: Record<string, unknown>, message: string) => void;
}

/** The location of the desired state for a command: decided, and a git source fetched and checked out. */
export async function openDesiredLocation(
  request: DesiredStateRequest,
  report: OpenReporter,
  options: { purpose?: DesiredStatePurpose; view?: boolean } = {},
): Promise<DatastoreLocation> {
  const choice = await decideDesiredSource(request, options.purpose);
  if (choice.notice !== undefined) report.notice(choice.notice);
  if (!('git' in choice.source)) return choice.source.location;
  const spec = choice.source.git;
  if (choice.from === 'host-settings') report.info?.({ source: sourceLabel(spec) }, "the source named in this host's settings (source.url)");
  const location = await withSourceCheckout(
    spec,
    {
      root: request.root,
      holder: `sc --source ${sourceLabel(spec)}`,
      lastGood: await lastGoodRevision(request.root),
      view: options.view === true,
      onFetchFailed: report.notice,
    },
    async (checkedOut) => checkedOut,
  );
  report.info?.({ source: sourceLabel(spec), revision: location.revision }, 'desired state from git');
  return location;
}

/**
 * The desired state of a command, loaded and valid (schema, cross-checks, the kinds' own checks).
 * `lastGoodFallback` (`sc status`): the source is only viewed, and when its newest revision is
 * invalid the last revision this host converged to is shown instead, saying so.
 */
export async function openDesiredState(
  request: DesiredStateRequest,
  report: OpenReporter,
  handlers: HandlerRegistry,
  options: { load?: LoadOptions; lastGoodFallback?: boolean } = {},
): Promise<LoadedDatastore> {
  const fallback = options.lastGoodFallback === true;
  const location = await openDesiredLocation(request, report, { view: fallback });
  const loaded = await loadDesired(location, handlers, options.load).catch((error: unknown) => {
    if (!fallback || location.gitSource === undefined || !(error instanceof UserError)) throw error;
    return loadLastApplied(request.root, location, error, report, handlers, options.load);
  });
  // The revision checked out is checked against what the loaded one asks (as before the fallback existed).
  await verifyIfAsked(request.root, location, loaded.model, false);
  return loaded;
}

/** The source's newest revision is invalid: a copy of the last revision this host converged to, loaded. Without one the error stands. */
async function loadLastApplied(
  root: string,
  location: DatastoreLocation,
  error: UserError,
  report: OpenReporter,
  handlers: HandlerRegistry,
  options?: LoadOptions,
): Promise<LoadedDatastore> {
  const lastGood = await lastAppliedRevision(root);
  if (lastGood === undefined || lastGood === location.revision) throw error;
  const dir = await withSourceLock(root, 'sc status (last good revision)', () => exportRevision(root, lastGood));
  const first = error.diagnostics[0];
  report.notice(
    `the newest revision ${location.revision?.slice(0, 12) ?? ''} of the source is invalid (${first ? formatDiagnostic(first) : error.message}); ` +
      `showing this host against the last good revision ${lastGood.slice(0, 12)}`,
  );
  return loadDesired({ ...location, dir, revision: lastGood }, handlers, options);
}

/** Where this run works: the host's name, --root and --netns. */
export interface HostPlace {
  readonly hostName: string;
  readonly root: string;
  readonly netns?: string;
}

/**
 * This host's entry in the model with --root, --netns, the runtime of the settings and the PKI's
 * exchange: what the reconciler works on. `apply`: deleting a container deletes its data when
 * asked (--prune-data), else as settings.prune.data says. Undefined when the host is not in the model.
 */
export function hostContextOf(
  loaded: LoadedDatastore,
  place: HostPlace,
  apply?: { readonly pruneData?: boolean },
  publishedWait?: PublishedWait,
): HostContext | undefined {
  const ref = findHost(loaded.model, place.hostName);
  if (!ref) return undefined;
  const settings = loaded.model.settings;
  return {
    ...ref,
    root: place.root,
    ...(place.netns !== undefined ? { netns: place.netns } : {}),
    ...(settings.runtime !== undefined ? { runtime: settings.runtime } : {}),
    ...(apply !== undefined ? { pruneData: apply.pruneData ?? settings.prune?.data ?? false } : {}),
    pki: pkiExchange(datastorePlace(loaded), ref.name, place.root, publishedWait),
  };
}
