// The machine and container-address handlers with a fake runtime: desired objects, what is
// compared, restarts only on a config change, and host0's convergence commands.
import type { Model } from '../../../src/datastore/model.js';
import type { MachineLaunch, MachineRecord, MachineRuntime, NspawnDriver } from '../../../src/drivers/runtime.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { containerAddressHandler, convergeCommands, parseObservation } from '../../../src/resources/container-address.js';
import { machineHandler } from '../../../src/resources/machine.js';

const model: Model = {
  clusters: { c: { 'h1.test': { hostnet: 1, host_ip: '192.0.2.11' } } },
  users: { res1: { name: 'R', reseller: 'root', reseller_id: 1, user_id: 1, uid: 1 }, ua: { name: 'A', reseller: 'res1', user_id: 2, uid: 2 } },
  containers: {
    'a.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: '10.17.2.20' },
    'b.test': { user: 'ua', host: 'h1.test', type: 'debian', ip: '10.17.2.21', enabled: false },
    'elsewhere.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.33.2.20' },
  },
  settings: { images: { busybox: { builder: 'busybox' } } },
};
const host: HostContext = { name: 'h1.test', cluster: 'c', host: { hostnet: 1, host_ip: '192.0.2.11' }, root: '/r', runtime: 'direct' };

function fakeDrivers(machines: MachineRecord[] = []) {
  const calls: string[] = [];
  const runtime: MachineRuntime = {
    kind: 'direct',
    list: async () => machines,
    start: async (l: MachineLaunch) => {
      calls.push(`start ${l.name} ${l.killSignal} ${l.env.ADDR}`);
      return { name: l.name, runtime: 'direct', state: 'running' };
    },
    stop: async (name) => void calls.push(`stop ${name}`),
    markStopped: async (name) => void calls.push(`markStopped ${name}`),
    remove: async (name) => void calls.push(`remove ${name}`),
  };
  const nspawn: NspawnDriver = {
    runtime: () => runtime,
    enter: async (m, argv, options) => {
      calls.push(`enter ${m.name} ${argv.join(' ')} ${options?.input?.trim().replace(/\n/g, '; ') ?? ''}`);
      return { command: [], exitCode: 0, stdout: '[]\n[{"ifname":"host0","flags":["BROADCAST"],"addr_info":[]}]\n', stderr: '' };
    },
  };
  const drivers = { nspawn, exec: { run: async () => Promise.reject(new Error('no exec')) }, files: { hostPath: (p: string) => p } } as unknown as Drivers;
  return { drivers, calls };
}

describe('machine handler', () => {
  it('wants this host\'s containers running, or stopped when disabled, after their files', () => {
    const desired = machineHandler.desired(model, host);
    expect(desired.map((d) => [d.ref.id, d.spec.state, d.spec.launch?.killSignal])).toEqual([
      ['a.test', 'running', 'SIGUSR2'],
      ['b.test', 'stopped', 'SIGRTMIN+3'],
    ]);
    expect(desired[0]?.dependsOn).toEqual([{ kind: 'container', id: 'a.test' }]);
    expect(desired[0]?.spec.launch?.env).toEqual({ ADDR: '10.17.2.20/24', GW: '10.17.2.1' });
  });

  it('changes the config hash only for inputs that need a restart', () => {
    const config = (m: Model) => machineHandler.desired(m, host)[0]?.spec.config;
    const base = config(model);
    const withPort: Model = { ...model, containers: { ...model.containers, 'a.test': { ...model.containers['a.test']!, mapped_ports: [{ proto: 'tcp', host_port: 8080, container_port: 80 }] } } };
    const withAlias: Model = { ...model, containers: { ...model.containers, 'a.test': { ...model.containers['a.test']!, aliases: ['www.a.test'] } } };
    const noUserns: Model = { ...model, settings: { ...model.settings, private_users: false } };
    expect(config(withPort)).not.toBe(base);
    expect(config(noUserns)).not.toBe(base);
    expect(config(withAlias)).toBe(base);
  });

  it('compares only state and config', () => {
    expect(machineHandler.normalize({ state: 'running', config: 'x', pid: 5, initPid: 6, launch: { killSignal: 'S', env: {} } })).toEqual({ state: 'running', config: 'x' });
  });

  it('starts a stale machine, restarts one with another config, stops a disabled one, records a never-started disabled one', async () => {
    const [want, disabled] = machineHandler.desired(model, host);
    const { drivers, calls } = fakeDrivers();
    await machineHandler.update(drivers, host, want!, { ref: want!.ref, spec: { state: 'stopped', config: 'old' }, owned: true });
    await machineHandler.update(drivers, host, want!, { ref: want!.ref, spec: { state: 'running', config: 'old' }, owned: true });
    await machineHandler.update(drivers, host, disabled!, { ref: disabled!.ref, spec: { state: 'running', config: 'old' }, owned: true });
    await machineHandler.create(drivers, host, disabled!);
    await machineHandler.delete(drivers, host, { ref: { kind: 'machine', id: 'gone.test' }, spec: { state: 'running', config: 'x' }, owned: true });
    expect(calls).toEqual([
      'start a.test SIGUSR2 10.17.2.20/24',
      'stop a.test',
      'start a.test SIGUSR2 10.17.2.20/24',
      'stop b.test',
      'markStopped b.test',
      'remove gone.test',
    ]);
  });

  it('observes every recorded machine as owned', async () => {
    const { drivers } = fakeDrivers([{ name: 'a.test', runtime: 'direct', state: 'stopped', config: 'c', stale: true }]);
    const observed = await machineHandler.observe(drivers, host);
    expect(observed).toEqual([{ ref: { kind: 'machine', id: 'a.test' }, spec: { state: 'stopped', config: 'c' }, owned: true, description: 'direct runtime, processes gone (stale record)' }]);
  });
});

describe('container-address handler', () => {
  it('wants an address only for enabled containers of this host', () => {
    const desired = containerAddressHandler.desired(model, host);
    expect(desired.map((d) => [d.ref.id, d.spec])).toEqual([['a.test', { addresses: ['10.17.2.20/24'], gateway: '10.17.2.1', up: true }]]);
    expect(desired[0]?.dependsOn).toEqual([{ kind: 'machine', id: 'a.test' }]);
  });

  it('parses the batch output; no host0 means nothing observed', () => {
    const out = '[{"dst":"default","gateway":"10.17.2.1","dev":"host0","flags":[]}]\n[{"ifname":"host0","flags":["UP"],"addr_info":[{"family":"inet","local":"10.17.2.20","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]\n';
    expect(parseObservation(out)).toEqual({ addresses: ['10.17.2.20/24'], gateway: '10.17.2.1', up: true });
    expect(parseObservation('[]\n')).toBeUndefined();
  });

  it('converges: removals before additions, the route after the address it needs', () => {
    const want = { addresses: ['10.17.2.20/24'], gateway: '10.17.2.1', up: true };
    expect(convergeCommands(want, { addresses: [], gateway: null, up: false })).toEqual([
      ['addr', 'replace', '10.17.2.20/24', 'dev', 'host0'],
      ['link', 'set', 'host0', 'up'],
      ['route', 'replace', 'default', 'via', '10.17.2.1', 'dev', 'host0'],
    ]);
    expect(convergeCommands({ addresses: [], gateway: null, up: true }, want)).toEqual([
      ['route', 'del', 'default'],
      ['addr', 'del', '10.17.2.20/24', 'dev', 'host0'],
    ]);
    expect(convergeCommands(want, want)).toEqual([]);
  });

  it('sets the address from the host side in the running container\'s network namespace', async () => {
    const { drivers, calls } = fakeDrivers([{ name: 'a.test', runtime: 'direct', state: 'running', pid: 10, initPid: 11 }]);
    await containerAddressHandler.create(drivers, host, containerAddressHandler.desired(model, host)[0]!);
    expect(calls).toEqual([
      'enter a.test ip -j -force -batch - route show default; addr show dev host0',
      'enter a.test ip -batch - addr replace 10.17.2.20/24 dev host0; link set host0 up; route replace default via 10.17.2.1 dev host0',
    ]);
  });

  it('refuses to set the address of a container that is not running', async () => {
    const { drivers } = fakeDrivers([]);
    await expect(containerAddressHandler.create(drivers, host, containerAddressHandler.desired(model, host)[0]!)).rejects.toThrow(/not running/);
  });
});
