// Who reaches what: container key blocks, jump accounts with their permitopen lines, the hosts
// block and the client config — pure functions of a small model.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterHostLines, containerKeyLines, jumpAccounts, jumpKeyLines } from '../../../src/access/access-plan.js';
import { renderSshClientConfig } from '../../../src/access/ssh-client-config.js';
import type { Model } from '../../../src/datastore/model.js';

const lines = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ssh/public-keys.txt'), 'utf8')
  .split('\n')
  .filter((l) => /^(ssh|ecdsa)-/.test(l));
const [ed, rsa, , p256, p384] = lines as [string, string, string, string, string];
const rsa1024 = lines[2] as string;

const model: Model = {
  clusters: {
    c: { 'h1.test': { hostnet: 1, host_ip: '192.0.2.11' }, 'h2.test': { hostnet: 2, host_ip: '192.0.2.12' } },
    other: { 'x.test': { hostnet: 3, host_ip: '192.0.2.13' } },
  },
  users: {
    root: { reseller_id: 0, user_id: 0, uid: 0, ssh_keys: [p384] },
    alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 1001, ssh_keys: [p256] },
    alice: { reseller: 'alpha', user_id: 1, uid: 1002, ssh_keys: [ed, rsa1024] },
    bob: { reseller: 'root', user_id: 2, uid: 1003, ssh_keys: [rsa, p384] },
    idle: { reseller: 'alpha', user_id: 2, uid: 1004, ssh_keys: [ed] },
  },
  containers: {
    'shop.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.1.20' },
    'blog.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.1.21' },
    'off.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.1.22', enabled: false },
    'bike.test': { user: 'bob', host: 'h1.test', type: 'busybox', ip: '10.16.2.20' },
    'far.test': { user: 'alice', host: 'h2.test', type: 'busybox', ip: '10.33.1.20' },
    'alien.test': { user: 'bob', host: 'x.test', type: 'busybox', ip: '10.48.2.20' },
  },
  settings: {},
};

describe('container keys', () => {
  it('root, the reseller and the owner, labelled; bad keys are never installed', () => {
    expect(containerKeyLines(model, 'alice')).toEqual(['# root (administrator)', p384, '# alpha (reseller)', p256, '# alice (owner)', ed]);
  });
  it("a key the owner shares with root is installed once; root's own users have no reseller", () => {
    expect(containerKeyLines(model, 'bob')).toEqual(['# root (administrator)', p384, '# bob (owner)', rsa]);
    expect(containerKeyLines(model, 'root')).toEqual(['# root (administrator)', p384]);
  });
});

describe('jump accounts', () => {
  it('owners and their resellers of enabled containers on this host; root and idle users get none', () => {
    const plans = jumpAccounts(model, 'h1.test');
    expect(plans.map((p) => [p.user, p.uid, p.containers])).toEqual([
      ['alice', 1002, ['blog.test', 'shop.test']],
      ['alpha', 1001, ['blog.test', 'shop.test']],
      ['bob', 1003, ['bike.test']],
    ]);
  });
  it("each key line is restricted to port forwarding to the account's containers", () => {
    const alice = jumpAccounts(model, 'h1.test').find((p) => p.user === 'alice');
    expect(jumpKeyLines(alice as never)).toEqual([`restrict,port-forwarding,permitopen="blog.test:22",permitopen="shop.test:22" ${ed}`]);
  });
});

describe('hosts block and client config', () => {
  it('lists every container of the cluster (all its hosts), not other clusters', () => {
    expect(clusterHostLines(model, 'c')).toEqual([
      '10.16.2.20\tbike.test',
      '10.17.1.21\tblog.test',
      '10.33.1.20\tfar.test',
      '10.17.1.22\toff.test',
      '10.17.1.20\tshop.test',
    ]);
  });
  it("one Host entry per reachable container, jumping through the user's account on its host", () => {
    const text = renderSshClientConfig(model, 'alpha');
    expect(text).toContain('Host blog.test\n    User root\n    ProxyJump alpha@h1.test\n');
    expect(text).toContain('Host far.test\n    User root\n    ProxyJump alpha@h2.test\n');
    expect(text).not.toContain('off.test');
    expect(text).not.toContain('bike.test');
  });
});
