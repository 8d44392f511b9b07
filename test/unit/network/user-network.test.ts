// Resolving a user's place in the plan from users.json: resellers, root, and missing allocations.
import type { Users } from '../../../src/datastore/model.js';
import { allocateContainerAddress, userSubnet, type UserNet } from '../../../src/network/address-plan.js';
import { bridgeName } from '../../../src/network/interface-names.js';
import { resolveUserNet } from '../../../src/network/user-network.js';

const users: Users = {
  alpha: { reseller: 'root', reseller_id: 1, user_id: 2, uid: 1001 },
  bravo: { reseller_id: 15, user_id: 4, uid: 1002 }, // reseller absent means root
  alice: { reseller: 'alpha', user_id: 3, uid: 1003 },
  bob: { reseller: 'bravo', user_id: 255, uid: 1004 },
  r: { reseller: 'root', user_id: 1, uid: 1005 },
  plain: { user_id: 9, uid: 1006 },
};

function expectNet(result: UserNet | { problem: string }): UserNet {
  if ('problem' in result) throw new Error(`unexpected problem: ${result.problem}`);
  return result;
}

describe('resolveUserNet', () => {
  it('places alice (reseller alpha, id 1; user_id 3) on hostnet 1 at 10.17.3.0/24, bridge sc-17-3', () => {
    const n = expectNet(resolveUserNet(users, 'alice', 1));
    expect(n).toEqual({ hostnet: 1, resellerId: 1, userId: 3 });
    expect(userSubnet(n).bridgeCidr).toBe('10.17.3.1/24');
    expect(bridgeName(n)).toBe('sc-17-3');
  });

  it("places root's user r on hostnet 2 at 10.32.1.20", () => {
    const n = expectNet(resolveUserNet(users, 'r', 2));
    expect(n).toEqual({ hostnet: 2, resellerId: 0, userId: 1 });
    expect(allocateContainerAddress(n, [])).toBe('10.32.1.20');
  });

  it("puts a reseller's own containers in reseller 0's space with its own user_id", () => {
    expect(resolveUserNet(users, 'alpha', 1)).toEqual({ hostnet: 1, resellerId: 0, userId: 2 });
    expect(resolveUserNet(users, 'bravo', 3)).toEqual({ hostnet: 3, resellerId: 0, userId: 4 });
  });

  it('handles reseller 15 and user 255 (10.255.255.0/24 on hostnet 15)', () => {
    const n = expectNet(resolveUserNet(users, 'bob', 15));
    expect(userSubnet(n).cidr).toBe('10.255.255.0/24');
  });

  it('treats a user without a reseller field as a user of root', () => {
    expect(resolveUserNet(users, 'plain', 1)).toEqual({ hostnet: 1, resellerId: 0, userId: 9 });
  });

  it('resolves root as reseller 0, user 0, whether or not it is listed', () => {
    expect(resolveUserNet(users, 'root', 4)).toEqual({ hostnet: 4, resellerId: 0, userId: 0 });
    expect(resolveUserNet({ root: { user_id: 0, uid: 0 } }, 'root', 4)).toEqual({ hostnet: 4, resellerId: 0, userId: 0 });
  });

  it.each<[string, Users, string, number, RegExp]>([
    ['unknown user', users, 'carol', 1, /^unknown user "carol"$/],
    ['inherited property name', users, 'constructor', 1, /^unknown user "constructor"$/],
    ['missing user_id', { dave: { reseller: 'root', uid: 1 } }, 'dave', 1, /user "dave" has no user_id: run "sc allocate"/],
    ['user_id 0 on a non-root user', { dave: { user_id: 0 } }, 'dave', 1, /user_id 0; a user_id is 1–255 \(0 is reserved for root\)/],
    ['user_id out of range', { dave: { user_id: 256 } }, 'dave', 1, /user_id 256/],
    ['unknown reseller', { dave: { reseller: 'zulu', user_id: 1 } }, 'dave', 1, /user "dave" names unknown reseller "zulu"/],
    [
      'reseller without reseller_id',
      { zulu: { reseller: 'root', user_id: 1 }, dave: { reseller: 'zulu', user_id: 1 } },
      'dave',
      1,
      /reseller "zulu" \(of user "dave"\) has no reseller_id: run "sc allocate"/,
    ],
    [
      'reseller with reseller_id 0',
      { zulu: { reseller_id: 0, user_id: 1 }, dave: { reseller: 'zulu', user_id: 1 } },
      'dave',
      1,
      /reseller "zulu" \(of user "dave"\) has reseller_id 0; a reseller's id is 1–15/,
    ],
    [
      'reseller that is itself a user of a reseller',
      { ...users, dave: { reseller: 'alice', user_id: 1 } },
      'dave',
      1,
      /"alice" is itself a user of reseller "alpha"; resellers belong to root/,
    ],
    [
      'reseller_id on a user of a reseller',
      { ...users, dave: { reseller: 'alpha', reseller_id: 3, user_id: 1 } },
      'dave',
      1,
      /user "dave" has a reseller_id but belongs to reseller "alpha"; only users of root can be resellers/,
    ],
    ['root with a user_id other than 0', { root: { user_id: 5 } }, 'root', 1, /root is always user 0/],
    ['root with a reseller_id other than 0', { root: { reseller_id: 2 } }, 'root', 1, /root is always reseller 0/],
    ['root with a reseller', { ...users, root: { reseller: 'alpha' } }, 'root', 1, /root has no reseller/],
    ['hostnet 0', users, 'alice', 0, /hostnet 0 is out of range/],
    ['hostnet 16', users, 'alice', 16, /hostnet 16 is out of range/],
  ])('reports %s', (_case, doc, username, hostnet, problem) => {
    const result = resolveUserNet(doc, username, hostnet);
    expect(result).toEqual({ problem: expect.stringMatching(problem) });
  });
});
