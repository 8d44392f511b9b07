// The bridge handler and the real drivers against a real kernel, without the CLI: converge from
// empty, repair drift, survive an interrupted create, and never touch a foreign link.
import jsonpatch from 'fast-json-patch';
import { createDrivers } from '../../src/drivers/create-drivers.js';
import { IpBatchError } from '../../src/drivers/ip-batch.js';
import type { Drivers, IpAddrEntry, IpLink } from '../../src/drivers/types.js';
import { ConflictError } from '../../src/errors.js';
import type { HostContext } from '../../src/host-context.js';
import { bridgeHandler, type BridgeSpec } from '../../src/resources/bridge.js';
import { SC_BRIDGE_GROUP } from '../../src/resources/bridge-commands.js';
import type { DesiredObject, ObservedObject, PlannedAction } from '../../src/resources/contract.js';
import { asModel, generateDatastore } from './generated-datastore.js';
import { withSandbox, type Sandbox } from './sandbox.js';

const HOST = 'web1.example.net';

/** The few planner rules this test needs, so it depends on nothing but the handler. */
function planBridges(desired: DesiredObject<BridgeSpec>[], observed: ObservedObject<BridgeSpec>[]): PlannedAction<BridgeSpec>[] {
  const byId = new Map(observed.map((o) => [o.ref.id, o]));
  const actions: PlannedAction<BridgeSpec>[] = [];
  const base = { patch: [], reasons: [], after: [] };
  for (const want of desired) {
    const have = byId.get(want.ref.id);
    const conflict = bridgeHandler.conflict(want, observed);
    if ((have && !have.owned) || conflict) actions.push({ type: 'conflict', ref: want.ref, want, have, ...base, message: conflict });
    else if (!have) actions.push({ type: 'create', ref: want.ref, want, ...base });
    else if (jsonpatch.compare(bridgeHandler.normalize(have.spec), bridgeHandler.normalize(want.spec)).length > 0) {
      actions.push({ type: 'update', ref: want.ref, want, have, ...base });
    }
  }
  const wanted = new Set(desired.map((d) => d.ref.id));
  for (const have of observed) if (have.owned && !wanted.has(have.ref.id)) actions.push({ type: 'delete', ref: have.ref, have, ...base });
  return actions;
}

function setup(sandbox: Sandbox, resellers = 2, usersPerReseller = 5) {
  const model = asModel(generateDatastore({ host: HOST, hostnet: 1, resellers, usersPerReseller }));
  const clusterHost = model.clusters.test?.[HOST];
  if (!clusterHost) throw new Error('generated datastore lacks the host');
  const host: HostContext = { name: HOST, cluster: 'test', host: clusterHost, root: sandbox.root, netns: sandbox.netns };
  const drivers: Drivers = createDrivers(host);
  const desired = bridgeHandler.desired(model, host);
  const pass = async () => planBridges(desired, await bridgeHandler.observe(drivers));
  const apply = async (actions: PlannedAction<BridgeSpec>[]) =>
    bridgeHandler.applyBatch(
      drivers,
      host,
      actions.filter((a) => a.type !== 'conflict'),
    );
  return { model, host, drivers, desired, pass, apply };
}

const summary = (actions: PlannedAction<BridgeSpec>[]) => actions.map((a) => `${a.type} ${a.ref.id}`).sort();

async function linkState(sandbox: Sandbox, name: string) {
  const [link] = await sandbox.ipJson<IpLink[]>('-details', 'link', 'show', 'dev', name);
  const [addr] = await sandbox.ipJson<IpAddrEntry[]>('addr', 'show', 'dev', name);
  return {
    kind: link?.linkinfo?.info_kind,
    alias: link?.ifalias,
    group: link?.group,
    up: link?.flags.includes('UP'),
    addresses: (addr?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}

describe('bridge handler on a real kernel', () => {
  it('creates every desired bridge from empty, marked, addressed and up; then nothing is left to do', () =>
    withSandbox(async (sandbox) => {
      const { desired, pass, apply } = setup(sandbox);
      const first = await pass();
      expect(first).toHaveLength(10);
      expect(first.every((a) => a.type === 'create')).toBe(true);
      expect((await apply(first)).failed.size).toBe(0);

      for (const want of desired) {
        const user = /user=(\S+)/.exec(want.spec.alias ?? '')?.[1];
        expect(await linkState(sandbox, want.ref.id)).toEqual({
          kind: 'bridge',
          alias: `srvctl:bridge user=${user}`,
          group: String(SC_BRIDGE_GROUP),
          up: true,
          addresses: want.spec.addresses,
        });
      }
      expect(desired.map((d) => d.ref.id)).toContain('sc-17-1');
      expect(await linkState(sandbox, 'sc-18-5')).toMatchObject({ addresses: ['10.18.5.1/24'] });
      expect(await pass()).toEqual([]);
    }));

  it('repairs drift and leaves foreign links alone, reporting the one in the way', () =>
    withSandbox(async (sandbox) => {
      const { pass, apply } = setup(sandbox);
      await apply(await pass());

      await sandbox.ip('link', 'del', 'dev', 'sc-17-1');
      await sandbox.ip('addr', 'del', '10.17.2.1/24', 'dev', 'sc-17-2');
      await sandbox.ip('addr', 'add', '10.17.2.9/24', 'dev', 'sc-17-2');
      await sandbox.ip('link', 'set', 'dev', 'sc-17-3', 'down');
      await sandbox.ip('link', 'add', 'name', 'br-foreign', 'type', 'bridge');
      await sandbox.ip('addr', 'add', '192.168.77.1/24', 'dev', 'br-foreign');
      await sandbox.ip('link', 'add', 'name', 'fx0', 'type', 'veth', 'peer', 'name', 'fx1');
      await sandbox.ip('addr', 'add', '10.18.4.77/24', 'dev', 'fx0');

      const drift = await pass();
      expect(summary(drift)).toEqual(['conflict sc-18-4', 'create sc-17-1', 'update sc-17-2', 'update sc-17-3']);
      expect(drift.find((a) => a.type === 'conflict')?.message).toContain('foreign veth link fx0 holds 10.18.4.77/24');

      expect((await apply(drift)).failed.size).toBe(0);
      expect(summary(await pass())).toEqual(['conflict sc-18-4']);
      expect(await linkState(sandbox, 'sc-17-2')).toMatchObject({ addresses: ['10.17.2.1/24'], up: true });
      expect(await linkState(sandbox, 'br-foreign')).toEqual({
        kind: 'bridge',
        alias: undefined,
        group: 'default',
        up: false,
        addresses: ['192.168.77.1/24'],
      });
      expect(await linkState(sandbox, 'fx0')).toMatchObject({ alias: undefined, addresses: ['10.18.4.77/24'] });

      await sandbox.ip('link', 'del', 'dev', 'fx0');
      expect(await pass()).toEqual([]);
    }));

  it('finishes a bridge whose creation was interrupted right after `link add`', () =>
    withSandbox(async (sandbox) => {
      const { pass, apply } = setup(sandbox, 1, 2);
      await sandbox.ip('link', 'add', 'name', 'sc-17-2', 'group', String(SC_BRIDGE_GROUP), 'type', 'bridge');
      const actions = await pass();
      expect(summary(actions)).toEqual(['create sc-17-1', 'update sc-17-2']);
      expect((await apply(actions)).failed.size).toBe(0);
      expect(await linkState(sandbox, 'sc-17-2')).toMatchObject({ alias: 'srvctl:bridge user=u1x2', addresses: ['10.17.2.1/24'], up: true });
      expect(await pass()).toEqual([]);
    }));

  it('a foreign link that takes the name after planning fails only that bridge and stays untouched', () =>
    withSandbox(async (sandbox) => {
      const { drivers, host, desired, pass, apply } = setup(sandbox, 1, 3);
      const actions = await pass();
      await sandbox.ip('link', 'add', 'name', 'sc-17-2', 'type', 'bridge');

      const outcome = await apply(actions);
      expect([...outcome.failed]).toEqual(['bridge/sc-17-2']);
      expect(await linkState(sandbox, 'sc-17-2')).toEqual({ kind: 'bridge', alias: undefined, group: 'default', up: false, addresses: [] });
      expect(await linkState(sandbox, 'sc-17-3')).toMatchObject({ addresses: ['10.17.3.1/24'], up: true });

      const want = desired.find((d) => d.ref.id === 'sc-17-2');
      if (!want) throw new Error('sc-17-2 not desired');
      await expect(bridgeHandler.create(drivers, host, want)).rejects.toThrow(ConflictError);
      expect(summary(await pass())).toEqual(['conflict sc-17-2']);
    }));

  it('removes the bridges it owns that are no longer desired, one command each or batched', () =>
    withSandbox(async (sandbox) => {
      const { drivers, host, pass, apply } = setup(sandbox, 1, 3);
      await apply(await pass());
      const observed = await bridgeHandler.observe(drivers);
      const sc171 = observed.find((o) => o.ref.id === 'sc-17-1');
      if (!sc171) throw new Error('sc-17-1 missing');
      await bridgeHandler.delete(drivers, host, sc171);

      const fewer = planBridges(
        [],
        observed.filter((o) => o.ref.id !== 'sc-17-1'),
      );
      expect(summary(fewer)).toEqual(['delete sc-17-2', 'delete sc-17-3']);
      expect((await bridgeHandler.applyBatch(drivers, host, fewer)).failed.size).toBe(0);
      const names = (await sandbox.ipJson<IpLink[]>('link', 'show')).map((l) => l.ifname);
      expect(names).toEqual(['lo']);
    }));

  it('the ip driver names exactly the failed lines of a real batch', () =>
    withSandbox(async (sandbox) => {
      const { drivers } = setup(sandbox, 1, 1);
      const error = await drivers.ip
        .batch([
          ['link', 'add', 'name', 'b1', 'type', 'bridge'],
          ['addr', 'add', '10.99.0.1/24', 'dev', 'nosuch0'],
          ['link', 'set', 'dev', 'b1', 'alias', 'a b c'],
        ])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(IpBatchError);
      expect([...(error as IpBatchError).failedIndices]).toEqual([1]);
      expect((error as IpBatchError).message).toContain('Cannot find device "nosuch0"');
      expect(await linkState(sandbox, 'b1')).toMatchObject({ alias: 'a b c' });
    }));
});
