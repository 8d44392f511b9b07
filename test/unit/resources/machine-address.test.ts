// The machine and container-address handlers with a fake runtime: desired objects, what is
// compared, restarts only on a config change, and host0's convergence commands.
import type { Model } from '../../../src/datastore/model.js';
import type { Host0Link, MachineLaunch, MachineRecord, MachineRuntime, NspawnDriver } from '../../../src/drivers/runtime.js';
import type { Drivers, IpLink } from '../../../src/drivers/types.js';
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

function fakeDrivers(machines: MachineRecord[] = [], host0s = new Map<string, Host0Link>(), links: IpLink[] = []) {
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
    host0Links: async (ms) => {
      calls.push(`host0 ${ms.map((m) => m.name).join(' ')}`);
      return host0s;
    },
  };
  const ip = {
    listLinks: async () => links,
    listAddresses: async () => [],
    batch: async (commands: readonly (readonly string[])[]) => void calls.push(...commands.map((c) => `ip ${c.join(' ')}`)),
  };
  const drivers = {
    nspawn,
    ip,
    exec: { run: async () => Promise.reject(new Error('no exec')) },
    files: { hostPath: (p: string) => p },
  } as unknown as Drivers;
  return { drivers, calls };
}

describe('machine handler', () => {
  it("wants this host's containers running, or stopped when disabled, after their files", () => {
    const desired = machineHandler.desired(model, host);
    expect(desired.map((d) => [d.ref.id, d.spec.state, d.spec.launch?.killSignal, d.spec.link])).toEqual([
      ['a.test', 'running', 'SIGUSR2', { master: 'sc-17-2', up: true }],
      ['b.test', 'stopped', 'SIGRTMIN+3', undefined],
    ]);
    // The bridge too: re-attaching a link waits for a bridge being recreated.
    expect(desired[0]?.dependsOn).toEqual([
      { kind: 'container', id: 'a.test' },
      { kind: 'bridge', id: 'sc-17-2' },
    ]);
    expect(desired[0]?.spec.launch?.env).toEqual({ ADDR: '10.17.2.20/24', GW: '10.17.2.1' });
  });

  it('changes the config hash only for inputs that need a restart', () => {
    const config = (m: Model) => machineHandler.desired(m, host)[0]?.spec.config;
    const base = config(model);
    const withPort: Model = {
      ...model,
      containers: {
        ...model.containers,
        'a.test': { ...model.containers['a.test']!, mapped_ports: [{ proto: 'tcp', host_port: 8080, container_port: 80 }] },
      },
    };
    const withAlias: Model = { ...model, containers: { ...model.containers, 'a.test': { ...model.containers['a.test']!, aliases: ['www.a.test'] } } };
    const noUserns: Model = { ...model, settings: { ...model.settings, private_users: false } };
    expect(config(withPort)).not.toBe(base);
    expect(config(noUserns)).not.toBe(base);
    expect(config(withAlias)).toBe(base);
  });

  it('compares state, config and, while running, the link (master and up, or why it is missing)', () => {
    const link = { master: 'sc-17-2', up: true, veth: 'vb-a.test' };
    expect(machineHandler.normalize({ state: 'running', config: 'x', pid: 5, initPid: 6, link, launch: { killSignal: 'S', env: {} } })).toEqual({
      state: 'running',
      config: 'x',
      link: { master: 'sc-17-2', up: true },
    });
    expect(
      machineHandler.normalize({ state: 'running', config: 'x', link: { master: null, up: false, missing: 'no host0 in the container' } }),
    ).toEqual({
      state: 'running',
      config: 'x',
      link: 'missing: no host0 in the container',
    });
    expect(machineHandler.normalize({ state: 'stopped', config: 'x' })).toEqual({ state: 'stopped', config: 'x' });
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
    const { drivers, calls } = fakeDrivers([{ name: 'a.test', runtime: 'direct', state: 'stopped', config: 'c', stale: true }]);
    const observed = await machineHandler.observe(drivers, host);
    expect(observed).toEqual([
      {
        ref: { kind: 'machine', id: 'a.test' },
        spec: { state: 'stopped', config: 'c', stale: true },
        owned: true,
        description: 'direct runtime, processes gone (stale record)',
      },
    ]);
    expect(calls).toEqual([]); // nothing runs: no namespace entered, no link listing
  });

  it("observes a running machine's link through host0's peer: one host0 read for all machines, one link listing", async () => {
    const machines: MachineRecord[] = [
      { name: 'a.test', runtime: 'direct', state: 'running', config: 'c', pid: 10, initPid: 11 },
      { name: 'c.test', runtime: 'direct', state: 'running', config: 'c', pid: 20, initPid: 21 },
    ];
    const host0s = new Map<string, Host0Link>([
      ['a.test', { state: 'present', ifindex: 2, peerIndex: 7, up: true }],
      ['c.test', { state: 'missing' }],
    ]);
    const links: IpLink[] = [{ ifindex: 7, ifname: 'vb-a.test', flags: ['UP'], link_index: 2, linkinfo: { info_kind: 'veth' } }];
    const { drivers, calls } = fakeDrivers(machines, host0s, links);
    const observed = await machineHandler.observe(drivers, host);
    expect(observed.map((o) => [o.ref.id, o.spec.link, o.description])).toEqual([
      ['a.test', { master: null, up: true, veth: 'vb-a.test' }, 'direct runtime, pid 10, vb-a.test on no bridge'],
      [
        'c.test',
        { master: null, up: false, missing: 'no host0 in the container' },
        'direct runtime, pid 20, link missing (no host0 in the container)',
      ],
    ]);
    expect(calls).toEqual(['host0 a.test c.test']);
  });

  it('re-attaches a detached or down link in place, without a restart', async () => {
    const [want] = machineHandler.desired(model, host);
    const { drivers, calls } = fakeDrivers();
    const have = {
      ref: want!.ref,
      spec: { state: 'running' as const, config: want!.spec.config, link: { master: null, up: false, veth: 'vb-a.test' } },
      owned: true,
    };
    expect(machineHandler.canUpdate([], want!.spec, have.spec)).toBe(true);
    await machineHandler.update(drivers, host, want!, have);
    expect(calls).toEqual(['ip link set dev vb-a.test master sc-17-2 up']);
  });

  it('a stale record (nspawn killed, its payload maybe still running) is drift even for a machine that should be stopped: it is stopped for good', async () => {
    const [, disabled] = machineHandler.desired(model, host);
    const stale = { state: 'stopped' as const, config: disabled!.spec.config, stale: true };
    expect(machineHandler.normalize(stale)).toEqual({ state: 'stale', config: disabled!.spec.config });
    expect(machineHandler.normalize(disabled!.spec)).toEqual({ state: 'stopped', config: disabled!.spec.config });
    const { drivers, calls } = fakeDrivers();
    await machineHandler.update(drivers, host, disabled!, { ref: disabled!.ref, spec: stale, owned: true });
    expect(calls).toEqual(['stop b.test']);
  });

  it('a running machine whose link is missing cannot be updated in place: it is replaced (restarted)', () => {
    const [want] = machineHandler.desired(model, host);
    const missing = { state: 'running' as const, config: want!.spec.config, link: { master: null, up: false, missing: 'no host0 in the container' } };
    expect(machineHandler.canUpdate([], want!.spec, missing)).toBe(false);
    // A stopped machine has no link to miss: starting it is an update, as before.
    expect(machineHandler.canUpdate([], want!.spec, { state: 'stopped', config: 'c' })).toBe(true);
  });
});

describe('container-address handler', () => {
  it('wants an address only for enabled containers of this host', () => {
    const desired = containerAddressHandler.desired(model, host);
    expect(desired.map((d) => [d.ref.id, d.spec])).toEqual([['a.test', { addresses: ['10.17.2.20/24'], gateway: '10.17.2.1', up: true }]]);
    expect(desired[0]?.dependsOn).toEqual([{ kind: 'machine', id: 'a.test' }]);
  });

  it('parses the batch output; no host0 means nothing observed', () => {
    const out =
      '[{"dst":"default","gateway":"10.17.2.1","dev":"host0","flags":[]}]\n[{"ifname":"host0","flags":["UP"],"addr_info":[{"family":"inet","local":"10.17.2.20","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]\n';
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

  it("sets the address from the host side in the running container's network namespace", async () => {
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
