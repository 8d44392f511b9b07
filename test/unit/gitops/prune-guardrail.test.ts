// The prune guardrail on hand-made plans: shares, "all of them", an empty desired state, the override.
import type { Plan } from '../../../src/reconciler/planner.js';
import { assertPruneAllowed, pruneVerdict, PruneRefusedError } from '../../../src/reconciler/prune-guardrail.js';
import type { ActionType, DesiredObject, ObservedObject, PlannedAction } from '../../../src/resources/contract.js';

const action = (type: ActionType, kind: string, id: string): PlannedAction => ({ type, ref: { kind, id }, patch: [], reasons: [], after: [] });

function plan(actions: PlannedAction[]): Plan {
  return {
    actions,
    noops: [],
    summary: { add: 0, change: 0, destroy: 0, conflict: 0 },
    hasChanges: actions.length > 0,
    inSync: actions.length === 0,
  };
}

const observedContainers = (owned: number, foreign = 0): Map<string, ObservedObject<unknown>[]> =>
  new Map([
    [
      'container',
      [
        ...Array.from({ length: owned }, (_, i) => ({ ref: { kind: 'container', id: `c${i}` }, spec: {}, owned: true })),
        ...Array.from({ length: foreign }, (_, i) => ({ ref: { kind: 'container', id: `f${i}` }, spec: {}, owned: false })),
      ],
    ],
  ]);

const desiredSome: Map<string, DesiredObject<unknown>[]> = new Map([['bridge', [{ ref: { kind: 'bridge', id: 'sc-16-1' }, spec: {} }]]]);
const deletes = (n: number) => Array.from({ length: n }, (_, i) => action('delete', 'container', `c${i}`));

describe('prune guardrail', () => {
  it('lets a plan delete up to the share (default 50 %)', () => {
    expect(pruneVerdict({ plan: plan(deletes(2)), desired: desiredSome, observed: observedContainers(4) })).toEqual({ owned: 4, deletes: 2 });
  });

  it('refuses more than the share and explains the numbers and the override', () => {
    const verdict = pruneVerdict({ plan: plan(deletes(3)), desired: desiredSome, observed: observedContainers(4) });
    expect(verdict.refusal).toContain('delete 3 of the 4 containers');
    expect(verdict.refusal).toContain('75 %');
    expect(verdict.refusal).toContain('50 %');
    expect(verdict.refusal).toContain('--allow-mass-delete');
  });

  it('uses the configured share', () => {
    expect(
      pruneVerdict({ plan: plan(deletes(3)), desired: desiredSome, observed: observedContainers(4), maxDeleteShare: 0.8 }).refusal,
    ).toBeUndefined();
    expect(pruneVerdict({ plan: plan(deletes(1)), desired: desiredSome, observed: observedContainers(4), maxDeleteShare: 0.2 }).refusal).toContain(
      'delete 1 of the 4',
    );
  });

  it('refuses deleting all containers, even the only one and even with a share of 1', () => {
    expect(pruneVerdict({ plan: plan(deletes(1)), desired: desiredSome, observed: observedContainers(1) }).refusal).toContain('all 1 containers');
    expect(pruneVerdict({ plan: plan(deletes(5)), desired: desiredSome, observed: observedContainers(5), maxDeleteShare: 1 }).refusal).toContain(
      'all 5 containers',
    );
  });

  it('counts only owned containers, and only container deletes', () => {
    const mixed = [
      action('delete', 'container', 'c0'),
      action('delete', 'bridge', 'sc-16-2'),
      action('create', 'container', 'new'),
      action('replace', 'container', 'c1'),
    ];
    expect(pruneVerdict({ plan: plan(mixed), desired: desiredSome, observed: observedContainers(2, 10) })).toEqual({ owned: 2, deletes: 1 });
  });

  it('refuses any delete when the desired state for the host is empty', () => {
    const verdict = pruneVerdict({ plan: plan([action('delete', 'bridge', 'sc-16-1')]), desired: new Map(), observed: new Map() });
    expect(verdict.refusal).toContain('desired state for this host is empty');
  });

  it('allows an empty desired state that deletes nothing', () => {
    expect(pruneVerdict({ plan: plan([]), desired: new Map(), observed: observedContainers(0) }).refusal).toBeUndefined();
  });

  it('--allow-mass-delete lets every case through', () => {
    expect(
      pruneVerdict({ plan: plan(deletes(4)), desired: new Map(), observed: observedContainers(4), allowMassDelete: true }).refusal,
    ).toBeUndefined();
  });

  it('assertPruneAllowed throws a PruneRefusedError (a UserError: exit 1) saying nothing changed', () => {
    expect(() => assertPruneAllowed({ plan: plan(deletes(2)), desired: desiredSome, observed: observedContainers(2) })).toThrow(PruneRefusedError);
    expect(() => assertPruneAllowed({ plan: plan(deletes(2)), desired: desiredSome, observed: observedContainers(2) })).toThrow(
      /nothing was changed/,
    );
    expect(assertPruneAllowed({ plan: plan(deletes(1)), desired: desiredSome, observed: observedContainers(2) })).toEqual({ owned: 2, deletes: 1 });
  });
});
