// `sc reconcile`: one pass = fetch the source, validate, plan, guardrail, apply, record the status
// and the metrics; the loop repeats it every interval (+ jitter), backs off after failures, runs
// at once when the source's revision moves, and stops between actions when its signal aborts.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { datastoreRevision } from '../datastore/git-commit-edit.js';
import { checkoutRevision, remoteRevision, sourceLabel, withSourceLock } from '../datastore/git-source.js';
import type { LoadedDatastore } from '../datastore/load-datastore.js';
import { DATASTORE_KINDS } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ScError, UserError, type Diagnostic } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { HandlerRegistry } from '../resources/contract.js';
import { proxyMetricsOf } from '../resources/reverse-proxy.js';
import type { ApplyEvent } from './executor.js';
import { applyHost, type ApplyHostResult } from './host-pass.js';
import { writeMetrics } from './metrics-textfile.js';
import type { Plan } from './planner.js';
import { PruneRefusedError } from './prune-guardrail.js';
import { emptyCounts, readReconcileStatus, writeReconcileStatus, type ReconcileStatus, type ResourceCounts } from './reconcile-status.js';
import { hostContextOf, loadDesired, verifyIfAsked, withSourceCheckout, type DesiredSource } from './desired-state.js';
import { RECONCILE_PUBLISHED_WAIT } from '../datastore/pki-exchange.js';

export type { DesiredSource } from './desired-state.js';

export interface ReconcileOptions {
  readonly root: string;
  readonly hostName: string;
  readonly netns?: string;
  readonly source: DesiredSource;
  readonly handlers: HandlerRegistry;
  readonly driversFor: (host: HostContext) => Drivers;
  readonly allowMassDelete?: boolean;
  /** Require a good signature on each git revision (also asked for by settings.source.verify). */
  readonly verify?: boolean;
  /** Default: settings.apply.concurrency, else 8. */
  readonly concurrency?: number;
  readonly onEvent?: (event: ApplyEvent) => void;
  /** Warnings of the pass as they happen (a failed fetch), besides the status record. */
  readonly onWarning?: (text: string) => void;
}

interface DesiredState {
  readonly loaded: LoadedDatastore;
  readonly revision: string | null;
  readonly warnings: string[];
}

/** A pass that ends early: why, and with which result. */
class PassStop extends Error {
  constructor(
    readonly result: 'failed' | 'refused',
    message: string,
    readonly revision: string | null,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

export const sourceText = (source: DesiredSource): string => ('git' in source ? sourceLabel(source.git) : source.location.dir);
const short = (revision: string | null | undefined) => (revision ? revision.slice(0, 12) : 'none');

/** One reconcile pass; never throws for problems of the source or the host: they end up in the returned (and written) status. */
export async function reconcileOnce(options: ReconcileOptions, signal?: AbortSignal): Promise<ReconcileStatus> {
  const started = new Date();
  const previous = await readReconcileStatus(options.root);
  const lastGood = previous?.last_good_revision ?? null;
  const warnings: string[] = [];
  const warn = (text: string) => {
    warnings.push(text);
    options.onWarning?.(text);
  };
  let revision: string | null = null;
  let outcome: { result: ReconcileStatus['result']; message: string; apply?: ApplyHostResult; diagnostics?: Diagnostic[] };
  try {
    const desired = await openDesiredState(options, lastGood, warn);
    revision = desired.revision;
    // As `sc apply` builds it: the runtime and whether deleting a container deletes its data come from the settings.
    const place = { hostName: options.hostName, root: options.root, ...(options.netns !== undefined ? { netns: options.netns } : {}) };
    // From a git source, a host waiting for its certificate waits (bounded) for the CA host's pass to sign it.
    const wait = desired.loaded.location.gitSource !== undefined ? { ...RECONCILE_PUBLISHED_WAIT, ...(signal ? { signal } : {}) } : undefined;
    const host = hostContextOf(desired.loaded, place, {}, wait);
    if (!host)
      throw new PassStop('refused', `host "${options.hostName}" is not in the clusters of revision ${short(revision)}; nothing applied`, revision);
    const model = desired.loaded.model;
    let apply: ApplyHostResult;
    try {
      apply = await applyHost({
        model,
        host,
        drivers: options.driversFor(host),
        handlers: options.handlers,
        concurrency: options.concurrency ?? model.settings.apply?.concurrency ?? 8,
        command: `sc reconcile (revision ${short(revision)})`,
        signal,
        allowMassDelete: options.allowMassDelete,
        origin: { ...(revision !== null ? { revision } : {}), ...('git' in options.source ? { source: sourceLabel(options.source.git) } : {}) },
        onEvent: options.onEvent,
      });
    } catch (error) {
      if (error instanceof PruneRefusedError) throw new PassStop('refused', error.message, revision);
      throw error;
    }
    const interrupted = signal?.aborted && !apply.converged ? ' (interrupted: stopped before every action ran)' : '';
    outcome = apply.converged
      ? {
          result: 'ok',
          message: apply.plan.hasChanges ? `applied revision ${short(revision)}` : `revision ${short(revision)}: already in sync`,
          apply,
        }
      : { result: 'failed', message: `revision ${short(revision)}: the host did not converge${interrupted}`, apply };
  } catch (error) {
    if (!(error instanceof PassStop)) {
      const message = error instanceof ScError ? error.message : `internal error: ${error instanceof Error ? error.message : String(error)}`;
      outcome = { result: 'failed', message, diagnostics: error instanceof UserError ? error.diagnostics : [] };
    } else {
      revision = error.revision ?? revision;
      outcome = { result: error.result, message: error.message, diagnostics: error.diagnostics };
    }
    // The last good revision stays in force: leave the cache checked out there, not at the refused one.
    if ('git' in options.source && lastGood !== null && revision !== lastGood) {
      await withSourceLock(options.root, 'sc reconcile (restore last good)', () => checkoutRevision(options.root, lastGood)).catch(() => undefined);
    }
  }

  const finished = new Date();
  const report = outcome.apply?.report;
  const ok = outcome.result === 'ok';
  // Drift: the desired revision did not change since the last good pass, yet actions were needed.
  const drift = report && previous !== undefined && revision === lastGood ? report.ok : 0;
  const status: ReconcileStatus = {
    source: sourceText(options.source),
    revision,
    last_good_revision: outcome.result === 'refused' || outcome.apply === undefined ? lastGood : revision,
    started: started.toISOString(),
    finished: finished.toISOString(),
    duration_seconds: (finished.getTime() - started.getTime()) / 1000,
    result: outcome.result,
    message: outcome.message,
    warnings,
    counts: report
      ? {
          actions: report.results.length,
          ok: report.ok,
          failed: report.failed,
          skipped: report.skipped,
          conflicts: report.conflicts,
          add: outcome.apply?.plan.summary.add ?? 0,
          change: outcome.apply?.plan.summary.change ?? 0,
          destroy: outcome.apply?.plan.summary.destroy ?? 0,
        }
      : emptyCounts(),
    failures: report
      ? report.results.filter((r) => r.status !== 'ok').map((r) => ({ ref: `${r.ref.kind}/${r.ref.id}`, error: r.error ?? r.status }))
      : [],
    diagnostics: outcome.diagnostics ?? [],
    // A pass that applied nothing leaves the host as it was: keep the last known picture.
    resources: outcome.apply ? resourceCounts(outcome.apply.remaining) : (previous?.resources ?? {}),
    // Seen after this pass, or (no apply, or no probe) nothing claimed: an old answer is no answer.
    containers_answering: outcome.apply?.answers?.answers ?? {},
    drift_repaired_total: (previous?.drift_repaired_total ?? 0) + drift,
    failures_total: (previous?.failures_total ?? 0) + (ok ? 0 : 1),
    passes_total: (previous?.passes_total ?? 0) + 1,
    last_success: ok ? finished.toISOString() : (previous?.last_success ?? null),
    ...proxyPicture(outcome.apply?.observed, previous),
  };
  await writeReconcileStatus(options.root, status);
  await writeMetrics(options.root, status);
  return status;
}

/** The proxy and its certificates as the pass left them; a pass that applied nothing keeps the last picture. */
function proxyPicture(observed: ApplyHostResult['observed'] | undefined, previous: ReconcileStatus | undefined): Pick<ReconcileStatus, 'proxy'> {
  const proxy = observed ? proxyMetricsOf(observed) : previous?.proxy;
  return proxy ? { proxy } : {};
}

/** The desired state of this pass: the git source checked out (or the datastore dir), loaded and valid. */
async function openDesiredState(options: ReconcileOptions, lastGood: string | null, warn: (text: string) => void): Promise<DesiredState> {
  const source = options.source;
  if (!('git' in source)) {
    const revision = (await datastoreRevision(source.location.dir)) ?? null;
    try {
      return { loaded: await loadDesired(source.location, options.handlers), revision, warnings: [] };
    } catch (error) {
      if (error instanceof UserError) throw new PassStop('refused', `${error.message}; nothing applied`, revision, error.diagnostics);
      throw error;
    }
  }
  // Checkout and load under the source lock: nobody checks out another revision in between.
  const sync = {
    root: options.root,
    holder: 'sc reconcile',
    verify: options.verify,
    onFetchFailed: warn,
    ...(lastGood !== null ? { lastGood } : {}),
  };
  return withSourceCheckout(source.git, sync, async (location, checkout) => {
    let loaded: LoadedDatastore;
    try {
      loaded = await loadDesired(location, options.handlers);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      const good = lastGood !== null && lastGood !== checkout.revision ? `; the last good revision ${short(lastGood)} stays in force` : '';
      throw new PassStop(
        'refused',
        `revision ${short(checkout.revision)} is refused: ${error.message}; nothing applied${good}`,
        checkout.revision,
        error.diagnostics,
      );
    }
    // A datastore without a single document is an empty (or wrong) repository, never "delete everything".
    if (!DATASTORE_KINDS.some((kind) => loaded.documents[kind] !== undefined)) {
      throw new PassStop(
        'refused',
        `revision ${short(checkout.revision)} holds no datastore files (clusters, users, containers, settings); nothing applied`,
        checkout.revision,
      );
    }
    await verifyIfAsked(options.root, location, loaded.model, checkout.verified);
    return { loaded, revision: checkout.revision, warnings: [] };
  }).catch((error: unknown) => {
    if (error instanceof PassStop) throw error;
    if (error instanceof UserError) throw new PassStop('refused', error.message, null, error.diagnostics);
    throw error;
  });
}

const STATE_OF_ACTION: Record<string, string> = {
  create: 'missing',
  update: 'drifted',
  replace: 'drifted',
  delete: 'to_be_removed',
  conflict: 'conflict',
};

/** Resources by kind and state as the host stands after the pass (the re-observed plan). */
export function resourceCounts(plan: Plan): ResourceCounts {
  const counts: ResourceCounts = {};
  const add = (kind: string, state: string) => {
    const byState = (counts[kind] ??= {});
    byState[state] = (byState[state] ?? 0) + 1;
  };
  for (const ref of plan.noops) add(ref.kind, 'in_sync');
  for (const action of plan.actions) add(action.ref.kind, STATE_OF_ACTION[action.type] ?? action.type);
  return counts;
}

export interface LoopOptions {
  readonly intervalSeconds: number;
  /** Up to this much random delay on top of every interval (hosts of a farm do not all pull at once). */
  readonly jitterSeconds: number;
  /** Longest wait after repeated failures (default: max(interval, 1 h)). */
  readonly maxBackoffSeconds?: number;
  readonly signal: AbortSignal;
  readonly onPass?: (status: ReconcileStatus) => void;
  readonly random?: () => number;
}

/** Seconds to wait before the next pass: the interval + jitter, doubled per consecutive failure, capped. */
export function nextDelaySeconds(
  intervalSeconds: number,
  jitterSeconds: number,
  consecutiveFailures: number,
  maxBackoffSeconds: number,
  random: () => number = Math.random,
): number {
  const base =
    consecutiveFailures === 0 ? intervalSeconds : Math.min(intervalSeconds * 2 ** consecutiveFailures, Math.max(intervalSeconds, maxBackoffSeconds));
  return base + random() * jitterSeconds;
}

/**
 * How often, between passes, sc checks whether the desired state moved (then it runs at once):
 * every 10 s at most (one `git ls-remote` — a ref advertisement, no objects — or a stat of the
 * datastore files), or every interval when that is shorter.
 */
export const pollSeconds = (intervalSeconds: number): number => Math.min(intervalSeconds, 10);

/** Runs passes until `signal` aborts; returns the number of passes. */
export async function reconcileLoop(options: ReconcileOptions, loop: LoopOptions): Promise<number> {
  let passes = 0;
  let failures = 0;
  const maxBackoff = loop.maxBackoffSeconds ?? Math.max(loop.intervalSeconds, 3600);
  while (!loop.signal.aborted) {
    const before = await localFingerprint(options.source);
    const status = await reconcileOnce(options, loop.signal);
    passes++;
    loop.onPass?.(status);
    failures = status.result === 'ok' ? 0 : failures + 1;
    const deadline = Date.now() + nextDelaySeconds(loop.intervalSeconds, loop.jitterSeconds, failures, maxBackoff, loop.random) * 1000;
    while (!loop.signal.aborted && Date.now() < deadline) {
      const tick = Math.min(pollSeconds(loop.intervalSeconds) * 1000, deadline - Date.now());
      try {
        await sleep(Math.max(tick, 0), undefined, { signal: loop.signal });
      } catch {
        break; // aborted
      }
      if (await sourceMoved(options, status, before)) break;
    }
  }
  return passes;
}

/** Whether the desired state changed since the pass: the remote ref moved, or the datastore files changed. */
async function sourceMoved(options: ReconcileOptions, status: ReconcileStatus, before: string): Promise<boolean> {
  if ('git' in options.source) {
    const now = await remoteRevision(options.source.git, options.root);
    return now !== undefined && now !== status.revision;
  }
  return (await localFingerprint(options.source)) !== before;
}

/** For a datastore dir: its git HEAD, or the sizes and mtimes of its files. Empty for a git source. */
async function localFingerprint(source: DesiredSource): Promise<string> {
  if ('git' in source) return '';
  const revision = await datastoreRevision(source.location.dir);
  const dirs = [source.location.dir, ...(source.location.staticDir !== undefined ? [source.location.staticDir] : [])];
  const parts: string[] = [revision ?? ''];
  for (const dir of dirs) {
    for (const kind of DATASTORE_KINDS) {
      for (const ext of ['json', 'yaml', 'yml']) {
        const info = await stat(join(dir, `${kind}.${ext}`)).catch(() => undefined);
        if (info) parts.push(`${dir}/${kind}.${ext}:${info.size}:${info.mtimeMs}`);
      }
    }
  }
  return parts.join('|');
}
