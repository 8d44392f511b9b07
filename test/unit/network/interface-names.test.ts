// Interface names: the bridge name scheme for every H/R/U and the kernel's naming rules.
import { PlanError, userSubnet } from '../../../src/network/address-plan.js';
import {
  SC_LINK_ALIAS_PREFIX,
  bridgeName,
  isValidInterfaceName,
  parseBridgeName,
  userNetOfBridgeName,
} from '../../../src/network/interface-names.js';

describe('bridgeName', () => {
  it('is sc-17-3 for alice (hostnet 1, reseller 1, user 3) — 10.17.3.0/24', () => {
    expect(bridgeName({ hostnet: 1, resellerId: 1, userId: 3 })).toBe('sc-17-3');
    expect(bridgeName({ hostnet: 2, resellerId: 0, userId: 1 })).toBe('sc-32-1');
    expect(bridgeName({ hostnet: 15, resellerId: 15, userId: 255 })).toBe('sc-255-255');
  });

  it('is valid, ≤ 15 chars, unique and round-trips for every hostnet, reseller and user', () => {
    // 61,440 names: collect problems in plain code and assert once, since expect() per name is slow.
    const seen = new Set<string>();
    const problems: string[] = [];
    for (let hostnet = 1; hostnet <= 15; hostnet++) {
      for (let resellerId = 0; resellerId <= 15; resellerId++) {
        for (let userId = 0; userId <= 255; userId++) {
          const n = { hostnet, resellerId, userId };
          const name = bridgeName(n);
          if (name.length > 15 || !isValidInterfaceName(name)) problems.push(`${name}: invalid`);
          if (seen.has(name)) problems.push(`${name}: duplicate`);
          seen.add(name);
          const parsed = parseBridgeName(name);
          if (parsed?.secondOctet !== 16 * hostnet + resellerId || parsed.userId !== userId) {
            problems.push(`${name}: parses to ${JSON.stringify(parsed)}`);
          }
          if (userSubnet(n).network !== `10.${parsed?.secondOctet}.${parsed?.userId}.0`) {
            problems.push(`${name}: does not match ${userSubnet(n).cidr}`);
          }
          const back = userNetOfBridgeName(name);
          if (back?.hostnet !== hostnet || back.resellerId !== resellerId || back.userId !== userId) {
            problems.push(`${name}: user net ${JSON.stringify(back)}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(seen.size).toBe(15 * 16 * 256);
  });

  it('rejects out-of-range numbers like userSubnet does', () => {
    expect(() => bridgeName({ hostnet: 0, resellerId: 0, userId: 1 })).toThrow(PlanError);
    expect(() => bridgeName({ hostnet: 16, resellerId: 0, userId: 1 })).toThrow(PlanError);
    expect(() => bridgeName({ hostnet: 1, resellerId: 16, userId: 1 })).toThrow(PlanError);
    expect(() => bridgeName({ hostnet: 1, resellerId: 0, userId: 256 })).toThrow(PlanError);
  });
});

describe('parseBridgeName', () => {
  it.each([
    'sc-017-3', // non-canonical spelling
    'sc-17-03',
    'sc-15-3', // second octet below the hostnets (VPN reservation)
    'sc-256-3',
    'sc-17-256',
    'sc-17',
    'sc-17-3-1',
    'scv-1-2',
    'SC-17-3',
    'br0',
    'sc-17-3 ',
    '',
  ])('refuses %p', (name) => {
    expect(parseBridgeName(name)).toBeUndefined();
    expect(userNetOfBridgeName(name)).toBeUndefined();
  });
});

describe('isValidInterfaceName', () => {
  it.each(['a', 'eth0', 'sc-255-255', 'scv-14-15', 'x'.repeat(15), 'br-0.100', '...', 'é'])('accepts %p', (name) => {
    expect(isValidInterfaceName(name)).toBe(true);
  });

  it.each([
    '',
    '.',
    '..',
    'x'.repeat(16),
    'é'.repeat(8), // 16 bytes in UTF-8
    'a/b',
    'a:b',
    'a b',
    'a\tb',
    'a\nb',
    'a\u000bb',
    'a\u000cb',
    'a\rb',
    'a\u0000b',
    'à', // UTF-8 C3 A0: the kernel's isspace() counts byte 0xA0
  ])('refuses %p', (name) => {
    expect(isValidInterfaceName(name)).toBe(false);
  });
});

it("marks sc's links with the srvctl: alias prefix", () => {
  expect(SC_LINK_ALIAS_PREFIX).toBe('srvctl:');
});
