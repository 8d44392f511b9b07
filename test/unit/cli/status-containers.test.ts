// `sc status` for containers: state from the machine kind's observation, which containers get
// probed, the probe's exact command line, and the text and JSON shapes.
import type { Model } from '../../../src/datastore/model.js';
import type { Exec, ExecOptions } from '../../../src/drivers/types.js';
import { createPingDriver } from '../../../src/drivers/ping.js';
import type { HostContext } from '../../../src/host-context.js';
import type { HostSurvey } from '../../../src/reconciler/host-pass.js';
import { planActions } from '../../../src/reconciler/planner.js';
import { detectTerminal } from '../../../src/cli/terminal.js';
import { checkExitCode, renderStatus, statusHealth, statusJson } from '../../../src/cli/views/status-view.js';
import {
  answersSummary,
  checkContainerAnswers,
  repairedContainers,
  runningContainerTargets,
  type ContainerAnswers,
} from '../../../src/reconciler/container-answers.js';
import type { ApplyReport } from '../../../src/reconciler/executor.js';

const HOST = 'h1.test';
const model: Model = {
  clusters: { test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } },
  users: { res1: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 1 }, ua: { reseller: 'res1', user_id: 1, uid: 2 } },
  containers: {
    'up.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.20' },
    'down.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.21', enabled: false },
    'gone.test': { user: 'ua', host: HOST, type: 'busybox', ip: '10.17.1.22' },
    'elsewhere.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.33.1.20' },
  },
  settings: {},
};
const host: HostContext = { name: HOST, cluster: 'test', host: { hostnet: 1, host_ip: '192.0.2.11' }, root: '/' };

const survey: HostSurvey = {
  desired: new Map(),
  observed: new Map([
    [
      'machine',
      [
        { ref: { kind: 'machine', id: 'up.test' }, spec: { state: 'running', config: 'x' }, owned: true },
        { ref: { kind: 'machine', id: 'down.test' }, spec: { state: 'stopped', config: 'x' }, owned: true },
      ],
    ],
  ]),
  plan: planActions({}, new Map(), new Map()),
};

describe('status of containers', () => {
  it('probes only running containers with an address', () => {
    expect(runningContainerTargets(model, host, survey.observed)).toEqual([{ name: 'up.test', ip: '10.17.1.20' }]);
  });

  it('gives state (running / stopped / missing), answers, owner and reseller in JSON', () => {
    const json = statusJson(host, model, survey, undefined, undefined, answers({ 'up.test': 'yes' }));
    expect(json.containers.map((c) => [c.name, c.ip, c.state, c.answers, c.answer, c.user, c.reseller])).toEqual([
      ['down.test', '10.17.1.21', 'stopped', null, null, 'ua', 'res1'],
      ['gone.test', '10.17.1.22', 'missing', null, null, 'ua', 'res1'],
      ['up.test', '10.17.1.20', 'running', true, 'yes', 'ua', 'res1'],
    ]);
  });

  it('shows the same as a table', () => {
    const text = renderStatus(host, model, survey, undefined, { ...detectTerminal(), color: false }, undefined, answers({ 'up.test': 'no' }));
    expect(text).toMatch(/NAME\s+IP\s+STATE\s+ANSWERS\s+OWNER\s+RESELLER\s+TYPE\s+ENABLED/);
    expect(text).toMatch(/up\.test\s+10\.17\.1\.20\s+running\s+no\s+ua\s+res1\s+busybox\s+yes/);
    expect(text).toMatch(/gone\.test\s+10\.17\.1\.22\s+missing\s+-\s+ua/);
  });
});

describe('the ping driver', () => {
  it('pings each address once with a short deadline: exit 0 yes, 1 no, a ping that cannot run unknown', async () => {
    const calls: { command: string; args: readonly string[]; options?: ExecOptions }[] = [];
    const exec: Exec = {
      async run(command, args, options) {
        calls.push({ command, args, options });
        const ip = args[args.length - 1];
        if (ip === '10.17.1.99') throw new Error('ping: command not found');
        return { command: [command, ...args], exitCode: ip === '10.17.1.20' ? 0 : ip === '10.17.1.22' ? 2 : 1, stdout: '', stderr: '' };
      },
    };
    const result = await createPingDriver(exec).probe([
      { name: 'a', ip: '10.17.1.20' },
      { name: 'b', ip: '10.17.1.21' },
      { name: 'c', ip: '10.17.1.99' },
      { name: 'd', ip: '10.17.1.22' },
    ]);
    expect([...result].sort()).toEqual([
      ['a', 'yes'],
      ['b', 'no'],
      ['c', 'unknown'],
      ['d', 'unknown'],
    ]);
    expect(calls[0]).toMatchObject({ command: 'ping', args: ['-n', '-q', '-c', '1', '-W', '1', '10.17.1.20'], options: { allowFailure: true } });
  });

  it('waits (bounded) only for the repaired containers that do not answer yet', async () => {
    const asked: string[] = [];
    let slowAnswersAfter = 2;
    const exec: Exec = {
      async run(command, args) {
        const ip = args[args.length - 1] as string;
        asked.push(ip);
        const yes = ip === '10.0.0.1' || (ip === '10.0.0.2' && --slowAnswersAfter <= 0);
        return { command: [command, ...args], exitCode: yes ? 0 : 1, stdout: '', stderr: '' };
      },
    };
    const targets = [
      { name: 'fine', ip: '10.0.0.1' },
      { name: 'slow', ip: '10.0.0.2' },
      { name: 'dead', ip: '10.0.0.3' },
    ];
    const result = await createPingDriver(exec).waitForAnswers(targets, new Set(['slow']), 10_000);
    expect(Object.fromEntries(result)).toEqual({ fine: 'yes', slow: 'yes', dead: 'no' });
    // dead was not repaired by this apply: asked once, not waited for.
    expect(asked.filter((ip) => ip === '10.0.0.3')).toHaveLength(1);
    expect(asked.filter((ip) => ip === '10.0.0.2')).toHaveLength(2);

    const never = await createPingDriver(exec).waitForAnswers(targets, new Set(['dead']), 600);
    expect(never.get('dead')).toBe('no');
  });
});

describe('health: in sync is not enough', () => {
  const inSync: HostSurvey = { ...survey, plan: planActions({}, new Map(), new Map()) };

  it('summarises containers not answering and unknown answers; --check exits 0, 2 or 1', () => {
    expect(statusHealth(inSync, answers({ 'up.test': 'yes' }))).toMatchObject({ healthy: true, summary: 'in sync' });
    expect(checkExitCode(statusHealth(inSync, answers({ 'up.test': 'yes' })))).toBe(0);

    const down = statusHealth(inSync, answers({ 'up.test': 'no', 'b.test': 'yes' }));
    expect(down).toMatchObject({ healthy: false, not_answering: ['up.test'], summary: 'in sync, 1 of 2 running containers not answering: up.test' });
    expect(checkExitCode(down)).toBe(2);

    const blind = statusHealth(inSync, answers({ 'up.test': 'unknown' }));
    expect(blind.summary).toBe('in sync, 1 of 1 running containers unknown (ping could not run): up.test');
    expect(checkExitCode(blind)).toBe(1);

    const text = renderStatus(host, model, inSync, undefined, { ...detectTerminal(), color: false }, undefined, answers({ 'up.test': 'no' }));
    expect(text).toContain('In sync, 1 of 1 running containers not answering: up.test.');
    expect(text).not.toContain('In sync with the datastore');
  });

  it('counts the containers an apply touched: their machine, what it depends on, what depends on it', () => {
    const desired = new Map([
      [
        'machine',
        [
          { ref: { kind: 'machine', id: 'a' }, spec: {}, dependsOn: [{ kind: 'bridge', id: 'sc-17-1' }] },
          { ref: { kind: 'machine', id: 'b' }, spec: {}, dependsOn: [{ kind: 'bridge', id: 'sc-17-2' }] },
        ],
      ],
      ['container-address', [{ ref: { kind: 'container-address', id: 'b' }, spec: {}, dependsOn: [{ kind: 'machine', id: 'b' }] }]],
    ]);
    const report = (...refs: [string, string, 'ok' | 'failed'][]): ApplyReport => ({
      results: refs.map(([kind, id, status]) => ({ ref: { kind, id }, type: 'update', status, attempts: 1, durationMs: 1 })),
      ok: 0,
      failed: 0,
      skipped: 0,
      conflicts: 0,
      converged: true,
      durationMs: 1,
    });
    expect([...repairedContainers(desired, report(['bridge', 'sc-17-1', 'ok']))]).toEqual(['a']);
    expect([...repairedContainers(desired, report(['container-address', 'b', 'ok']))]).toEqual(['b']);
    expect([...repairedContainers(desired, report(['bridge', 'sc-17-2', 'failed']))]).toEqual([]);
    expect(answersSummary(answers({ a: 'yes' }))).toBeUndefined();
  });

  it('without a ping driver nothing is claimed', async () => {
    expect(await checkContainerAnswers({} as never, [{ name: 'a', ip: '10.0.0.1' }])).toBeUndefined();
  });
});

function answers(record: Record<string, 'yes' | 'no' | 'unknown'>): ContainerAnswers {
  const names = Object.keys(record);
  return {
    answers: record,
    repaired: [],
    notAnswering: names.filter((n) => record[n] === 'no'),
    unknown: names.filter((n) => record[n] === 'unknown'),
  };
}
