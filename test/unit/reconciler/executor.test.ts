import { ConflictError, HostCommandError } from '../../../src/errors.js';
import { executePlan, type ApplyEvent, type ApplyReport } from '../../../src/reconciler/executor.js';
import { desiredState, observeHost } from '../../../src/reconciler/observe-host.js';
import { planActions, type Plan } from '../../../src/reconciler/planner.js';
import { refString, type HandlerRegistry } from '../../../src/resources/contract.js';
import { emptyModel, fakeHandler, RecordingDrivers, ref, seen, testHost, until, want, worldOf, type FakeWorld } from './fake-handler.js';

async function planOf(handlers: HandlerRegistry): Promise<Plan> {
  return planActions(
    handlers,
    desiredState(handlers, emptyModel, testHost),
    await observeHost(handlers, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() }),
  );
}

function apply(
  plan: Plan,
  handlers: HandlerRegistry,
  drivers: RecordingDrivers,
  extra: { concurrency?: number; events?: ApplyEvent[]; signal?: AbortSignal } = {},
): Promise<ApplyReport> {
  return executePlan(plan, {
    handlers,
    drivers,
    host: testHost,
    concurrency: extra.concurrency ?? 4,
    retry: { attempts: 3, baseDelayMs: 1 },
    onEvent: (e) => extra.events?.push(e),
    ...(extra.signal ? { signal: extra.signal } : {}),
  });
}

const statusOf = (report: ApplyReport, key: string) => report.results.find((r) => refString(r.ref) === key);

/** Bridges and containers on them: container X depends on bridge X's bridge. */
function farm(world: FakeWorld, containers: Record<string, string>, bridges: string[], options: { batchBridges?: boolean } = {}): HandlerRegistry {
  return {
    bridge: fakeHandler('bridge', world, { batch: options.batchBridges ?? false, desired: bridges.map((b) => want('bridge', b, { up: true })) }),
    container: fakeHandler('container', world, {
      dependsOnKinds: ['bridge'],
      desired: Object.entries(containers).map(([id, bridge]) => want('container', id, { bridge }, { dependsOn: [ref('bridge', bridge)] })),
    }),
  };
}

describe('executePlan', () => {
  it('runs a container only after its bridge, converges, and a second plan is empty', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, { 'c-1': 'sc-1', 'c-2': 'sc-2' }, ['sc-1', 'sc-2']);
    const drivers = new RecordingDrivers();
    const report = await apply(await planOf(handlers), handlers, drivers, { concurrency: 8 });
    expect(report).toMatchObject({ ok: 4, failed: 0, skipped: 0, conflicts: 0, converged: true });
    expect(drivers.log.indexOf('create container/c-1')).toBeGreaterThan(drivers.log.indexOf('create bridge/sc-1'));
    expect(drivers.log.indexOf('create container/c-2')).toBeGreaterThan(drivers.log.indexOf('create bridge/sc-2'));
    expect((await planOf(handlers)).actions).toEqual([]);
  });

  it('deletes containers before their bridges', async () => {
    const world = worldOf(seen('bridge', 'sc-1', {}), seen('container', 'c-1', {}), seen('container', 'c-2', {}));
    const handlers = farm(world, {}, []);
    const drivers = new RecordingDrivers();
    const report = await apply(await planOf(handlers), handlers, drivers, { concurrency: 8 });
    expect(report.converged).toBe(true);
    expect(drivers.log.slice(0, 2).sort()).toEqual(['delete container/c-1', 'delete container/c-2']);
    expect(drivers.log[2]).toBe('delete bridge/sc-1');
    expect(world.size).toBe(0);
  });

  it('skips the dependents of a failure while unrelated work continues', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, { 'c-a': 'sc-bad', 'c-b': 'sc-good' }, ['sc-bad', 'sc-good', 'sc-other']);
    const drivers = new RecordingDrivers().failWhen((line) =>
      line === 'create bridge/sc-bad'
        ? new HostCommandError(['ip', 'link', 'add', 'sc-bad'], 2, 'RTNETLINK answers: Operation not permitted')
        : undefined,
    );
    const events: ApplyEvent[] = [];
    const report = await apply(await planOf(handlers), handlers, drivers, { events });
    expect(statusOf(report, 'bridge/sc-bad')).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringContaining('Operation not permitted'),
    });
    expect(statusOf(report, 'container/c-a')).toMatchObject({ status: 'skipped', attempts: 0, error: 'dependency bridge/sc-bad failed' });
    expect(statusOf(report, 'container/c-b')?.status).toBe('ok');
    expect(statusOf(report, 'bridge/sc-other')?.status).toBe('ok');
    expect(report).toMatchObject({ ok: 3, failed: 1, skipped: 1, converged: false });
    expect(drivers.log).not.toContain('create container/c-a');
    expect(events.filter((e) => e.type === 'skipped').map((e) => e.error?.message)).toEqual(['dependency bridge/sc-bad failed']);
  });

  it('skips transitively and reports each skip once, naming the nearest blocked dependency', async () => {
    const world: FakeWorld = new Map();
    const handlers: HandlerRegistry = {
      svc: fakeHandler('svc', world, {
        desired: [
          want('svc', 'a', {}),
          want('svc', 'b', {}, { dependsOn: [ref('svc', 'a')] }),
          want('svc', 'c', {}, { dependsOn: [ref('svc', 'b'), ref('svc', 'a')] }),
        ],
      }),
    };
    const drivers = new RecordingDrivers().failWhen((line) => (line === 'create svc/a' ? new Error('boom') : undefined));
    const report = await apply(await planOf(handlers), handlers, drivers);
    expect(report.results.map((r) => [refString(r.ref), r.status, r.error])).toEqual([
      ['svc/a', 'failed', 'boom'],
      ['svc/b', 'skipped', 'dependency svc/a failed'],
      ['svc/c', 'skipped', expect.stringMatching(/^dependency svc\/[ab] (failed|was skipped)$/)],
    ]);
  });

  it('retries retryable errors with backoff and fails others at once', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, {}, ['sc-flaky', 'sc-broken']);
    const drivers = new RecordingDrivers().failWhen((line, attempt) => {
      if (line === 'create bridge/sc-flaky' && attempt < 3) return new HostCommandError(['ip'], 2, 'Dump was interrupted', '', { retryable: true });
      if (line === 'create bridge/sc-broken') return new HostCommandError(['ip'], 2, 'File exists');
      return undefined;
    });
    const events: ApplyEvent[] = [];
    const report = await apply(await planOf(handlers), handlers, drivers, { events });
    expect(statusOf(report, 'bridge/sc-flaky')).toMatchObject({ status: 'ok', attempts: 3 });
    expect(statusOf(report, 'bridge/sc-broken')).toMatchObject({ status: 'failed', attempts: 1 });
    expect(events.filter((e) => e.type === 'retry').map((e) => [refString(e.action.ref), e.attempt])).toEqual([
      ['bridge/sc-flaky', 2],
      ['bridge/sc-flaky', 3],
    ]);
  });

  it('gives up after the configured attempts of a retryable error', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, {}, ['sc-1']);
    const drivers = new RecordingDrivers().failWhen(() => Object.assign(new Error('busy'), { retryable: true }));
    const report = await apply(await planOf(handlers), handlers, drivers);
    expect(statusOf(report, 'bridge/sc-1')).toMatchObject({ status: 'failed', attempts: 3, error: 'busy' });
    expect(drivers.log).toEqual(['create bridge/sc-1', 'create bridge/sc-1', 'create bridge/sc-1']);
  });

  it('honours the concurrency limit', async () => {
    const world: FakeWorld = new Map();
    const bridges = Array.from({ length: 10 }, (_, i) => `sc-${i}`);
    const handlers = farm(world, {}, bridges);
    const drivers = new RecordingDrivers();
    drivers.holdCalls();
    const running = apply(await planOf(handlers), handlers, drivers, { concurrency: 3 });
    await until(() => drivers.inFlight === 3);
    // Nothing beyond the limit started while the first three are held.
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(drivers.log).toHaveLength(3);
    drivers.release();
    const report = await running;
    expect(report.ok).toBe(10);
    expect(drivers.maxInFlight).toBe(3);
  });

  it('runs what waited for a finished action before the queued actions that wait for nothing', async () => {
    const world: FakeWorld = new Map();
    // Unbatched bridges all ready at once; each container waits for its bridge.
    const handlers = farm(world, { 'c-1': 'sc-1', 'c-2': 'sc-2' }, ['sc-1', 'sc-2', 'sc-3', 'sc-4']);
    const drivers = new RecordingDrivers();
    const report = await apply(await planOf(handlers), handlers, drivers, { concurrency: 1 });
    expect(report.converged).toBe(true);
    const creates = drivers.log.filter((line) => line.startsWith('create '));
    // container/c-1 was queued when bridge/sc-1 finished, behind sc-2…sc-4: it runs next all the same.
    expect(creates.slice(0, 3)).toEqual(['create bridge/sc-1', 'create container/c-1', 'create bridge/sc-2']);
  });

  it('batches the ready actions of a batching kind into one call, then runs dependents', async () => {
    const world = worldOf(seen('bridge', 'sc-old', {}), seen('bridge', 'sc-drift', { up: false }));
    const handlers = farm(world, { 'c-1': 'sc-1', 'c-2': 'sc-2' }, ['sc-1', 'sc-2', 'sc-3', 'sc-drift'], { batchBridges: true });
    const drivers = new RecordingDrivers();
    const plan = await planOf(handlers);
    const report = await apply(plan, handlers, drivers, { concurrency: 8 });
    expect(report.converged).toBe(true);
    const batches = drivers.log.filter((l) => l.startsWith('batch'));
    // Creates, the in-place update and the delete (no container uses sc-old) were all ready at once.
    expect(batches).toEqual(['batch bridge/sc-1 bridge/sc-2 bridge/sc-3 bridge/sc-drift bridge/sc-old']);
    expect(drivers.log.filter((l) => !l.startsWith('batch')).sort()).toEqual(['create container/c-1', 'create container/c-2']);
    expect(drivers.log.indexOf('create container/c-1')).toBeGreaterThan(drivers.log.indexOf(batches[0] as string));
    expect(world.has('bridge/sc-old')).toBe(false);
    expect(world.get('bridge/sc-drift')?.spec).toEqual({ up: true });
    expect(statusOf(report, 'bridge/sc-2')).toMatchObject({ status: 'ok', attempts: 1 });
  });

  it('retries the refs a batch reports failed one by one, so each gets its own error', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, { 'c-1': 'sc-1', 'c-2': 'sc-2' }, ['sc-1', 'sc-2', 'sc-3'], { batchBridges: true });
    const drivers = new RecordingDrivers().failWhen((line) => {
      if (line === 'batch-item bridge/sc-1' || line === 'batch-item bridge/sc-2') return new Error('batch line failed');
      if (line === 'create bridge/sc-2') return new HostCommandError(['ip', 'link', 'add', 'sc-2'], 2, 'RTNETLINK answers: File exists');
      return undefined;
    });
    const report = await apply(await planOf(handlers), handlers, drivers);
    expect(drivers.log.filter((l) => l.startsWith('batch'))).toEqual(['batch bridge/sc-1 bridge/sc-2 bridge/sc-3']);
    expect(drivers.log).toContain('create bridge/sc-1');
    expect(statusOf(report, 'bridge/sc-1')).toMatchObject({ status: 'ok', attempts: 2 });
    expect(statusOf(report, 'bridge/sc-2')).toMatchObject({ status: 'failed', attempts: 2, error: expect.stringContaining('File exists') });
    expect(statusOf(report, 'bridge/sc-3')).toMatchObject({ status: 'ok', attempts: 1 });
    expect(statusOf(report, 'container/c-1')?.status).toBe('ok');
    expect(statusOf(report, 'container/c-2')).toMatchObject({ status: 'skipped', error: 'dependency bridge/sc-2 failed' });
  });

  it('falls back to single calls when the whole batch throws', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, {}, ['sc-1', 'sc-2'], { batchBridges: true });
    const drivers = new RecordingDrivers().failWhen((line) => (line.startsWith('batch ') ? new Error('ip: cannot read batch') : undefined));
    const report = await apply(await planOf(handlers), handlers, drivers);
    expect(report.converged).toBe(true);
    expect(drivers.log.filter((l) => l.startsWith('create')).sort()).toEqual(['create bridge/sc-1', 'create bridge/sc-2']);
  });

  it('says once, right after the batch that completes the plan, that nothing more will change', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, {}, ['sc-1', 'sc-2', 'sc-3'], { batchBridges: true });
    const drivers = new RecordingDrivers();
    const calls: string[] = [];
    const events: string[] = [];
    const report = await executePlan(await planOf(handlers), {
      handlers,
      drivers,
      host: testHost,
      concurrency: 2,
      retry: { attempts: 3, baseDelayMs: 1 },
      onEvent: (e) => events.push(`${e.type} ${refString(e.action.ref)}`),
      onLastHostCall: () => calls.push(`${drivers.log.join(',')} | ${events.filter((e) => e.startsWith('done')).length} done`),
    });
    expect(report.converged).toBe(true);
    // Once, after the batch ran and before its outcomes were reported.
    expect(calls).toEqual(['batch bridge/sc-1 bridge/sc-2 bridge/sc-3 | 0 done']);
  });

  it('does not say so after a batch with failures (retried), before dependents, after single actions, nor when incomplete', async () => {
    const options = { host: testHost, concurrency: 2, retry: { attempts: 3, baseDelayMs: 1 } };
    const calls: string[] = [];
    const retried = farm(new Map(), {}, ['sc-1', 'sc-2'], { batchBridges: true });
    const drivers = new RecordingDrivers().failWhen((line) => (line === 'batch-item bridge/sc-2' ? new Error('batch line failed') : undefined));
    const report = await executePlan(await planOf(retried), { ...options, handlers: retried, drivers, onLastHostCall: () => calls.push('retried') });
    expect(report.converged).toBe(true);
    expect(drivers.log[drivers.log.length - 1]).toBe('create bridge/sc-2');

    // Containers wait for the bridge batch: the batch is not the last call, the single creates are.
    const withContainers = farm(new Map(), { 'c-1': 'sc-1' }, ['sc-1', 'sc-2'], { batchBridges: true });
    const second = await executePlan(await planOf(withContainers), {
      ...options,
      handlers: withContainers,
      drivers: new RecordingDrivers(),
      onLastHostCall: () => calls.push('containers'),
    });
    expect(second.converged).toBe(true);

    const broken = farm(new Map(), {}, ['sc-1', 'sc-2'], { batchBridges: true });
    const failing = new RecordingDrivers().failWhen((line) =>
      line.startsWith('batch') || line.startsWith('create') ? new Error('broken') : undefined,
    );
    const failed = await executePlan(await planOf(broken), {
      ...options,
      handlers: broken,
      drivers: failing,
      onLastHostCall: () => calls.push('failed'),
    });
    expect(failed.converged).toBe(false);
    expect(calls).toEqual([]);
  });

  it('never runs conflicts, skips what depends on them, and is not converged', async () => {
    const world = worldOf(seen('bridge', 'sc-1', {}, false));
    const handlers = farm(world, { 'c-1': 'sc-1' }, ['sc-1']);
    const drivers = new RecordingDrivers();
    const events: ApplyEvent[] = [];
    const report = await apply(await planOf(handlers), handlers, drivers, { events });
    expect(drivers.log).toEqual([]);
    expect(statusOf(report, 'bridge/sc-1')).toMatchObject({ status: 'conflict', attempts: 0 });
    expect(statusOf(report, 'container/c-1')).toMatchObject({ status: 'skipped', error: 'dependency bridge/sc-1 is in conflict' });
    expect(report).toMatchObject({ conflicts: 1, skipped: 1, converged: false });
    expect(events.find((e) => e.action.type === 'conflict')?.error).toBeInstanceOf(ConflictError);
  });

  it('refuses to update or delete an object sc does not own, even if a plan asks', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, {}, []);
    const foreign = seen('bridge', 'docker0', { up: true }, false);
    const plan: Plan = {
      actions: [
        { type: 'delete', ref: foreign.ref, have: foreign, patch: [], reasons: [], after: [] },
        {
          type: 'update',
          ref: ref('bridge', 'eth0'),
          want: want('bridge', 'eth0', {}),
          have: seen('bridge', 'eth0', {}, false),
          patch: [],
          reasons: [],
          after: [],
        },
      ],
      noops: [],
      summary: { add: 0, change: 1, destroy: 1, conflict: 0 },
      hasChanges: true,
      inSync: false,
    };
    const drivers = new RecordingDrivers();
    const report = await apply(plan, handlers, drivers);
    expect(drivers.log).toEqual([]);
    expect(report.results.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(report.results[0]?.error).toMatch(/refusing to delete bridge\/docker0: it was not created by sc/);
  });

  it('replaces by deleting then creating, and retries only the half that failed', async () => {
    const world = worldOf(seen('image', 'fedora', { version: 40 }));
    const handlers = { image: fakeHandler('image', world, { update: false, desired: [want('image', 'fedora', { version: 41 })] }) };
    const drivers = new RecordingDrivers().failWhen((line, attempt) =>
      line === 'create image/fedora' && attempt === 1 ? Object.assign(new Error('mirror timeout'), { retryable: true }) : undefined,
    );
    const report = await apply(await planOf(handlers), handlers, drivers);
    expect(drivers.log).toEqual(['delete image/fedora', 'create image/fedora', 'create image/fedora']);
    expect(report.results[0]).toMatchObject({ type: 'replace', status: 'ok', attempts: 2 });
    expect(world.get('image/fedora')?.spec).toEqual({ version: 41 });
  });

  it('starts nothing after the signal is aborted, and reports the rest skipped', async () => {
    const world: FakeWorld = new Map();
    const handlers = farm(world, { 'c-1': 'sc-1' }, ['sc-1']);
    const drivers = new RecordingDrivers();
    drivers.holdCalls();
    const abort = new AbortController();
    const running = apply(await planOf(handlers), handlers, drivers, { signal: abort.signal });
    await until(() => drivers.inFlight === 1);
    abort.abort();
    drivers.release();
    const report = await running;
    expect(drivers.log).toEqual(['create bridge/sc-1']);
    expect(statusOf(report, 'container/c-1')).toMatchObject({ status: 'skipped', error: expect.stringContaining('interrupted') });
    expect(report.converged).toBe(false);
  });

  it('returns an empty converged report for an empty plan, and skips a cycle instead of hanging', async () => {
    const handlers = farm(new Map(), {}, []);
    const empty = await apply(
      { actions: [], noops: [], summary: { add: 0, change: 0, destroy: 0, conflict: 0 }, hasChanges: false, inSync: true },
      handlers,
      new RecordingDrivers(),
    );
    expect(empty).toMatchObject({ results: [], converged: true });
    const a = want('bridge', 'a', {});
    const b = want('bridge', 'b', {});
    const cyclic: Plan = {
      actions: [
        { type: 'create', ref: a.ref, want: a, patch: [], reasons: [], after: [b.ref] },
        { type: 'create', ref: b.ref, want: b, patch: [], reasons: [], after: [a.ref] },
      ],
      noops: [],
      summary: { add: 2, change: 0, destroy: 0, conflict: 0 },
      hasChanges: true,
      inSync: false,
    };
    const report = await apply(cyclic, handlers, new RecordingDrivers());
    expect(report.results.map((r) => r.status)).toEqual(['skipped', 'skipped']);
  });
});
