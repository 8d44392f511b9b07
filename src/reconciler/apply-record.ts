// The record of the last apply on this host (<root>/var/lib/srvctl/last-apply.json), shown by
// `sc status`. Written atomically; a missing or unreadable record is simply "never applied".
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import type { ApplyReport } from './executor.js';

export interface ApplyRecord {
  started: string;
  finished: string;
  converged: boolean;
  actions: number;
  ok: number;
  failed: number;
  skipped: number;
  conflicts: number;
  failures: { ref: string; error: string }[];
  /** The desired state's revision when it came from git (a --source checkout, or a datastore that is a git work tree). */
  revision?: string;
  /** The --source it came from (URL#REF). */
  source?: string;
}

export const applyRecordPath = (root: string): string => join(root, 'var/lib/srvctl/last-apply.json');

export function applyRecord(
  started: Date,
  report: ApplyReport,
  converged: boolean,
  origin: { revision?: string; source?: string } = {},
): ApplyRecord {
  return {
    ...(origin.revision !== undefined ? { revision: origin.revision } : {}),
    ...(origin.source !== undefined ? { source: origin.source } : {}),
    started: started.toISOString(),
    finished: new Date().toISOString(),
    converged,
    actions: report.results.length,
    ok: report.ok,
    failed: report.failed,
    skipped: report.skipped,
    conflicts: report.conflicts,
    failures: report.results.filter((r) => r.status !== 'ok').map((r) => ({ ref: `${r.ref.kind}/${r.ref.id}`, error: r.error ?? r.status })),
  };
}

export async function writeApplyRecord(root: string, record: ApplyRecord): Promise<void> {
  const path = applyRecordPath(root);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
}

export async function readApplyRecord(root: string): Promise<ApplyRecord | undefined> {
  try {
    return JSON.parse(await readFile(applyRecordPath(root), 'utf8')) as ApplyRecord;
  } catch {
    return undefined;
  }
}
