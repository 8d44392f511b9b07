// Which fields of a srvctl 3 record are carried into sc: sc's own (in its schema's order), then
// the srvctl 3 fields sc tolerates (DNS, scans, bookkeeping) as they were; the rest is dropped and
// reported. A carried value that sc's schema refuses is dropped too (one bad alias, not the site).
import type { DocumentPath } from '../datastore/source-document.js';
import { schemaProblems, SRVCTL3_FIELDS } from '../datastore/schema-validation.js';
import type { ImportContext, SourceKind } from './import-context.js';

/** The properties of sc's schemas (schemas/*.schema.json), in their order: the output's field order. */
export const SC_FIELDS: Readonly<Record<SourceKind, readonly string[]>> = {
  clusters: ['hostnet', 'host_ip', 'host_ipv6', 'gateway', 'prefix', 'dns1', 'dns2', 'interface', 'reverse_proxy', 'ca'],
  users: ['name', 'reseller', 'reseller_id', 'user_id', 'uid', 'ssh_keys'],
  containers: [
    'user',
    'host',
    'type',
    'ip',
    'enabled',
    'mapped_ports',
    'aliases',
    'http_port',
    'https_port',
    'http-redirect',
    'https-redirect',
    'bridge',
  ],
};

/** Fields without which a record means nothing: a value sc refuses there is an error, not a drop. */
const REQUIRED: Readonly<Record<SourceKind, readonly string[]>> = {
  clusters: ['hostnet', 'host_ip'],
  users: ['reseller', 'reseller_id', 'user_id', 'uid'],
  containers: ['user', 'host', 'type', 'ip'],
};

const OBJECT_KIND = { clusters: 'host', users: 'user', containers: 'container' } as const;

/** srvctl 3 fields sc reads past without a warning (schema-validation's list). */
export function srvctl3Fields(kind: SourceKind): readonly string[] {
  return SRVCTL3_FIELDS[OBJECT_KIND[kind]];
}

export type Record3 = Record<string, unknown>;

/**
 * The srvctl 3 fields of `record` that sc keeps as they are, in their original order, minus
 * `exclude` (fields an import step handles itself). Everything that is neither sc's, nor a known
 * srvctl 3 field, nor handled is dropped and reported.
 */
export function carriedSrvctl3Fields(ctx: ImportContext, kind: SourceKind, entry: string, record: Record3, handled: readonly string[]): Record3 {
  const known = new Set(srvctl3Fields(kind));
  const own = new Set(SC_FIELDS[kind]);
  const skip = new Set(handled);
  const out: Record3 = {};
  for (const [field, value] of Object.entries(record)) {
    if (skip.has(field) || own.has(field)) continue;
    if (known.has(field)) out[field] = value;
    else ctx.drop(kind, entry, field, 'neither sc nor srvctl 3.2 defines this field');
  }
  return out;
}

/** Copies sc's own fields of `record` that are present, in the schema's order, minus `handled`. */
export function carriedScFields(kind: SourceKind, record: Record3, handled: readonly string[]): Record3 {
  const out: Record3 = {};
  for (const field of SC_FIELDS[kind]) {
    if (!handled.includes(field) && Object.hasOwn(record, field) && record[field] !== undefined) out[field] = record[field];
  }
  return out;
}

/**
 * Runs sc's schema over one built document: a refused value of an optional field is dropped (an
 * element of a list alone) and reported; a refused name or required field is an error at the
 * srvctl 3 entry. Returns whether the document is now clean.
 */
export function dropSchemaViolations(ctx: ImportContext, kind: SourceKind, data: Record<string, unknown>): boolean {
  const depth = kind === 'clusters' ? 2 : 1;
  for (let round = 0; round < 8; round++) {
    const problems = schemaProblems(kind, data).filter((p) => p.severity === 'error');
    if (problems.length === 0) return true;
    const removals = new Map<string, { record: Record3; entry: string; field: string; index?: number; reason: string }>();
    let fatal = false;
    for (const problem of problems) {
      const field = problem.path[depth];
      if (typeof field !== 'string' || REQUIRED[kind].includes(field)) {
        ctx.error(kind, problem.path.slice(0, depth + 1), `sc cannot take this: ${problem.message}`);
        fatal = true;
        continue;
      }
      const record = recordAt(data, problem.path.slice(0, depth));
      if (!record) continue;
      const next = problem.path[depth + 1];
      const index = Array.isArray(record[field]) && next !== undefined && /^\d+$/.test(String(next)) ? Number(next) : undefined;
      const entry = String(problem.path[depth - 1]);
      const key = `${problem.path.slice(0, depth).join('\u0000')}\u0000${field}\u0000${index ?? ''}`;
      if (!removals.has(key)) removals.set(key, { record, entry, field, ...(index !== undefined ? { index } : {}), reason: problem.message });
    }
    if (fatal) return false;
    // Elements from the back, so the indices of the others stay right.
    const ordered = [...removals.values()].sort((a, b) => (b.index ?? -1) - (a.index ?? -1));
    for (const r of ordered) {
      const value = r.record[r.field];
      if (r.index !== undefined && Array.isArray(value)) {
        value.splice(r.index, 1);
        ctx.drop(kind, r.entry, `${r.field}[${r.index}]`, `sc refuses the value: ${r.reason}`);
      } else {
        delete r.record[r.field];
        ctx.drop(kind, r.entry, r.field, `sc refuses the value: ${r.reason}`);
      }
    }
  }
  return schemaProblems(kind, data).every((p) => p.severity !== 'error');
}

function recordAt(data: Record<string, unknown>, path: DocumentPath): Record3 | undefined {
  let node: unknown = data;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record3)[String(segment)];
  }
  return typeof node === 'object' && node !== null && !Array.isArray(node) ? (node as Record3) : undefined;
}
