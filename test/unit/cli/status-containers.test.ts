// `sc status` for containers: state from the machine kind's observation, which containers get
// probed, the probe's exact command line, and the text and JSON shapes.
import type { Model } from '../../../src/datastore/model.js';
import type { Exec, ExecOptions } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import type { HostSurvey } from '../../../src/reconciler/host-pass.js';
import { planActions } from '../../../src/reconciler/planner.js';
import { probeContainers } from '../../../src/cli/container-reachability.js';
import { detectTerminal } from '../../../src/cli/terminal.js';
import { probeTargets, renderStatus, statusJson } from '../../../src/cli/views/status-view.js';

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
    expect(probeTargets(host, model, survey)).toEqual([{ name: 'up.test', ip: '10.17.1.20' }]);
  });

  it('gives state (running / stopped / missing), answers, owner and reseller in JSON', () => {
    const json = statusJson(host, model, survey, undefined, undefined, new Map([['up.test', true]]));
    expect(json.containers.map((c) => [c.name, c.ip, c.state, c.answers, c.user, c.reseller])).toEqual([
      ['down.test', '10.17.1.21', 'stopped', null, 'ua', 'res1'],
      ['gone.test', '10.17.1.22', 'missing', null, 'ua', 'res1'],
      ['up.test', '10.17.1.20', 'running', true, 'ua', 'res1'],
    ]);
  });

  it('shows the same as a table', () => {
    const text = renderStatus(host, model, survey, undefined, { ...detectTerminal(), color: false }, undefined, new Map([['up.test', false]]));
    expect(text).toMatch(/NAME\s+IP\s+STATE\s+ANSWERS\s+OWNER\s+RESELLER\s+TYPE\s+ENABLED/);
    expect(text).toMatch(/up\.test\s+10\.17\.1\.20\s+running\s+no\s+ua\s+res1\s+busybox\s+yes/);
    expect(text).toMatch(/gone\.test\s+10\.17\.1\.22\s+missing\s+-\s+ua/);
  });
});

describe('probeContainers', () => {
  it('pings each address once with a short deadline and reads the exit code', async () => {
    const calls: { command: string; args: readonly string[]; options?: ExecOptions }[] = [];
    const exec: Exec = {
      async run(command, args, options) {
        calls.push({ command, args, options });
        const ip = args[args.length - 1];
        if (ip === '10.17.1.99') throw new Error('ping: command not found');
        return { command: [command, ...args], exitCode: ip === '10.17.1.20' ? 0 : 1, stdout: '', stderr: '' };
      },
    };
    const answers = await probeContainers(exec, [
      { name: 'a', ip: '10.17.1.20' },
      { name: 'b', ip: '10.17.1.21' },
      { name: 'c', ip: '10.17.1.99' },
    ]);
    expect([...answers].sort()).toEqual([
      ['a', true],
      ['b', false],
      ['c', false],
    ]);
    expect(calls[0]).toMatchObject({ command: 'ping', args: ['-n', '-q', '-c', '1', '-W', '1', '10.17.1.20'], options: { allowFailure: true } });
  });
});
