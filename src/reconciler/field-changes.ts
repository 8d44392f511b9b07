// Field-level differences between an observed and a desired spec: the JSON patch handlers apply
// and the per-field reasons `sc diff` shows. Both come from one fast-json-patch comparison.
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { FieldChange, ResourceHandler } from '../resources/contract.js';
import { compareNatural } from './natural-order.js';

/**
 * The comparable view of a spec as JSON text: the handler's normalisation, reduced to plain JSON so
 * that an `undefined` field and a missing one compare equal (fast-json-patch would report a
 * removal). Two equal texts are equal views, which settles the common case (a converged object)
 * without building a patch; unequal texts may still be equal views (the same fields in another
 * order): parsed back, specPatch decides.
 */
export function comparableText(handler: ResourceHandler<unknown>, spec: unknown): string {
  const view = handler.normalize ? handler.normalize(spec) : spec;
  return JSON.stringify(view) ?? 'null';
}

/** Operations turning `have` into `want`; any JSON values, not only objects at the top. */
export function specPatch(have: unknown, want: unknown): Operation[] {
  // Wrapping lets a spec that is a scalar, or that changes type, diff like any nested field.
  const ops = jsonpatch.compare({ spec: have }, { spec: want });
  return ops.map((op) => ({ ...op, path: op.path.slice('/spec'.length) }));
}

/** One FieldChange per patch operation, with the old value looked up in the observed view. */
export function fieldChanges(patch: readonly Operation[], haveView: unknown): FieldChange[] {
  const changes: FieldChange[] = [];
  for (const op of patch) {
    if (op.op !== 'add' && op.op !== 'remove' && op.op !== 'replace') continue;
    const change: { path: string; op: FieldChange['op']; old?: unknown; new?: unknown } = { path: op.path, op: op.op };
    if (op.op !== 'add') change.old = valueAt(haveView, op.path);
    if (op.op !== 'remove') change.new = op.value;
    changes.push(change);
  }
  return changes.sort((a, b) => compareNatural(a.path, b.path));
}

function valueAt(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  try {
    return jsonpatch.getValueByPointer(document, pointer) as unknown;
  } catch {
    return undefined;
  }
}

/** `/addresses/0` → `addresses[0]`, `/a~1b/c` → `a/b.c`: how a field path reads in a plan. */
export function readableFieldPath(pointer: string): string {
  if (pointer === '') return '(whole spec)';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(segment)) out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}
