// applyHost never claims health it did not see: after the apply it asks every running container
// of this host whether it answers, waits (for settings.apply.answer_wait_seconds) only for those it
// started or repaired, and does not ask at all when the apply was interrupted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import type { Answer, PingDriver, PingTarget } from '../../../src/drivers/ping.js';
import type { HostContext } from '../../../src/host-context.js';
import { applyHost } from '../../../src/reconciler/host-pass.js';
import { fakeHandler, RecordingDrivers, seen, testHost, want, worldOf } from './fake-handler.js';

const model = (answerWait?: number): Model => ({
  clusters: {},
  users: {},
  containers: {
    'a.test': { user: 'u', host: testHost.name, type: 'busybox', ip: '10.17.1.20' },
    'b.test': { user: 'u', host: testHost.name, type: 'busybox', ip: '10.17.1.21' },
    'off.test': { user: 'u', host: testHost.name, type: 'busybox', ip: '10.17.1.22', enabled: false },
    'away.test': { user: 'u', host: 'other.example.net', type: 'busybox', ip: '10.33.1.20' },
  },
  settings: answerWait === undefined ? {} : { apply: { answer_wait_seconds: answerWait } },
});

class PingingDrivers extends RecordingDrivers {
  readonly asked: { targets: string[]; waitFor: string[]; timeoutMs: number }[] = [];
  readonly ping: PingDriver = {
    probe: async () => new Map(),
    waitForAnswers: async (targets: readonly PingTarget[], waitFor: ReadonlySet<string>, timeoutMs: number) => {
      this.asked.push({ targets: targets.map((t) => `${t.name} ${t.ip}`), waitFor: [...waitFor].sort(), timeoutMs });
      return new Map<string, Answer>(targets.map((t) => [t.name, t.name === 'b.test' ? 'no' : 'yes']));
    },
  };
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sc-answers-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function setup(answerWait?: number) {
  // a.test runs and needs an update (its machine is repaired); b.test runs and is fine.
  const world = worldOf(
    seen('machine', 'a.test', { state: 'running', v: 1 }),
    seen('machine', 'b.test', { state: 'running', v: 1 }),
    seen('machine', 'off.test', { state: 'stopped' }),
  );
  const handlers = {
    machine: fakeHandler('machine', world, {
      desired: [
        want('machine', 'a.test', { state: 'running', v: 2 }),
        want('machine', 'b.test', { state: 'running', v: 1 }),
        want('machine', 'off.test', { state: 'stopped' }),
      ],
    }),
  };
  const drivers = new PingingDrivers();
  const host: HostContext = { ...testHost, root };
  return { handlers, drivers, host, input: { model: model(answerWait), host, drivers, handlers, concurrency: 2, command: 'test' } };
}

describe('applyHost asks the containers afterwards', () => {
  it('asks every running enabled container of this host, waits only for the repaired one, and names the one not answering', async () => {
    const { input, drivers } = setup();
    const result = await applyHost(input);
    expect(result.converged).toBe(true);
    expect(drivers.log).toEqual(['update machine/a.test']);
    expect(drivers.asked).toEqual([{ targets: ['a.test 10.17.1.20', 'b.test 10.17.1.21'], waitFor: ['a.test'], timeoutMs: 20_000 }]);
    expect(result.answers).toEqual({ answers: { 'a.test': 'yes', 'b.test': 'no' }, repaired: ['a.test'], notAnswering: ['b.test'], unknown: [] });
  });

  it('waits as long as settings.apply.answer_wait_seconds says', async () => {
    const { input, drivers } = setup(3);
    await applyHost(input);
    expect(drivers.asked[0]?.timeoutMs).toBe(3_000);
  });

  it('an interrupted apply asks nothing and claims nothing', async () => {
    const { input, drivers } = setup();
    const abort = new AbortController();
    abort.abort();
    const result = await applyHost({ ...input, signal: abort.signal });
    expect(result.answers).toBeUndefined();
    expect(drivers.asked).toEqual([]);
  });
});
