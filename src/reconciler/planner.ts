// Desired vs observed → one Plan: which action each object needs, why (field-level reasons),
// and what it waits for. Pure: `sc diff` renders the same Plan that `sc apply` executes.
import { ScError, UserError } from '../errors.js';
import {
  refString,
  type ActionType,
  type DesiredObject,
  type HandlerRegistry,
  type ObjectRef,
  type ObservedObject,
  type PlannedAction,
  type ResourceHandler,
} from '../resources/contract.js';
import { comparableText, fieldChanges, specPatch } from './field-changes.js';
import { kindOrder, type KindOrder } from './kind-order.js';
import { compareNatural } from './natural-order.js';

export interface PlanSummary {
  /** Creates and replaces. */
  readonly add: number;
  /** Updates in place. */
  readonly change: number;
  /** Deletes and replaces. */
  readonly destroy: number;
  /** Foreign objects in the way; never touched. */
  readonly conflict: number;
}

export interface Plan {
  /** Every non-noop action (conflicts included), in dependency order, then kind, then id. */
  readonly actions: PlannedAction[];
  /** Desired objects that already match. */
  readonly noops: ObjectRef[];
  readonly summary: PlanSummary;
  /** Whether apply would change anything (conflicts alone change nothing). */
  readonly hasChanges: boolean;
  /** Nothing pending at all: no changes and no conflicts. A conflict means the host does not match the datastore. */
  readonly inSync: boolean;
}

type DesiredByKind = ReadonlyMap<string, readonly DesiredObject<unknown>[]>;
type ObservedByKind = ReadonlyMap<string, readonly ObservedObject<unknown>[]>;

interface Draft {
  type: ActionType;
  ref: ObjectRef;
  want?: DesiredObject<unknown>;
  have?: ObservedObject<unknown>;
  patch: PlannedAction['patch'];
  reasons: PlannedAction['reasons'];
  message?: string;
  after: readonly ObjectRef[];
}

export function planActions(handlers: HandlerRegistry, desired: DesiredByKind, observed: ObservedByKind): Plan {
  for (const kind of [...desired.keys(), ...observed.keys()]) handlerFor(handlers, kind);
  const order = kindOrder(handlers, desired);
  const drafts = new Map<string, Draft>();
  const noops: ObjectRef[] = [];

  const observedByRef = new Map<string, ObservedObject<unknown>>();
  for (const objects of observed.values()) for (const obj of objects) observedByRef.set(refString(obj.ref), obj);
  const desiredByRef = new Map<string, DesiredObject<unknown>>();
  for (const objects of desired.values()) for (const obj of objects) desiredByRef.set(refString(obj.ref), obj);

  for (const kind of order.kinds) {
    const handler = handlerFor(handlers, kind);
    const foreign = (observed.get(kind) ?? []).filter((obj) => !obj.owned);
    for (const want of desired.get(kind) ?? []) {
      const key = refString(want.ref);
      const draft = planDesired(handler, want, observedByRef.get(key), foreign);
      if (draft) drafts.set(key, draft);
      else noops.push(want.ref);
    }
  }
  for (const [key, have] of observedByRef) {
    if (!have.owned || desiredByRef.has(key)) continue; // foreign and not in the way: not ours to judge
    drafts.set(key, { type: 'delete', ref: have.ref, have, patch: [], reasons: [], message: have.description, after: [] });
  }

  addDependencies(handlers, drafts, desiredByRef, order);
  const actions = orderActions(drafts, order);
  return {
    actions,
    noops: noops.sort(compareRefs(order)),
    summary: summarize(actions),
    hasChanges: actions.some((a) => a.type !== 'conflict'),
    inSync: actions.length === 0,
  };
}

function planDesired(
  handler: ResourceHandler<unknown>,
  want: DesiredObject<unknown>,
  have: ObservedObject<unknown> | undefined,
  foreign: readonly ObservedObject<unknown>[],
): Draft | undefined {
  const base = { ref: want.ref, want, have, after: want.dependsOn ?? [] };
  // The handler may explain better what is in the way (a dummy link with the bridge's name).
  const inTheWay = handler.conflict?.(want, foreign);
  if (have && !have.owned) {
    const message = inTheWay ?? `foreign ${want.ref.kind} ${want.ref.id} (not created by sc) is in the way`;
    return { ...base, type: 'conflict', patch: [], reasons: [], message };
  }
  if (inTheWay !== undefined) return { ...base, type: 'conflict', patch: [], reasons: [], message: inTheWay };
  if (!have) return { ...base, type: 'create', patch: [], reasons: [], message: want.description };

  const haveText = comparableText(handler, have.spec);
  const wantText = comparableText(handler, want.spec);
  if (haveText === wantText) return undefined;
  const haveView = JSON.parse(haveText) as unknown;
  const patch = specPatch(haveView, JSON.parse(wantText) as unknown);
  if (patch.length === 0) return undefined;
  const inPlace = handler.update !== undefined && (handler.canUpdate?.(patch, want.spec, have.spec) ?? true);
  return { ...base, type: inPlace ? 'update' : 'replace', patch, reasons: fieldChanges(patch, haveView), message: want.description };
}

/**
 * Creates/updates/replaces wait for their pending dependencies. A delete of X waits for every
 * action on an existing object of a kind relying on X's kind: those objects may still use X
 * (a container being moved to another bridge), and observed objects do not say which X they use.
 */
function addDependencies(
  handlers: HandlerRegistry,
  drafts: Map<string, Draft>,
  desiredByRef: ReadonlyMap<string, DesiredObject<unknown>>,
  order: KindOrder,
): void {
  for (const draft of drafts.values()) {
    if (draft.type === 'delete' || !draft.want) continue;
    const after = new Map<string, ObjectRef>();
    for (const dep of draft.want.dependsOn ?? []) {
      const key = refString(dep);
      if (!desiredByRef.has(key)) {
        if (handlers[dep.kind] === undefined) continue; // a kind this registry does not manage
        throw new ScError(`${refString(draft.ref)} depends on ${key}, which is not desired on this host`);
      }
      if (drafts.has(key) && key !== refString(draft.ref)) after.set(key, dep);
    }
    draft.after = draft.type === 'conflict' ? [] : [...after.values()];
  }

  // One shared list per kind: thousands of deletes of one kind wait on the same list.
  const deleteWaits = new Map<string, ObjectRef[]>();
  for (const kind of order.kinds) {
    const dependents = new Set(order.dependentsOf(kind));
    const refs: ObjectRef[] = [];
    for (const draft of drafts.values()) {
      const touchesExisting = draft.type === 'update' || draft.type === 'replace' || draft.type === 'delete';
      if (touchesExisting && dependents.has(draft.ref.kind)) refs.push(draft.ref);
    }
    deleteWaits.set(kind, refs);
  }
  for (const draft of drafts.values()) if (draft.type === 'delete') draft.after = deleteWaits.get(draft.ref.kind) ?? [];
}

/** Dependency level first (what runs earlier is listed earlier), then kind, then id. */
function orderActions(drafts: ReadonlyMap<string, Draft>, order: KindOrder): PlannedAction[] {
  const levels = new Map<string, number>();
  const listLevels = new Map<readonly ObjectRef[], number>();
  const visiting = new Set<string>();

  const levelOf = (key: string, path: string[]): number => {
    const known = levels.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) {
      const cycle = [...path.slice(path.indexOf(key)), key];
      throw new UserError(`dependency cycle: ${cycle.join(' → ')}; sc cannot order these actions`);
    }
    const draft = drafts.get(key) as Draft;
    visiting.add(key);
    let level = listLevels.get(draft.after);
    if (level === undefined) {
      level = 0;
      for (const dep of draft.after) {
        const depKey = refString(dep);
        if (drafts.has(depKey)) level = Math.max(level, levelOf(depKey, [...path, key]) + 1);
      }
      // Only a list every holder shares (deletes of one kind) may be cached by identity.
      if (draft.type === 'delete') listLevels.set(draft.after, level);
    }
    visiting.delete(key);
    levels.set(key, level);
    return level;
  };
  for (const key of drafts.keys()) levelOf(key, []);

  const byRef = compareRefs(order);
  return [...drafts.entries()]
    .sort(([ka, a], [kb, b]) => (levels.get(ka) as number) - (levels.get(kb) as number) || byRef(a.ref, b.ref))
    .map(([, draft]) => toAction(draft));
}

function toAction(draft: Draft): PlannedAction {
  const action: PlannedAction = {
    type: draft.type,
    ref: draft.ref,
    patch: draft.patch,
    reasons: draft.reasons,
    after: draft.after,
    ...(draft.want ? { want: draft.want } : {}),
    ...(draft.have ? { have: draft.have } : {}),
    ...(draft.message !== undefined ? { message: draft.message } : {}),
  };
  return action;
}

export function summarize(actions: readonly PlannedAction[]): PlanSummary {
  const count = (...types: ActionType[]): number => actions.filter((a) => types.includes(a.type)).length;
  return { add: count('create', 'replace'), change: count('update'), destroy: count('delete', 'replace'), conflict: count('conflict') };
}

function compareRefs(order: KindOrder): (a: ObjectRef, b: ObjectRef) => number {
  return (a, b) => order.rank(a.kind) - order.rank(b.kind) || compareNatural(a.id, b.id);
}

function handlerFor(handlers: HandlerRegistry, kind: string): ResourceHandler<unknown> {
  const handler = handlers[kind];
  if (!handler) throw new ScError(`no resource handler for kind "${kind}"`);
  return handler;
}

/**
 * Like `terraform -target`: keep the targeted actions and every pending action they wait for,
 * transitively. A target that is neither desired nor owned on this host is a UserError.
 */
export function selectTargets(plan: Plan, targets: readonly ObjectRef[]): Plan {
  const byKey = new Map(plan.actions.map((a) => [refString(a.ref), a]));
  const noopKeys = new Set(plan.noops.map(refString));
  const unknown = targets.map(refString).filter((key) => !byKey.has(key) && !noopKeys.has(key));
  if (unknown.length) {
    throw new UserError(
      `unknown target${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: neither desired on this host nor found here as an sc-owned object`,
    );
  }

  const keep = new Set<string>();
  const walkedLists = new Set<readonly ObjectRef[]>();
  const stack = targets.map(refString).filter((key) => byKey.has(key));
  while (stack.length) {
    const key = stack.pop() as string;
    if (keep.has(key)) continue;
    keep.add(key);
    const action = byKey.get(key) as PlannedAction;
    if (walkedLists.has(action.after)) continue;
    walkedLists.add(action.after);
    for (const dep of action.after) if (byKey.has(refString(dep))) stack.push(refString(dep));
  }

  const targetKeys = new Set(targets.map(refString));
  const actions = plan.actions.filter((a) => keep.has(refString(a.ref)));
  return {
    actions,
    noops: plan.noops.filter((ref) => targetKeys.has(refString(ref))),
    summary: summarize(actions),
    hasChanges: actions.some((a) => a.type !== 'conflict'),
    inSync: actions.length === 0,
  };
}
