// The port-map handler with plain data: desired table from a model, the exact nft script, reading
// real `nft -j` output (in sync and tampered with) back into a spec, and the commands of each action.
import { readFileSync } from 'node:fs';
import type { Model } from '../../../src/datastore/model.js';
import type { Drivers, Exec, ExecOptions, ExecResult } from '../../../src/drivers/types.js';
import { parseNftJson } from '../../../src/drivers/nft.js';
import type { HostContext } from '../../../src/host-context.js';
import { planActions } from '../../../src/reconciler/planner.js';
import type { DesiredObject, ObservedObject } from '../../../src/resources/contract.js';
import { portMapHandler, portMapSpecOf, renderPortMapRemoval, renderPortMapRuleset, type PortMapSpec } from '../../../src/resources/port-map.js';
import { resourceHandlers } from '../../../src/resources/registry.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';

const HOST = 'web1.example.net';
const fixture = (name: string) => parseNftJson(['nft'], readFileSync(new URL(`../../fixtures/nft/${name}`, import.meta.url), 'utf8'));

function model(partial: Partial<Model> = {}): Model {
  return {
    clusters: {
      main: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11', interface: 'eth0' }, 'web2.example.net': { hostnet: 2, host_ip: '192.0.2.12' } },
    },
    users: { alice: { reseller: 'root', user_id: 1, uid: 2001 }, bob: { reseller: 'root', user_id: 2, uid: 2002 } },
    containers: {
      'a1.example.com': {
        user: 'alice',
        host: HOST,
        type: 'busybox',
        ip: '10.17.1.20',
        mapped_ports: [
          { proto: 'tcp', host_port: 8080, container_port: 80 },
          { proto: 'udp', host_port: 5353, container_port: 53 },
        ],
      },
      'a2.example.com': {
        user: 'alice',
        host: HOST,
        type: 'busybox',
        ip: '10.17.1.21',
        mapped_ports: [{ proto: 'tcp', host_port: 2222, container_port: 22 }],
      },
      'off.example.com': {
        user: 'alice',
        host: HOST,
        type: 'busybox',
        ip: '10.17.1.22',
        enabled: false,
        mapped_ports: [{ proto: 'tcp', host_port: 9000, container_port: 80 }],
      },
      'noip.example.com': { user: 'bob', host: HOST, type: 'busybox', mapped_ports: [{ proto: 'tcp', host_port: 9001, container_port: 80 }] },
      'b1.example.com': {
        user: 'bob',
        host: 'web2.example.net',
        type: 'busybox',
        ip: '10.33.2.20',
        mapped_ports: [{ proto: 'tcp', host_port: 9002, container_port: 80 }],
      },
    },
    settings: {},
    ...partial,
  };
}

const hostOf = (m: Model, name = HOST): HostContext => {
  const h = m.clusters.main?.[name];
  if (!h) throw new Error('no host');
  return { name, cluster: 'main', host: h, root: '/' };
};

/** The fixtures were captured from a real `nft -f` of exactly this spec (see list-table-srvctl.json). */
const FIXTURE_SPEC: PortMapSpec = {
  tcp: [
    [2222, '10.17.1.21', 22],
    [8080, '10.17.1.20', 80],
  ],
  udp: [[5353, '10.17.1.20', 53]],
  masquerade: ['ip saddr 10.16.0.0/12 oifname "eth0"'],
  dnat: ['output tcp', 'output udp', 'prerouting tcp', 'prerouting udp'],
  other: [],
};

describe('port-map desired()', () => {
  it('maps the ports of this host’s enabled containers with an address, sorted, plus masquerade out of the uplink', () => {
    const m = model();
    const [table, ...rest] = portMapHandler.desired(m, hostOf(m));
    expect(rest).toEqual([]);
    expect(table?.ref).toEqual({ kind: 'port-map', id: 'srvctl' });
    expect(table?.spec).toEqual(FIXTURE_SPEC);
    expect(table?.description).toContain('2 tcp, 1 udp');
  });

  it('without an uplink interface masquerades what leaves the farm (not 10/8)', () => {
    const m = model();
    const [table] = portMapHandler.desired(m, hostOf(m, 'web2.example.net'));
    expect(table?.spec.masquerade).toEqual(['ip saddr 10.32.0.0/12 ip daddr != 10.0.0.0/8']);
    expect(table?.spec.tcp).toEqual([[9002, '10.33.2.20', 80]]);
  });

  it('wants no table on a host without enabled containers', () => {
    const m = model({ containers: { 'off.example.com': { user: 'alice', host: HOST, type: 'busybox', ip: '10.17.1.22', enabled: false } } });
    expect(portMapHandler.desired(m, hostOf(m))).toEqual([]);
  });

  it('is registered under its kind', () => {
    expect(resourceHandlers['port-map']).toBe(portMapHandler);
  });
});

describe('renderPortMapRuleset', () => {
  const script = renderPortMapRuleset(FIXTURE_SPEC);

  it('starts by creating and deleting the table, so one `nft -f` replaces it atomically', () => {
    expect(script.split('\n').slice(0, 3)).toEqual(['table ip srvctl', 'delete table ip srvctl', 'table ip srvctl {']);
  });

  it('names no table but its own', () => {
    const tables = [...script.matchAll(/\btable\s+(\S+)\s+(\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(new Set(tables)).toEqual(new Set(['ip srvctl']));
    expect(renderPortMapRemoval()).toBe('table ip srvctl\ndelete table ip srvctl\n');
  });

  it('holds the map elements, DNAT in prerouting and output for tcp and udp, and the masquerade', () => {
    expect(script).toContain(
      'map tcp_ports { type inet_service : ipv4_addr . inet_service; elements = { 2222 : 10.17.1.21 . 22, 8080 : 10.17.1.20 . 80 } }',
    );
    expect(script).toContain('map udp_ports { type inet_service : ipv4_addr . inet_service; elements = { 5353 : 10.17.1.20 . 53 } }');
    expect(script.match(/fib daddr type local dnat ip addr \. port to tcp dport map @tcp_ports/g)).toHaveLength(2);
    expect(script.match(/fib daddr type local dnat ip addr \. port to udp dport map @udp_ports/g)).toHaveLength(2);
    expect(script).toContain('    ip saddr 10.16.0.0/12 oifname "eth0" masquerade\n');
  });

  it('leaves out `elements` of an empty map (nft rejects `elements = { }`)', () => {
    expect(renderPortMapRuleset({ ...FIXTURE_SPEC, udp: [] })).toContain('map udp_ports { type inet_service : ipv4_addr . inet_service; }');
  });
});

describe('port-map observation', () => {
  it('reads a table sc loaded back into exactly the spec it was loaded from', () => {
    expect(portMapSpecOf(fixture('list-table-srvctl.json'))).toEqual(FIXTURE_SPEC);
  });

  it('reads the same table listed by nft 1.1 (Debian 13), which writes concatenated types as arrays', () => {
    // Captured from Debian 13's nft 1.1.3 after `nft -f` of renderPortMapRuleset(FIXTURE_SPEC).
    const raw = JSON.parse(readFileSync(new URL('../../fixtures/nft/list-table-srvctl-nft1.1.json', import.meta.url), 'utf8')) as {
      nftables: { map?: { map: unknown } }[];
    };
    expect(raw.nftables.find((o) => o.map)?.map?.map).toEqual(['ipv4_addr', 'inet_service']);
    expect(portMapSpecOf(fixture('list-table-srvctl-nft1.1.json'))).toEqual(FIXTURE_SPEC);
  });

  it('names what was changed by hand: a lost element, an added one, a lost DNAT rule, a foreign rule and chain', () => {
    const spec = portMapSpecOf(fixture('list-table-srvctl-tampered.json'));
    expect(spec.tcp).toEqual([[8080, '10.17.1.20', 80]]);
    expect(spec.udp).toEqual([
      [5353, '10.17.1.20', 53],
      [5354, '10.17.1.99', 54],
    ]);
    expect(spec.dnat).toEqual(['output tcp', 'prerouting tcp', 'prerouting udp']);
    expect(spec.masquerade).toEqual(['ip saddr 10.16.0.0/12 oifname "eth0"']);
    expect(spec.other).toEqual(['chain extra (filter hook forward priority 0)', 'rule in postrouting: ip saddr 192.168.9.0/24 {"accept":null}']);
  });

  it('plans an update naming those fields, and nothing for the untouched table', () => {
    const want: DesiredObject<PortMapSpec> = { ref: { kind: 'port-map', id: 'srvctl' }, spec: FIXTURE_SPEC };
    const observed = (file: string): ObservedObject<PortMapSpec> => ({ ref: want.ref, spec: portMapSpecOf(fixture(file)), owned: true });
    const handlers = { 'port-map': portMapHandler } as const;
    const inSync = planActions(handlers, new Map([['port-map', [want]]]), new Map([['port-map', [observed('list-table-srvctl.json')]]]));
    expect(inSync.actions.filter((a) => a.type !== 'noop')).toEqual([]);
    const drifted = planActions(handlers, new Map([['port-map', [want]]]), new Map([['port-map', [observed('list-table-srvctl-tampered.json')]]]));
    const action = drifted.actions.find((a) => a.ref.kind === 'port-map');
    expect(action?.type).toBe('update');
    expect(new Set(action?.reasons.map((r) => r.path.split('/')[1]))).toEqual(new Set(['tcp', 'udp', 'dnat', 'other']));
  });
});

describe('port-map actions', () => {
  function recordingExec(results: Partial<ExecResult>[] = []): Drivers & { calls: { args: string[]; options?: ExecOptions }[] } {
    const calls: { args: string[]; options?: ExecOptions }[] = [];
    const exec: Exec = {
      async run(command, args, options) {
        calls.push({ args: [command, ...args], options });
        return { command: [command, ...args], exitCode: 0, stdout: '', stderr: '', ...(results.shift() ?? {}) };
      },
    };
    return {
      calls,
      ...baseDrivers(exec, createFilesDriver('/')),
      ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
    };
  }
  const m = model();
  const host = hostOf(m);
  const [want] = portMapHandler.desired(m, host);

  it('create and update load the whole table with one `nft -f -`', async () => {
    const drivers = recordingExec();
    if (!want) throw new Error('no table');
    await portMapHandler.create(drivers, host, want);
    await portMapHandler.update(drivers, host, want);
    expect(drivers.calls.map((c) => c.args)).toEqual([
      ['nft', '-f', '-'],
      ['nft', '-f', '-'],
    ]);
    // Both send this host's whole table: the desired elements, replacing whatever table is there.
    for (const call of drivers.calls) {
      const input = String(call.options?.input);
      expect(input.startsWith('table ip srvctl\ndelete table ip srvctl\n')).toBe(true);
      expect(input).toContain('elements = { 2222 : 10.17.1.21 . 22, 8080 : 10.17.1.20 . 80 }');
      expect(input).toContain('elements = { 5353 : 10.17.1.20 . 53 }');
    }
  });

  it('delete sends one script that declares the table before deleting it, so it needs no table to be there', async () => {
    // (That nft really accepts it on a namespace without the table: test/integration/port-map.test.ts.)
    const drivers = recordingExec();
    await portMapHandler.delete(drivers);
    expect(drivers.calls).toEqual([
      { args: ['nft', '-f', '-'], options: expect.objectContaining({ input: 'table ip srvctl\ndelete table ip srvctl\n' }) },
    ]);
  });

  it('observes nothing when the table is absent, and the table as sc’s when present', async () => {
    const absent = recordingExec([{ exitCode: 1, stderr: 'Error: No such file or directory\nlist table ip srvctl\n' }]);
    await expect(portMapHandler.observe(absent)).resolves.toEqual([]);
    expect(absent.calls.map((c) => c.args)).toEqual([['nft', '-j', 'list', 'table', 'ip', 'srvctl']]);
    const present = recordingExec([{ stdout: readFileSync(new URL('../../fixtures/nft/list-table-srvctl.json', import.meta.url), 'utf8') }]);
    const [table] = await portMapHandler.observe(present);
    expect(table).toMatchObject({ ref: { kind: 'port-map', id: 'srvctl' }, owned: true, spec: FIXTURE_SPEC });
  });
});
