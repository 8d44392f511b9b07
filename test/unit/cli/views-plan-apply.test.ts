// Golden-file tests of the plan and apply views. Regenerate after an intended change with
// UPDATE_GOLDEN=1 and review the diff of test/fixtures/golden/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderApplyEvent, renderApplyReport } from '../../../src/cli/views/apply-view.js';
import { planJson, renderPlanText } from '../../../src/cli/views/plan-view.js';
import { HostCommandError } from '../../../src/errors.js';
import type { ApplyEvent, ApplyReport } from '../../../src/reconciler/executor.js';
import { desiredState, observeHost } from '../../../src/reconciler/observe-host.js';
import { planActions, type Plan } from '../../../src/reconciler/planner.js';
import type { HandlerRegistry, PlannedAction } from '../../../src/resources/contract.js';
import { emptyModel, fakeHandler, RecordingDrivers, ref, seen, testHost, want, worldOf } from '../reconciler/fake-handler.js';

const goldenDir = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/golden');

function expectGolden(name: string, actual: string): void {
  const path = join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    if (process.env.UPDATE_GOLDEN !== '1') throw new Error(`golden file ${name} is missing; run with UPDATE_GOLDEN=1`);
    mkdirSync(goldenDir, { recursive: true });
    writeFileSync(path, actual.endsWith('\n') ? actual : `${actual}\n`);
  }
  expect(actual.replace(/\n$/, '')).toBe(readFileSync(path, 'utf8').replace(/\n$/, ''));
}

const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '');

async function examplePlan(): Promise<Plan> {
  const world = worldOf(
    seen('bridge', 'sc-17-4', { address: '10.17.4.9/24', up: false }),
    seen('bridge', 'sc-33-1', { address: '10.33.1.1/24', up: true }),
    seen('bridge', 'sc-17-5', { address: '10.17.5.1/24', up: true }, false),
    seen('bridge', 'docker0', { address: '172.17.0.1/16', up: true }, false),
    seen('container', 'old.example.com', { bridge: 'sc-33-1' }, true, 'user bob (reseller beta)'),
    seen('container', 'shop.example.com', { image: 'debian', bridge: 'sc-17-3' }),
  );
  const handlers: HandlerRegistry = {
    bridge: fakeHandler('bridge', world, {
      desired: [
        want('bridge', 'sc-17-3', { address: '10.17.3.1/24', up: true }, { description: '10.17.3.1/24 (user alice, reseller alpha)' }),
        want('bridge', 'sc-17-4', { address: '10.17.4.1/24', up: true }),
        want('bridge', 'sc-17-5', { address: '10.17.5.1/24', up: true }),
      ],
    }),
    container: fakeHandler('container', world, {
      dependsOnKinds: ['bridge'],
      canUpdate: (patch) => !patch.some((op) => op.path === '/image'),
      desired: [
        want(
          'container',
          'blog.example.com',
          { image: 'fedora', bridge: 'sc-17-3' },
          { dependsOn: [ref('bridge', 'sc-17-3')], description: 'user alice, 10.17.3.20' },
        ),
        want(
          'container',
          'shop.example.com',
          { image: 'fedora', bridge: 'sc-17-3' },
          { dependsOn: [ref('bridge', 'sc-17-3')], description: 'user alice, 10.17.3.21' },
        ),
      ],
    }),
  };
  return planActions(
    handlers,
    desiredState(handlers, emptyModel, testHost),
    await observeHost(handlers, new RecordingDrivers(), testHost, { model: emptyModel, desired: new Map() }),
  );
}

const noChanges: Plan = {
  actions: [],
  noops: [ref('bridge', 'sc-17-3')],
  summary: { add: 0, change: 0, destroy: 0, conflict: 0 },
  hasChanges: false,
  inSync: true,
};

describe('plan view', () => {
  it('renders terraform-like text grouped by kind (golden)', async () => {
    const text = renderPlanText(await examplePlan(), { color: false });
    expectGolden('plan.txt', text);
    expect(text).toMatch(/Plan: 3 to add, 1 to change, 3 to destroy\. 1 conflict\.$/);
  });

  it('renders the -o json object (golden)', async () => {
    const json = planJson(await examplePlan());
    expectGolden('plan.json', JSON.stringify(json, null, 2));
    expect(json.changes.find((c) => c.id === 'sc-17-4')).toEqual({
      action: 'update',
      kind: 'bridge',
      id: 'sc-17-4',
      reasons: [
        { path: '/address', op: 'replace', old: '10.17.4.9/24', new: '10.17.4.1/24' },
        { path: '/up', op: 'replace', old: false, new: true },
      ],
    });
    expect(json.no_changes).toBeUndefined();
  });

  it('says so plainly when nothing is pending', () => {
    expectGolden('plan-no-changes.txt', renderPlanText(noChanges, { color: false }));
    expect(planJson(noChanges)).toEqual({ changes: [], summary: { add: 0, change: 0, destroy: 0, conflict: 0 }, no_changes: true });
  });

  it('lists conflicts even when there is nothing to change', () => {
    const conflict: PlannedAction = {
      type: 'conflict',
      ref: ref('bridge', 'sc-1-1'),
      patch: [],
      reasons: [],
      after: [],
      message: 'foreign bridge sc-1-1 (not created by sc) is in the way',
    };
    const plan: Plan = { actions: [conflict], noops: [], summary: { add: 0, change: 0, destroy: 0, conflict: 1 }, hasChanges: false, inSync: false };
    expect(renderPlanText(plan, { color: false })).toBe(
      [
        'bridge',
        '  ! sc-1-1           conflict: foreign bridge sc-1-1 (not created by sc) is in the way',
        '',
        'Plan: 0 to add, 0 to change, 0 to destroy. 1 conflict.',
      ].join('\n'),
    );
    expect(planJson(plan)).not.toHaveProperty('no_changes');
    expect(planJson(plan)).toMatchObject({ changes: [{ action: 'conflict', reasons: ['foreign bridge sc-1-1 (not created by sc) is in the way'] }] });
  });

  it('colours only when asked, with the same words', async () => {
    const plan = await examplePlan();
    const plain = renderPlanText(plan, { color: false });
    const coloured = renderPlanText(plan, { color: true });
    expect(plain).not.toMatch(/\x1b\[/);
    expect(coloured).toMatch(/\x1b\[32m\+/);
    expect(stripAnsi(coloured)).toBe(plain);
  });
});

describe('apply view', () => {
  async function events(): Promise<ApplyEvent[]> {
    const plan = await examplePlan();
    const find = (id: string) => plan.actions.find((a) => a.ref.id === id) as PlannedAction;
    const failure = new HostCommandError(['ip', 'link', 'set', 'sc-17-4', 'up'], 2, 'RTNETLINK answers: Operation not permitted\nsecond line\n');
    return [
      { type: 'start', action: find('sc-17-3') },
      { type: 'done', action: find('sc-17-3'), durationMs: 42 },
      { type: 'start', action: find('sc-17-4') },
      { type: 'retry', action: find('sc-17-4'), attempt: 2, error: new Error('Dump was interrupted') },
      { type: 'failed', action: find('sc-17-4'), durationMs: 1250, error: failure },
      { type: 'skipped', action: find('blog.example.com'), error: new Error('dependency bridge/sc-17-3 failed') },
      { type: 'skipped', action: find('sc-17-5'), error: new Error('foreign bridge sc-17-5 (not created by sc) is in the way') },
      { type: 'start', action: find('shop.example.com') },
      { type: 'done', action: find('shop.example.com'), durationMs: 3000 },
      { type: 'done', action: find('sc-33-1'), durationMs: 10 },
    ];
  }

  it('prints one line per event on a TTY and only outcomes (plus retries) otherwise (golden)', async () => {
    const all = await events();
    const tty = all.map((e) => renderApplyEvent(e, { color: false, tty: true }));
    const plain = all.map((e) => renderApplyEvent(e, { color: false, tty: false })).filter(Boolean);
    expectGolden('apply-events-tty.txt', tty.join('\n'));
    expectGolden('apply-events-plain.txt', plain.join('\n'));
    expect(plain).toHaveLength(all.filter((e) => e.type !== 'start').length);
    expect(renderApplyEvent(all[0] as ApplyEvent, { color: false, tty: false })).toBe('');
    expect(stripAnsi(renderApplyEvent(all[1] as ApplyEvent, { color: true, tty: true }))).toBe(tty[1]);
  });

  const result = (
    kind: string,
    id: string,
    type: ApplyReport['results'][number]['type'],
    status: ApplyReport['results'][number]['status'],
    error?: string,
  ) => ({
    ref: ref(kind, id),
    type,
    status,
    attempts: status === 'ok' || status === 'failed' ? 1 : 0,
    durationMs: 5,
    ...(error ? { error } : {}),
  });

  it('summarises a converged apply like terraform', () => {
    const report: ApplyReport = {
      results: [
        result('bridge', 'sc-17-3', 'create', 'ok'),
        result('bridge', 'sc-17-4', 'update', 'ok'),
        result('container', 'x', 'replace', 'ok'),
        result('bridge', 'sc-9', 'delete', 'ok'),
      ],
      ok: 4,
      failed: 0,
      skipped: 0,
      conflicts: 0,
      converged: true,
      durationMs: 99,
    };
    expect(renderApplyReport(report, { color: false })).toBe('Apply complete: 2 added, 1 changed, 2 destroyed.');
  });

  it('lists what failed, was skipped or is in conflict (golden)', () => {
    const report: ApplyReport = {
      results: [
        result('bridge', 'sc-17-3', 'create', 'ok'),
        result('bridge', 'sc-17-4', 'update', 'failed', 'ip link set sc-17-4 up failed (exit 2): RTNETLINK answers: Operation not permitted\nmore'),
        result('container', 'blog.example.com', 'create', 'skipped', 'dependency bridge/sc-17-4 failed'),
        result('bridge', 'sc-17-5', 'conflict', 'conflict', 'foreign bridge sc-17-5 (not created by sc) is in the way'),
      ],
      ok: 1,
      failed: 1,
      skipped: 1,
      conflicts: 1,
      converged: false,
      durationMs: 1300,
    };
    expectGolden('apply-report-incomplete.txt', renderApplyReport(report, { color: false }));
    expect(stripAnsi(renderApplyReport(report, { color: true }))).toBe(renderApplyReport(report, { color: false }));
  });
});
