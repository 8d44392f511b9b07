// The bridge handler with plain data in and out: desired bridges from a model, observation of real
// `ip -json` fixtures, ownership, conflicts, and the exact ip commands of each action.
import type { Model } from '../../../src/datastore/model.js';
import type { IpLink } from '../../../src/drivers/types.js';
import { ConflictError, UserError } from '../../../src/errors.js';
import type { HostContext } from '../../../src/host-context.js';
import { bridgeHandler, prefixesOverlap, type BridgeSpec } from '../../../src/resources/bridge.js';
import { SC_BRIDGE_GROUP } from '../../../src/resources/bridge-commands.js';
import type { DesiredObject, ObservedObject, PlannedAction } from '../../../src/resources/contract.js';
import { resourceHandlers } from '../../../src/resources/registry.js';
import { ipFixture, recordingDrivers } from './recording-drivers.js';

const HOST = 'web1.example.net';

function model(partial: Partial<Model> = {}): Model {
  return {
    clusters: { main: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' }, 'web2.example.net': { hostnet: 2, host_ip: '192.0.2.12' } } },
    users: {
      alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 2001 },
      alice: { reseller: 'alpha', user_id: 3, uid: 2003 },
      bob: { reseller: 'alpha', user_id: 4, uid: 2004 },
      r: { reseller: 'root', user_id: 2, uid: 2005 },
      carol: { reseller: 'alpha', user_id: 5, uid: 2006 },
    },
    containers: {
      'a1.example.com': { user: 'alice', host: HOST, type: 'busybox', ip: '10.17.3.20' },
      'a2.example.com': { user: 'alice', host: HOST, type: 'busybox', ip: '10.17.3.21', enabled: false },
      'b1.example.com': { user: 'bob', host: 'web2.example.net', type: 'busybox', ip: '10.33.4.20' },
      'r1.example.com': { user: 'r', host: HOST, type: 'busybox', ip: '10.16.2.20' },
      'c1.example.com': { user: 'carol', host: HOST, type: 'busybox', ip: '10.17.5.20', bridge: 'br-custom' },
      'root1.example.com': { user: 'root', host: HOST, type: 'busybox', ip: '10.16.0.20' },
    },
    settings: {},
    ...partial,
  };
}

const host = (m: Model, name = HOST): HostContext => {
  const h = m.clusters.main?.[name];
  if (!h) throw new Error('no host');
  return { name, cluster: 'main', host: h, root: '/' };
};

const want = (id: string, addresses: string[], alias = 'srvctl:bridge user=x'): DesiredObject<BridgeSpec> => ({
  ref: { kind: 'bridge', id },
  spec: { addresses, up: true, alias },
});

describe('bridge desired()', () => {
  it('gives one bridge per user with a container on this host, named and addressed by the plan', () => {
    const m = model();
    const bridges = bridgeHandler.desired(m, host(m));
    expect(bridges).toEqual([
      {
        ref: { kind: 'bridge', id: 'sc-17-3' },
        spec: { addresses: ['10.17.3.1/24'], up: true, alias: 'srvctl:bridge user=alice' },
        description: 'user alice (reseller alpha)',
      },
      {
        ref: { kind: 'bridge', id: 'sc-16-2' },
        spec: { addresses: ['10.16.2.1/24'], up: true, alias: 'srvctl:bridge user=r' },
        description: 'user r (reseller root)',
      },
      {
        ref: { kind: 'bridge', id: 'sc-16-0' },
        spec: { addresses: ['10.16.0.1/24'], up: true, alias: 'srvctl:bridge user=root' },
        description: 'user root',
      },
    ]);
  });

  it('follows the host: the same users on hostnet 2 get 10.33.x', () => {
    const m = model();
    expect(bridgeHandler.desired(m, host(m, 'web2.example.net')).map((b) => [b.ref.id, b.spec.addresses[0]])).toEqual([['sc-33-4', '10.33.4.1/24']]);
  });

  it('refuses a user the plan cannot place, naming the fix', () => {
    const m = model({ users: { ...model().users, alice: { reseller: 'alpha' } } });
    expect(() => bridgeHandler.desired(m, host(m))).toThrow(UserError);
    expect(() => bridgeHandler.desired(m, host(m))).toThrow(/alice.*sc allocate/);
  });
});

describe('bridge observe()', () => {
  it('reads the host with one link dump and one address dump', async () => {
    const drivers = recordingDrivers();
    await bridgeHandler.observe(drivers);
    expect(drivers.reads.sort()).toEqual(['addresses', 'links']);
    expect(drivers.batches).toEqual([]);
  });

  it('sees sc bridges as owned, with sorted IPv4 addresses and admin state', async () => {
    const observed = await bridgeHandler.observe(recordingDrivers());
    const byId = new Map(observed.map((o) => [o.ref.id, o]));
    expect(byId.get('sc-17-3')).toMatchObject({
      owned: true,
      spec: { addresses: ['10.17.3.1/24'], up: true, linkKind: 'bridge' },
      description: 'user alice',
    });
    expect(byId.get('sc-17-4')).toMatchObject({ owned: true, spec: { addresses: ['10.17.4.9/24'], up: false } });
    for (const o of observed) expect(o.spec.addresses.every((a) => !a.includes(':'))).toBe(true);
  });

  it('owns a bridge an interrupted run created (sc group and name, no alias yet)', async () => {
    const observed = await bridgeHandler.observe(recordingDrivers());
    expect(observed.find((o) => o.ref.id === 'sc-16-1')).toMatchObject({
      owned: true,
      spec: { addresses: [], up: false },
      description: 'unfinished (no alias yet)',
    });
  });

  it('keeps foreign bridges and foreign links in the way, never owned; ignores the rest', async () => {
    const observed = await bridgeHandler.observe(recordingDrivers());
    const foreign = observed.filter((o) => !o.owned).map((o) => [o.ref.id, o.spec.linkKind, o.spec.addresses]);
    expect(foreign).toEqual([
      ['br-foreign', 'bridge', ['192.168.50.1/24']],
      ['fx0', 'veth', ['10.17.3.77/24']],
      ['sc-17-5', 'veth', []],
    ]);
    expect(observed.map((o) => o.ref.id)).not.toEqual(expect.arrayContaining(['lo', 'veth-a', 'fx1']));
  });

  it.each([
    ['a foreign alias, even in sc group', { ifalias: 'made by hand' }],
    ['sc group but not an sc bridge name', { ifname: 'br-x' }],
    ['an sc name without alias outside sc group', { group: 'default' }],
  ])('does not own a bridge with %s', async (_what, change: Partial<IpLink>) => {
    const links = ipFixture<IpLink>('link-show-details.json').map((l) => (l.ifname === 'sc-16-1' ? { ...l, ...change } : l));
    const observed = await bridgeHandler.observe(recordingDrivers({ links }));
    const target = observed.find((o) => o.ref.id === (change.ifname ?? 'sc-16-1'));
    expect(target?.owned).toBe(false);
  });

  it('normalizes to the fields sc sets only, so foreign markers never make a diff', async () => {
    const observed = await bridgeHandler.observe(recordingDrivers());
    const sc173 = observed.find((o) => o.ref.id === 'sc-17-3');
    const m = model();
    const desired = bridgeHandler.desired(m, host(m)).find((d) => d.ref.id === 'sc-17-3');
    expect(sc173 && bridgeHandler.normalize(sc173.spec)).toEqual(desired && bridgeHandler.normalize(desired.spec));
    expect(bridgeHandler.normalize({ addresses: ['10.9.0.1/24', '10.10.0.1/24'], up: true, linkKind: 'dummy', alias: 'x' })).toEqual({
      addresses: ['10.9.0.1/24', '10.10.0.1/24'],
      up: true,
    });
  });
});

describe('bridge conflict()', () => {
  let observed: ObservedObject<BridgeSpec>[];
  beforeAll(async () => {
    observed = await bridgeHandler.observe(recordingDrivers());
  });

  it('reports a foreign link holding an address inside the desired /24', () => {
    expect(bridgeHandler.conflict(want('sc-17-3', ['10.17.3.1/24']), observed)).toBe(
      'foreign veth link fx0 holds 10.17.3.77/24, which overlaps 10.17.3.0/24 of this bridge; remove that address',
    );
  });

  it('reports a foreign link with the desired name', () => {
    expect(bridgeHandler.conflict(want('sc-17-5', ['10.17.5.1/24']), observed)).toMatch(/^foreign veth link sc-17-5 \(not created by sc/);
  });

  it('is quiet when nothing foreign is in the way (foreign bridges elsewhere, sc bridges anywhere)', () => {
    expect(bridgeHandler.conflict(want('sc-17-9', ['10.17.9.1/24']), observed)).toBeUndefined();
    // sc-17-4 is sc's own, tampered into another /24: an update fixes it, no conflict.
    expect(bridgeHandler.conflict(want('sc-17-8', ['10.17.4.1/24']), observed)).toBeUndefined();
  });

  it('sees wider foreign prefixes that cover the /24', () => {
    const wide: ObservedObject<BridgeSpec> = {
      ref: { kind: 'bridge', id: 'eth1' },
      owned: false,
      spec: { addresses: ['10.17.0.5/16'], up: true, linkKind: 'veth' },
    };
    expect(bridgeHandler.conflict(want('sc-17-9', ['10.17.9.1/24']), [wide])).toContain('eth1 holds 10.17.0.5/16');
  });

  it('prefixesOverlap', () => {
    expect(prefixesOverlap('10.17.3.77/24', '10.17.3.1/24')).toBe(true);
    expect(prefixesOverlap('10.17.3.1/24', '10.0.0.0/8')).toBe(true);
    expect(prefixesOverlap('10.17.4.1/24', '10.17.3.1/24')).toBe(false);
    expect(prefixesOverlap('fe80::1/64', '10.17.3.1/24')).toBe(false);
    expect(prefixesOverlap('0.0.0.0/0', '10.17.3.1/24')).toBe(true);
    expect(prefixesOverlap('10.17.3.255/32', '10.17.3.1/24')).toBe(true);
    expect(prefixesOverlap('10.17.2.255/32', '10.17.3.1/24')).toBe(false);
    expect(prefixesOverlap('10.16.0.0/12', '10.31.255.1/24')).toBe(true);
    expect(prefixesOverlap('10.16.0.0/12', '10.32.0.1/24')).toBe(false);
    expect(prefixesOverlap('10.17.300.1/24', '10.17.3.1/24')).toBe(false);
  });
});

describe('bridge actions', () => {
  const alice = want('sc-17-3', ['10.17.3.1/24'], 'srvctl:bridge user=alice');
  const h = host(model());
  const owned = (id: string, spec: Partial<BridgeSpec>): ObservedObject<BridgeSpec> => ({
    ref: { kind: 'bridge', id },
    owned: true,
    spec: { addresses: [], up: false, linkKind: 'bridge', ...spec },
  });

  it('create: adds the bridge in sc group, then marks, addresses and raises it', async () => {
    const drivers = recordingDrivers({ links: [], addresses: [] });
    await bridgeHandler.create(drivers, h, alice);
    expect(drivers.batches).toEqual([
      [['link', 'add', 'name', 'sc-17-3', 'group', String(SC_BRIDGE_GROUP), 'type', 'bridge']],
      [
        ['link', 'set', 'dev', 'sc-17-3', 'alias', 'srvctl:bridge user=alice'],
        ['addr', 'add', '10.17.3.1/24', 'broadcast', '+', 'dev', 'sc-17-3'],
        ['link', 'set', 'dev', 'sc-17-3', 'up'],
      ],
    ]);
  });

  it('create: finishes a bridge of its own that already exists (a batch line failed after link add)', async () => {
    const drivers = recordingDrivers({ failing: { 'link add name sc-16-1 group 23636 type bridge': 'RTNETLINK answers: File exists' } });
    await bridgeHandler.create(drivers, h, want('sc-16-1', ['10.16.1.1/24'], 'srvctl:bridge user=q'));
    expect(drivers.batches[1]).toEqual([
      ['link', 'set', 'dev', 'sc-16-1', 'alias', 'srvctl:bridge user=q'],
      ['addr', 'add', '10.16.1.1/24', 'broadcast', '+', 'dev', 'sc-16-1'],
      ['link', 'set', 'dev', 'sc-16-1', 'up'],
    ]);
  });

  it('create: leaves a foreign link that took the name alone', async () => {
    const drivers = recordingDrivers({ failing: { 'link add name sc-17-5 group 23636 type bridge': 'RTNETLINK answers: File exists' } });
    await expect(bridgeHandler.create(drivers, h, want('sc-17-5', ['10.17.5.1/24']))).rejects.toThrow(ConflictError);
    expect(drivers.batches).toHaveLength(1);
  });

  it('update: removes wrong addresses before adding the right one, and raises the link', async () => {
    const drivers = recordingDrivers();
    const have = owned('sc-17-3', { addresses: ['10.17.3.9/24'], up: false, alias: 'srvctl:bridge user=alice' });
    await bridgeHandler.update(drivers, h, alice, have);
    expect(drivers.batches).toEqual([
      [
        ['addr', 'del', '10.17.3.9/24', 'dev', 'sc-17-3'],
        ['addr', 'add', '10.17.3.1/24', 'broadcast', '+', 'dev', 'sc-17-3'],
        ['link', 'set', 'dev', 'sc-17-3', 'up'],
      ],
    ]);
  });

  it('update: marks an unfinished bridge', async () => {
    const drivers = recordingDrivers();
    await bridgeHandler.update(drivers, h, alice, owned('sc-17-3', {}));
    expect(drivers.batches[0]?.[0]).toEqual(['link', 'set', 'dev', 'sc-17-3', 'alias', 'srvctl:bridge user=alice']);
  });

  it('delete: one link del', async () => {
    const drivers = recordingDrivers();
    await bridgeHandler.delete(drivers, h, owned('sc-17-4', {}));
    expect(drivers.batches).toEqual([[['link', 'del', 'dev', 'sc-17-4']]]);
  });

  it('delete: a bridge that is already gone is fine', async () => {
    const drivers = recordingDrivers({ failing: { 'link del dev sc-17-4': 'Cannot find device "sc-17-4"' } });
    await expect(bridgeHandler.delete(drivers, h, owned('sc-17-4', {}))).resolves.toBeUndefined();
    const other = recordingDrivers({ failing: { 'link del dev sc-17-4': 'RTNETLINK answers: Operation not permitted' } });
    await expect(bridgeHandler.delete(other, h, owned('sc-17-4', {}))).rejects.toThrow(/Operation not permitted/);
  });

  it('never updates or deletes a link it does not own', async () => {
    const drivers = recordingDrivers();
    const foreign: ObservedObject<BridgeSpec> = { ...owned('br-foreign', {}), owned: false };
    await expect(bridgeHandler.delete(drivers, h, foreign)).rejects.toThrow(ConflictError);
    await expect(bridgeHandler.update(drivers, h, want('br-foreign', []), foreign)).rejects.toThrow(ConflictError);
    expect(drivers.batches).toEqual([]);
  });

  describe('applyBatch', () => {
    const action = (type: PlannedAction['type'], w?: DesiredObject<BridgeSpec>, have?: ObservedObject<BridgeSpec>): PlannedAction<BridgeSpec> => ({
      type,
      ref: (w ?? have)!.ref,
      want: w,
      have,
      patch: [],
      reasons: [],
      after: [],
    });
    const actions = [
      action('delete', undefined, owned('sc-33-1', { addresses: ['10.33.1.1/24'], up: true })),
      action(
        'update',
        want('sc-17-4', ['10.17.4.1/24'], 'srvctl:bridge user=bob'),
        owned('sc-17-4', { addresses: ['10.17.4.9/24'], up: true, alias: 'srvctl:bridge user=bob' }),
      ),
      action('create', want('sc-17-6', ['10.17.6.1/24'], 'srvctl:bridge user=f')),
      action('create', want('sc-17-7', ['10.17.7.1/24'], 'srvctl:bridge user=g')),
    ];

    it('runs deletes, updates and link adds in one batch, then configures the new bridges in a second', async () => {
      const drivers = recordingDrivers();
      const outcome = await bridgeHandler.applyBatch(drivers, h, actions);
      expect(outcome.failed.size).toBe(0);
      expect(drivers.batches.map((b) => b.map((c) => c.join(' ')))).toEqual([
        [
          'link del dev sc-33-1',
          'addr del 10.17.4.9/24 dev sc-17-4',
          'addr add 10.17.4.1/24 broadcast + dev sc-17-4',
          'link add name sc-17-6 group 23636 type bridge',
          'link add name sc-17-7 group 23636 type bridge',
        ],
        [
          'link set dev sc-17-6 alias srvctl:bridge user=f',
          'addr add 10.17.6.1/24 broadcast + dev sc-17-6',
          'link set dev sc-17-6 up',
          'link set dev sc-17-7 alias srvctl:bridge user=g',
          'addr add 10.17.7.1/24 broadcast + dev sc-17-7',
          'link set dev sc-17-7 up',
        ],
      ]);
    });

    it('reports exactly the objects whose lines failed, and never configures a bridge whose add failed', async () => {
      const drivers = recordingDrivers({
        failing: {
          'link add name sc-17-6 group 23636 type bridge': 'RTNETLINK answers: File exists',
          'addr add 10.17.7.1/24 broadcast + dev sc-17-7': 'Error: ipv4: Address already assigned.',
          'addr del 10.17.4.9/24 dev sc-17-4': 'Error: ipv4: Address not found.',
        },
      });
      const outcome = await bridgeHandler.applyBatch(drivers, h, actions);
      expect([...outcome.failed].sort()).toEqual(['bridge/sc-17-4', 'bridge/sc-17-6', 'bridge/sc-17-7']);
      expect(drivers.batches[1]?.some((c) => c.includes('sc-17-6'))).toBe(false);
    });

    it('counts every object failed when the batch fails without line numbers', async () => {
      const drivers = recordingDrivers();
      drivers.ip.batch = () => Promise.reject(new Error('ip: timed out'));
      const outcome = await bridgeHandler.applyBatch(drivers, h, actions);
      expect(outcome.failed.size).toBe(4);
    });
  });
});

describe('registry', () => {
  it('maps the bridge kind to its handler', () => {
    expect(resourceHandlers.bridge).toBe(bridgeHandler);
    expect(resourceHandlers.bridge.kind).toBe('bridge');
  });
});
