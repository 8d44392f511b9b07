import { ScError, UserError } from '../../../src/errors.js';
import { desiredState, observeHost } from '../../../src/reconciler/observe-host.js';
import { planActions, selectTargets, type Plan } from '../../../src/reconciler/planner.js';
import { refString, type HandlerRegistry, type PlannedAction } from '../../../src/resources/contract.js';
import { emptyModel, fakeHandler, RecordingDrivers, ref, seen, testHost, want, worldOf, type FakeWorld } from './fake-handler.js';

async function planOf(handlers: HandlerRegistry): Promise<Plan> {
  const desired = desiredState(handlers, emptyModel, testHost);
  const observed = await observeHost(handlers, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() });
  return planActions(handlers, desired, observed);
}

const byRef = (plan: Plan, kind: string, id: string): PlannedAction => {
  const found = plan.actions.find((a) => a.ref.kind === kind && a.ref.id === id);
  if (!found) throw new Error(`no action for ${kind}/${id}`);
  return found;
};
const keys = (plan: Plan): string[] => plan.actions.map((a) => `${a.type} ${refString(a.ref)}`);

describe('planActions: action selection', () => {
  it('creates, updates, deletes, keeps no-ops and ignores foreign objects nobody wants', async () => {
    const world = worldOf(
      seen('bridge', 'b-same', { address: '10.0.0.1/24', up: true }),
      seen('bridge', 'b-drift', { address: '10.0.0.9/24', up: false }),
      seen('bridge', 'b-gone', { address: '10.0.9.1/24', up: true }, true, 'user old'),
      seen('bridge', 'docker0', { address: '172.17.0.1/16', up: true }, false),
    );
    const handlers = {
      bridge: fakeHandler('bridge', world, {
        desired: [
          want('bridge', 'b-new', { address: '10.0.1.1/24', up: true }, { description: 'user alice' }),
          want('bridge', 'b-same', { address: '10.0.0.1/24', up: true }),
          want('bridge', 'b-drift', { address: '10.0.0.1/24', up: true }),
        ],
      }),
    };
    const plan = await planOf(handlers);
    expect(keys(plan).sort()).toEqual(['create bridge/b-new', 'delete bridge/b-gone', 'update bridge/b-drift']);
    expect(plan.noops).toEqual([ref('bridge', 'b-same')]);
    expect(plan.summary).toEqual({ add: 1, change: 1, destroy: 1, conflict: 0 });
    expect(plan.hasChanges).toBe(true);
    expect(plan.inSync).toBe(false);
    expect(byRef(plan, 'bridge', 'b-new').message).toBe('user alice');
    expect(byRef(plan, 'bridge', 'b-gone').message).toBe('user old');
  });

  it('gives field-level reasons with the old value from the observed view and the patch for the handler', async () => {
    const world = worldOf(seen('bridge', 'b', { address: '10.17.4.9/24', up: false, mtu: 1500, extra: [1, 2] }));
    const handlers = {
      bridge: fakeHandler('bridge', world, { desired: [want('bridge', 'b', { address: '10.17.4.1/24', up: true, name: 'x', extra: [1] })] }),
    };
    const action = byRef(await planOf(handlers), 'bridge', 'b');
    expect(action.type).toBe('update');
    expect(action.reasons).toEqual([
      { path: '/address', op: 'replace', old: '10.17.4.9/24', new: '10.17.4.1/24' },
      { path: '/extra/1', op: 'remove', old: 2 },
      { path: '/mtu', op: 'remove', old: 1500 },
      { path: '/name', op: 'add', new: 'x' },
      { path: '/up', op: 'replace', old: false, new: true },
    ]);
    expect(action.patch).toHaveLength(5);
    expect(action.patch).toContainEqual({ op: 'replace', path: '/address', value: '10.17.4.1/24' });
  });

  it('compares only the normalised view, where undefined and missing fields are equal', async () => {
    const world = worldOf(seen('bridge', 'b', { address: '10.0.0.1/24', ifindex: 7 }));
    const handlers = {
      bridge: fakeHandler('bridge', world, {
        desired: [want('bridge', 'b', { address: '10.0.0.1/24', comment: undefined })],
        normalize: (spec) => ({ address: spec.address, comment: spec.comment }),
      }),
    };
    const plan = await planOf(handlers);
    expect(plan.actions).toEqual([]);
    expect(plan.noops).toEqual([ref('bridge', 'b')]);
    expect(plan.hasChanges).toBe(false);
  });

  it('plans a replace when the handler has no update or refuses the patch', async () => {
    const world = worldOf(seen('image', 'fedora', { version: 40 }), seen('bridge', 'b', { address: 'a', mtu: 1 }));
    const handlers = {
      image: fakeHandler('image', world, { update: false, desired: [want('image', 'fedora', { version: 41 })] }),
      bridge: fakeHandler('bridge', world, {
        desired: [want('bridge', 'b', { address: 'b', mtu: 1 })],
        canUpdate: (patch) => patch.every((op) => op.path !== '/address'),
      }),
    };
    const plan = await planOf(handlers);
    expect(byRef(plan, 'image', 'fedora').type).toBe('replace');
    expect(byRef(plan, 'image', 'fedora').reasons).toEqual([{ path: '/version', op: 'replace', old: 40, new: 41 }]);
    expect(byRef(plan, 'bridge', 'b').type).toBe('replace');
    expect(plan.summary).toEqual({ add: 2, change: 0, destroy: 2, conflict: 0 });
  });

  it('reports a foreign object with the desired name, or one the handler finds in the way, as a conflict', async () => {
    const world = worldOf(
      seen('bridge', 'sc-17-5', { address: '10.17.5.1/24' }, false),
      seen('bridge', 'dummy0', { address: '10.17.6.7/24' }, false),
    );
    const handlers = {
      bridge: fakeHandler('bridge', world, {
        desired: [want('bridge', 'sc-17-5', { address: '10.17.5.1/24' }), want('bridge', 'sc-17-6', { address: '10.17.6.1/24' })],
        conflict: (w, observed) => {
          expect(observed.every((o) => !o.owned)).toBe(true);
          const prefix = String(w.spec.address).split('.').slice(0, 3).join('.');
          const other = observed.find((o) => o.ref.id !== w.ref.id && String(o.spec.address).startsWith(`${prefix}.`));
          return other ? `foreign link ${other.ref.id} holds an address in ${prefix}.0/24` : undefined;
        },
      }),
    };
    const plan = await planOf(handlers);
    expect(keys(plan)).toEqual(['conflict bridge/sc-17-5', 'conflict bridge/sc-17-6']);
    expect(byRef(plan, 'bridge', 'sc-17-5').message).toBe('foreign bridge sc-17-5 (not created by sc) is in the way');
    expect(byRef(plan, 'bridge', 'sc-17-6').message).toBe('foreign link dummy0 holds an address in 10.17.6.0/24');
    expect(plan.summary.conflict).toBe(2);
    // A conflict alone changes nothing (apply does nothing), but the host is not in sync: diff exits 2, apply is not converged.
    expect(plan.hasChanges).toBe(false);
    expect(plan.inSync).toBe(false);
  });

  it("prefers the handler's explanation of a same-named foreign object", async () => {
    const world = worldOf(seen('bridge', 'sc-1-1', { kind: 'dummy' }, false));
    const handlers = {
      bridge: fakeHandler('bridge', world, {
        desired: [want('bridge', 'sc-1-1', {})],
        conflict: (w, observed) => (observed.some((o) => o.ref.id === w.ref.id) ? 'foreign dummy link sc-1-1 has this name' : undefined),
      }),
    };
    const plan = await planOf(handlers);
    expect(plan.actions.map((a) => [a.type, a.message])).toEqual([['conflict', 'foreign dummy link sc-1-1 has this name']]);
  });

  it('never plans to delete an object it does not own', async () => {
    const world = worldOf(seen('bridge', 'lxcbr0', { up: true }, false), seen('bridge', 'sc-1-1', { up: true }, true));
    const plan = await planOf({ bridge: fakeHandler('bridge', world) });
    expect(keys(plan)).toEqual(['delete bridge/sc-1-1']);
  });
});

describe('planActions: ordering', () => {
  function farm(world: FakeWorld, desiredContainers: { id: string; bridge: string }[], desiredBridges: string[]): HandlerRegistry {
    return {
      container: fakeHandler('container', world, {
        dependsOnKinds: ['bridge'],
        desired: desiredContainers.map((c) => want('container', c.id, { bridge: c.bridge }, { dependsOn: [ref('bridge', c.bridge)] })),
      }),
      bridge: fakeHandler('bridge', world, { desired: desiredBridges.map((b) => want('bridge', b, { up: true })) }),
    };
  }

  it('puts a container after its bridge, and only waits for dependencies that have pending actions', async () => {
    const world = worldOf(seen('bridge', 'sc-1', { up: true }));
    const plan = await planOf(
      farm(
        world,
        [
          { id: 'c-a', bridge: 'sc-1' },
          { id: 'c-b', bridge: 'sc-2' },
        ],
        ['sc-2', 'sc-1'],
      ),
    );
    expect(keys(plan)).toEqual(['create bridge/sc-2', 'create container/c-a', 'create container/c-b']);
    expect(byRef(plan, 'container', 'c-b').after).toEqual([ref('bridge', 'sc-2')]);
    expect(byRef(plan, 'container', 'c-a').after).toEqual([]);
  });

  it('deletes in reverse: a bridge delete waits for the deletes of containers, even when nothing is desired', async () => {
    const world = worldOf(seen('bridge', 'sc-1', {}), seen('bridge', 'sc-2', {}), seen('container', 'c-1', {}), seen('container', 'c-2', {}));
    const plan = await planOf(farm(world, [], []));
    expect(keys(plan)).toEqual(['delete container/c-1', 'delete container/c-2', 'delete bridge/sc-1', 'delete bridge/sc-2']);
    expect(byRef(plan, 'bridge', 'sc-1').after).toEqual([ref('container', 'c-1'), ref('container', 'c-2')]);
    expect(byRef(plan, 'container', 'c-1').after).toEqual([]);
  });

  it('lets a bridge delete wait for updates of existing containers (they may be moving off it), not for creates', async () => {
    const world = worldOf(seen('bridge', 'sc-old', {}), seen('container', 'c-move', { bridge: 'sc-old' }));
    const plan = await planOf(
      farm(
        world,
        [
          { id: 'c-move', bridge: 'sc-new' },
          { id: 'c-fresh', bridge: 'sc-new' },
        ],
        ['sc-new'],
      ),
    );
    expect(byRef(plan, 'bridge', 'sc-old').after).toEqual([ref('container', 'c-move')]);
    expect(byRef(plan, 'container', 'c-move').after).toEqual([ref('bridge', 'sc-new')]);
    expect(keys(plan)).toEqual(['create bridge/sc-new', 'create container/c-fresh', 'update container/c-move', 'delete bridge/sc-old']);
  });

  it('orders by id naturally within a level (sc-9 before sc-10)', async () => {
    const plan = await planOf(farm(new Map(), [], ['sc-10', 'sc-9', 'sc-1']));
    expect(plan.actions.map((a) => a.ref.id)).toEqual(['sc-1', 'sc-9', 'sc-10']);
  });

  it('rejects a dependency cycle, naming it', async () => {
    const handlers = {
      svc: fakeHandler('svc', new Map(), {
        desired: [
          want('svc', 'a', {}, { dependsOn: [ref('svc', 'b')] }),
          want('svc', 'b', {}, { dependsOn: [ref('svc', 'c')] }),
          want('svc', 'c', {}, { dependsOn: [ref('svc', 'a')] }),
        ],
      }),
    };
    await expect(planOf(handlers)).rejects.toThrow(UserError);
    await expect(planOf(handlers)).rejects.toThrow(/dependency cycle: svc\/a → svc\/b → svc\/c → svc\/a/);
  });

  it('rejects a dependency on an object of a managed kind that is not desired; ignores unmanaged kinds', async () => {
    const missing = {
      container: fakeHandler('container', new Map(), { desired: [want('container', 'c', {}, { dependsOn: [ref('container', 'nope')] })] }),
    };
    await expect(planOf(missing)).rejects.toThrow(/container\/c depends on container\/nope, which is not desired/);
    const unmanaged = {
      container: fakeHandler('container', new Map(), { desired: [want('container', 'c', {}, { dependsOn: [ref('image', 'fedora')] })] }),
    };
    expect(keys(await planOf(unmanaged))).toEqual(['create container/c']);
  });

  it('keeps a desired object that depends on a conflict waiting for it (the executor skips it)', async () => {
    const world = worldOf(seen('bridge', 'sc-1', {}, false));
    const plan = await planOf(farm(world, [{ id: 'c', bridge: 'sc-1' }], ['sc-1']));
    expect(keys(plan)).toEqual(['conflict bridge/sc-1', 'create container/c']);
    expect(byRef(plan, 'container', 'c').after).toEqual([ref('bridge', 'sc-1')]);
  });
});

describe('selectTargets', () => {
  const world = (): FakeWorld => worldOf(seen('bridge', 'sc-gone', {}), seen('container', 'c-gone', {}), seen('bridge', 'sc-ok', { up: true }));
  const handlers = (w: FakeWorld): HandlerRegistry => ({
    container: fakeHandler('container', w, {
      dependsOnKinds: ['bridge'],
      desired: [
        want('container', 'c-1', {}, { dependsOn: [ref('bridge', 'sc-1')] }),
        want('container', 'c-2', {}, { dependsOn: [ref('bridge', 'sc-2')] }),
      ],
    }),
    bridge: fakeHandler('bridge', w, { desired: [want('bridge', 'sc-1', {}), want('bridge', 'sc-2', {}), want('bridge', 'sc-ok', { up: true })] }),
  });

  it('keeps the target and the pending actions it depends on, like terraform -target', async () => {
    const plan = await planOf(handlers(world()));
    const selected = selectTargets(plan, [ref('container', 'c-1')]);
    expect(keys(selected)).toEqual(['create bridge/sc-1', 'create container/c-1']);
    expect(selected.summary).toEqual({ add: 2, change: 0, destroy: 0, conflict: 0 });
  });

  it('pulls the dependents of a targeted delete in (they must go first)', async () => {
    const plan = await planOf(handlers(world()));
    expect(keys(selectTargets(plan, [ref('bridge', 'sc-gone')]))).toEqual(['delete container/c-gone', 'delete bridge/sc-gone']);
  });

  it('accepts a target that is already converged (nothing to do) and rejects unknown ones', async () => {
    const plan = await planOf(handlers(world()));
    const converged = selectTargets(plan, [ref('bridge', 'sc-ok')]);
    expect(converged.actions).toEqual([]);
    expect(converged.hasChanges).toBe(false);
    expect(converged.noops).toEqual([ref('bridge', 'sc-ok')]);
    expect(() => selectTargets(plan, [ref('bridge', 'sc-404'), ref('vpn', 'x')])).toThrow(UserError);
    expect(() => selectTargets(plan, [ref('bridge', 'sc-404')])).toThrow(/unknown target bridge\/sc-404/);
  });
});

describe('desiredState and observeHost', () => {
  it('rejects duplicate desired refs and refs of another kind', () => {
    const handlers = {
      bridge: fakeHandler('bridge', new Map(), { desired: [want('bridge', 'a', {}), want('bridge', 'a', {}), want('vpn', 'x', {})] }),
    };
    expect(() => desiredState(handlers, emptyModel, testHost)).toThrow(UserError);
    expect(() => desiredState(handlers, emptyModel, testHost)).toThrow(/bridge\/a appears more than once.*another kind/);
  });

  it('observes all kinds at once, one bulk call each', async () => {
    const started: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = (kind: string) => ({
      ...fakeHandler(kind, new Map()),
      observe: async () => {
        started.push(kind);
        await gate;
        return [seen(kind, 'x', {})];
      },
    });
    const observing = observeHost({ a: slow('a'), b: slow('b') }, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() });
    await new Promise((resolve) => setImmediate(resolve));
    expect(started.sort()).toEqual(['a', 'b']);
    release();
    const observed = await observing;
    expect([...observed.keys()]).toEqual(['a', 'b']);
    expect(observed.get('b')).toEqual([seen('b', 'x', {})]);
  });

  it('fails when one observation fails, and rejects duplicate observed refs', async () => {
    const broken = { ...fakeHandler('a', new Map()), observe: async () => Promise.reject(new Error('ip: not found')) };
    await expect(
      observeHost({ a: broken, b: fakeHandler('b', new Map()) }, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() }),
    ).rejects.toThrow('ip: not found');
    const twice = { ...fakeHandler('a', new Map()), observe: async () => [seen('a', 'x', {}), seen('a', 'x', {}, false)] };
    await expect(observeHost({ a: twice }, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() })).rejects.toThrow(ScError);
  });
});
