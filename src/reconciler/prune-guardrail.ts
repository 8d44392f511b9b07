// The prune guardrail: a plan that would delete a large share (or all) of this host's containers,
// or anything at all from a desired state that is empty, is refused unless --allow-mass-delete.
// A broken commit or an emptied repository must not wipe a host.
import { UserError } from '../errors.js';
import type { DesiredObject, ObservedObject } from '../resources/contract.js';
import type { Plan } from './planner.js';

export const GUARDED_KIND = 'container';
export const DEFAULT_MAX_DELETE_SHARE = 0.5;

export interface PruneGuardrailInput {
  readonly plan: Plan;
  readonly desired: ReadonlyMap<string, readonly DesiredObject<unknown>[]>;
  readonly observed: ReadonlyMap<string, readonly ObservedObject<unknown>[]>;
  /** settings.prune.max_delete_share (0–1; default 0.5). */
  readonly maxDeleteShare?: number;
  readonly allowMassDelete?: boolean;
}

export interface PruneVerdict {
  /** Owned containers found on the host. */
  readonly owned: number;
  /** Of those, the plan deletes this many. */
  readonly deletes: number;
  /** Why the plan is refused; undefined when it may go ahead. */
  readonly refusal?: string;
}

export function pruneVerdict(input: PruneGuardrailInput): PruneVerdict {
  const share = input.maxDeleteShare ?? DEFAULT_MAX_DELETE_SHARE;
  const owned = (input.observed.get(GUARDED_KIND) ?? []).filter((o) => o.owned).length;
  const deletes = input.plan.actions.filter((a) => a.type === 'delete' && a.ref.kind === GUARDED_KIND).length;
  const desiredCount = [...input.desired.values()].reduce((n, objects) => n + objects.length, 0);
  const anyDelete = input.plan.actions.some((a) => a.type === 'delete');
  const verdict = { owned, deletes };
  if (input.allowMassDelete) return verdict;
  if (desiredCount === 0 && anyDelete) {
    const total = input.plan.actions.filter((a) => a.type === 'delete').length;
    return {
      ...verdict,
      refusal: `the desired state for this host is empty, and applying it would delete all ${total} resources sc manages here; an empty or broken source never deletes anything. If this host really should be emptied, run again with --allow-mass-delete`,
    };
  }
  if (owned === 0 || deletes === 0) return verdict;
  if (deletes === owned) {
    return {
      ...verdict,
      refusal: `this would delete all ${owned} containers of this host; if that is really meant, run again with --allow-mass-delete`,
    };
  }
  if (deletes / owned > share) {
    const percent = (x: number) => `${Math.round(x * 100)} %`;
    return {
      ...verdict,
      refusal: `this would delete ${deletes} of the ${owned} containers of this host (${percent(deletes / owned)}), more than settings.prune.max_delete_share allows (${percent(share)}); if that is really meant, run again with --allow-mass-delete`,
    };
  }
  return verdict;
}

/** Throws a UserError explaining the numbers when the plan must not run. */
export function assertPruneAllowed(input: PruneGuardrailInput): PruneVerdict {
  const verdict = pruneVerdict(input);
  if (verdict.refusal !== undefined) throw new PruneRefusedError(`refused by the prune guardrail: ${verdict.refusal}; nothing was changed`, verdict);
  return verdict;
}

/** The guardrail said no: nothing was applied. */
export class PruneRefusedError extends UserError {
  constructor(
    message: string,
    readonly verdict: PruneVerdict,
  ) {
    super(message);
  }
}
