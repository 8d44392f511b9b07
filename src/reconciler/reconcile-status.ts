// The record of the last reconcile pass (<root>/var/lib/srvctl/reconcile-status.json): which
// revision, what came of it, and the counters the metrics carry across passes. Written atomically.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import type { Diagnostic } from '../errors.js';

export type ReconcileResult = 'ok' | 'failed' | 'refused';

/** Resources by kind and state after the pass (state: in_sync, missing, drifted, to_be_removed, conflict). */
export type ResourceCounts = Record<string, Record<string, number>>;

export interface ReconcileStatus {
  /** `URL#REF` of a git source, or the datastore dir. */
  source: string;
  /** The commit this pass worked from (null: a plain datastore dir). */
  revision: string | null;
  /** The last revision that was valid and applied (not refused): what a failed fetch falls back to. */
  last_good_revision: string | null;
  started: string;
  finished: string;
  duration_seconds: number;
  result: ReconcileResult;
  /** One line for humans: why refused/failed, or what happened. */
  message: string;
  /** e.g. "fetch failed, using the last good revision …". */
  warnings: string[];
  counts: { actions: number; ok: number; failed: number; skipped: number; conflicts: number; add: number; change: number; destroy: number };
  failures: { ref: string; error: string }[];
  diagnostics: Diagnostic[];
  resources: ResourceCounts;
  /** Each running container after the pass: answered a ping (yes), did not (no), or could not be asked (unknown). */
  containers_answering?: Record<string, 'yes' | 'no' | 'unknown'>;
  /** Counters across passes (Prometheus counters must never go down). */
  drift_repaired_total: number;
  failures_total: number;
  passes_total: number;
  last_success: string | null;
  /** The reverse proxy after the pass (absent: none desired or found). */
  proxy?: { up: boolean; certificates: { name: string; source: string; not_after: string }[] };
}

export const reconcileStatusPath = (root: string): string => join(root, 'var/lib/srvctl/reconcile-status.json');

export async function readReconcileStatus(root: string): Promise<ReconcileStatus | undefined> {
  try {
    const parsed = JSON.parse(await readFile(reconcileStatusPath(root), 'utf8')) as unknown;
    return parsed && typeof parsed === 'object' && 'result' in parsed ? (parsed as ReconcileStatus) : undefined;
  } catch {
    return undefined;
  }
}

export async function writeReconcileStatus(root: string, status: ReconcileStatus): Promise<void> {
  const path = reconcileStatusPath(root);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(status, null, 2)}\n`);
}

export const emptyCounts = (): ReconcileStatus['counts'] => ({
  actions: 0,
  ok: 0,
  failed: 0,
  skipped: 0,
  conflicts: 0,
  add: 0,
  change: 0,
  destroy: 0,
});
