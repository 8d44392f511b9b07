// A machine's link to its bridge: found through host0's peer index, compared as master and up,
// planned as an update (re-attach) when detached or down and as a replace (restart) when missing.
import type { Model } from '../../../src/datastore/model.js';
import { parseHost0 } from '../../../src/drivers/nspawn.js';
import type { IpLink } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { planActions } from '../../../src/reconciler/planner.js';
import { renderPlanText } from '../../../src/cli/views/plan-view.js';
import { linksByIndex, machineLinkView, observedMachineLink, reattachCommands } from '../../../src/resources/machine-link.js';
import { machineHandler, type MachineSpec } from '../../../src/resources/machine.js';
import type { ObservedObject } from '../../../src/resources/contract.js';

const veth = (ifindex: number, peer: number, extra: Partial<IpLink> = {}): IpLink => ({
  ifindex,
  ifname: `vb-${ifindex}`,
  flags: ['BROADCAST', 'UP'],
  link_index: peer,
  linkinfo: { info_kind: 'veth' },
  ...extra,
});

describe('parseHost0', () => {
  it('reads ip -j link show dev host0 from inside the container', () => {
    const stdout = '[{"ifindex":2,"link_index":9,"ifname":"host0","flags":["BROADCAST","UP","LOWER_UP"],"link_netnsid":0}]\n';
    expect(parseHost0({ exitCode: 0, stdout, stderr: '' })).toEqual({ state: 'present', ifindex: 2, peerIndex: 9, up: true });
    expect(parseHost0({ exitCode: 1, stdout: '', stderr: 'Device "host0" does not exist.\n' })).toEqual({ state: 'missing' });
    expect(parseHost0({ exitCode: 1, stdout: '', stderr: 'nsenter: cannot open /proc/5/ns/net: No such file or directory\n' })).toEqual({
      state: 'unreadable',
      reason: 'nsenter: cannot open /proc/5/ns/net: No such file or directory',
    });
  });

  it('reads host0 from the one batch the machine and container-address kinds share (route lines first)', () => {
    const stdout =
      '[{"dst":"default","gateway":"10.17.1.1","dev":"host0","flags":[]}]\n' +
      '[{"ifindex":2,"link_index":9,"ifname":"host0","flags":["BROADCAST","UP"],"link_netnsid":0,"addr_info":[]}]\n';
    expect(parseHost0({ exitCode: 0, stdout, stderr: '' })).toEqual({ state: 'present', ifindex: 2, peerIndex: 9, up: true });
    // No host0: the route line answers, the addr line fails, ip exits 1.
    expect(parseHost0({ exitCode: 1, stdout: '[]\n', stderr: 'Device "host0" does not exist.\nCommand failed -:2\n' })).toEqual({
      state: 'missing',
    });
    expect(parseHost0({ exitCode: 0, stdout: '[{"ifindex":\n', stderr: '' }).state).toBe('unreadable');
  });
});

describe('observedMachineLink', () => {
  const links = linksByIndex([
    veth(9, 2, { master: 'sc-17-1' }),
    veth(10, 3, { flags: ['BROADCAST'] }),
    { ifindex: 11, ifname: 'dummy0', flags: ['UP'], linkinfo: { info_kind: 'dummy' } },
  ]);

  it('attached and up, detached, down', () => {
    expect(observedMachineLink({ state: 'present', ifindex: 2, peerIndex: 9, up: true }, links)).toEqual({
      master: 'sc-17-1',
      up: true,
      veth: 'vb-9',
    });
    expect(observedMachineLink({ state: 'present', ifindex: 3, peerIndex: 10, up: true }, links)).toEqual({ master: null, up: false, veth: 'vb-10' });
  });

  it('missing: no host0, the peer gone, an index reused by another link, a namespace that cannot be entered', () => {
    expect(observedMachineLink({ state: 'missing' }, links).missing).toBe('no host0 in the container');
    expect(observedMachineLink({ state: 'present', ifindex: 2, peerIndex: 42, up: true }, links).missing).toMatch(
      /veth peer \(ifindex 42\) is not on this host/,
    );
    expect(observedMachineLink({ state: 'present', ifindex: 2, peerIndex: 11, up: true }, links).missing).toMatch(/ifindex 11/);
    // veth 9's own peer is ifindex 2: host0 with ifindex 5 pointing at 9 is not its pair.
    expect(observedMachineLink({ state: 'present', ifindex: 5, peerIndex: 9, up: true }, links).missing).toBeDefined();
    expect(observedMachineLink({ state: 'unreadable', reason: 'exit 1' }, links).missing).toBe('cannot look inside the container (exit 1)');
  });

  it('views and re-attach commands', () => {
    expect(machineLinkView({ master: 'sc-17-1', up: true, veth: 'vb-x' })).toEqual({ master: 'sc-17-1', up: true });
    expect(machineLinkView({ master: null, up: false, missing: 'no host0 in the container' })).toBe('missing: no host0 in the container');
    expect(reattachCommands({ master: 'sc-17-1', up: true }, { master: null, up: true, veth: 'vb-x' })).toEqual([
      ['link', 'set', 'dev', 'vb-x', 'master', 'sc-17-1', 'up'],
    ]);
    expect(reattachCommands({ master: 'sc-17-1', up: true }, { master: 'sc-17-1', up: true, veth: 'vb-x' })).toEqual([]);
  });
});

describe('planning a machine whose link drifted', () => {
  const model: Model = {
    clusters: { c: { 'h1.test': { hostnet: 1, host_ip: '192.0.2.11' } } },
    users: { res1: { name: 'R', reseller: 'root', reseller_id: 1, user_id: 1, uid: 1 }, shop: { name: 'S', reseller: 'res1', user_id: 3, uid: 2 } },
    containers: {
      'shop.test': { user: 'shop', host: 'h1.test', type: 'busybox', ip: '10.17.3.20' },
      'blog.test': { user: 'shop', host: 'h1.test', type: 'busybox', ip: '10.17.3.21' },
    },
    settings: { images: { busybox: { builder: 'busybox' } } },
  };
  const host: HostContext = { name: 'h1.test', cluster: 'c', host: { hostnet: 1, host_ip: '192.0.2.11' }, root: '/r', runtime: 'direct' };
  const desired = machineHandler.desired(model, host);
  const config = desired[0]!.spec.config;
  const observed = (link: MachineSpec['link'], other: MachineSpec['link']): ObservedObject<MachineSpec>[] => [
    { ref: { kind: 'machine', id: 'blog.test' }, spec: { state: 'running', config: desired[0]!.spec.config, link: other }, owned: true },
    { ref: { kind: 'machine', id: 'shop.test' }, spec: { state: 'running', config: desired[1]!.spec.config, link }, owned: true },
  ];
  const fine = { master: 'sc-17-3', up: true, veth: 'vb-blog.test' };

  it('detached: an update naming the field; the other machine is left alone', () => {
    const plan = planActions(
      { machine: machineHandler },
      new Map([['machine', desired]]),
      new Map([['machine', observed({ master: null, up: true, veth: 'vb-shop.test' }, fine)]]),
    );
    expect(config).toBeDefined();
    expect(plan.actions.map((a) => [a.type, a.ref.id])).toEqual([['update', 'shop.test']]);
    expect(renderPlanText(plan, { color: false })).toContain('link.master: null → "sc-17-3"');
  });

  it('missing: a replace, shown with the reason', () => {
    const plan = planActions(
      { machine: machineHandler },
      new Map([['machine', desired]]),
      new Map([['machine', observed({ master: null, up: false, missing: 'no host0 in the container' }, fine)]]),
    );
    expect(plan.actions.map((a) => [a.type, a.ref.id])).toEqual([['replace', 'shop.test']]);
    const text = renderPlanText(plan, { color: false });
    expect(text).toContain('-/+ shop.test');
    expect(text).toContain('link: "missing: no host0 in the container" → {"master":"sc-17-3","up":true}');
  });
});
