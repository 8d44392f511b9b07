// The address plan's arithmetic: SPEC §2 worked examples, range edges and allocation errors.
import {
  CONTAINER_FIRST_HOST,
  CONTAINER_LAST_HOST,
  HOST_RESERVED,
  PlanError,
  VPN_CLIENTS,
  allocateContainerAddress,
  containerAddressProblem,
  hostnetCidr,
  locateAddress,
  lowestFree,
  parseIPv4Octets,
  userSubnet,
  type UserNet,
} from '../../../src/network/address-plan.js';
import { UserError } from '../../../src/errors.js';

const alice: UserNet = { hostnet: 1, resellerId: 1, userId: 3 };
const rootUserR: UserNet = { hostnet: 2, resellerId: 0, userId: 1 };

function hostParts(first: number, last: number, prefix = '10.17.3'): string[] {
  const out: string[] = [];
  for (let i = first; i <= last; i++) out.push(`${prefix}.${i}`);
  return out;
}

describe('SPEC §2 worked examples', () => {
  it('alice (reseller alpha 1, user 3) on hostnet 1: bridge 10.17.3.1/24, containers .20 then .21', () => {
    const subnet = userSubnet(alice);
    expect(subnet).toEqual({
      network: '10.17.3.0',
      cidr: '10.17.3.0/24',
      prefixLength: 24,
      bridgeAddress: '10.17.3.1',
      bridgeCidr: '10.17.3.1/24',
      broadcast: '10.17.3.255',
    });
    const first = allocateContainerAddress(alice, []);
    expect(first).toBe('10.17.3.20');
    expect(allocateContainerAddress(alice, [first])).toBe('10.17.3.21');
  });

  it("root's own user r (reseller 0, user 1) on hostnet 2 gets 10.32.1.20", () => {
    expect(userSubnet(rootUserR).cidr).toBe('10.32.1.0/24');
    expect(allocateContainerAddress(rootUserR, [])).toBe('10.32.1.20');
  });
});

describe('userSubnet and hostnetCidr edges', () => {
  it('hostnet 1 and 15 own 10.16.0.0/12 and 10.240.0.0/12', () => {
    expect(hostnetCidr(1)).toBe('10.16.0.0/12');
    expect(hostnetCidr(2)).toBe('10.32.0.0/12');
    expect(hostnetCidr(15)).toBe('10.240.0.0/12');
  });

  it('reseller 15 on hostnet 15 is 10.255.x, user 255 is the last /24', () => {
    expect(userSubnet({ hostnet: 15, resellerId: 15, userId: 1 }).cidr).toBe('10.255.1.0/24');
    expect(userSubnet({ hostnet: 15, resellerId: 15, userId: 255 }).bridgeCidr).toBe('10.255.255.1/24');
    expect(userSubnet({ hostnet: 3, resellerId: 15, userId: 7 }).cidr).toBe('10.63.7.0/24');
    expect(userSubnet({ hostnet: 1, resellerId: 2, userId: 255 }).cidr).toBe('10.18.255.0/24');
  });

  it('root itself (reseller 0, user 0) maps to the first /24 of the hostnet', () => {
    expect(userSubnet({ hostnet: 4, resellerId: 0, userId: 0 }).cidr).toBe('10.64.0.0/24');
  });

  it.each([
    [{ hostnet: 0, resellerId: 0, userId: 1 }, /hostnet 0 is out of range/],
    [{ hostnet: 16, resellerId: 0, userId: 1 }, /hostnet 16 is out of range/],
    [{ hostnet: 1.5, resellerId: 0, userId: 1 }, /hostnet 1.5 is out of range/],
    [{ hostnet: 1, resellerId: 16, userId: 1 }, /reseller_id 16 is out of range/],
    [{ hostnet: 1, resellerId: -1, userId: 1 }, /reseller_id -1 is out of range/],
    [{ hostnet: 1, resellerId: 0, userId: 256 }, /user_id 256 is out of range/],
    [{ hostnet: 1, resellerId: 0, userId: Number.NaN }, /user_id NaN is out of range/],
  ])('rejects %j', (n, message) => {
    expect(() => userSubnet(n)).toThrow(PlanError);
    expect(() => userSubnet(n)).toThrow(message);
    expect(() => allocateContainerAddress(n, [])).toThrow(PlanError);
  });

  it.each([0, 16, -1, 2.5])('hostnetCidr rejects hostnet %p', (hostnet) => {
    expect(() => hostnetCidr(hostnet)).toThrow(PlanError);
  });

  it('PlanError is a UserError (bad input, exit 1)', () => {
    const error = (() => {
      try {
        hostnetCidr(0);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(UserError);
    expect((error as PlanError).exitCode).toBe(1);
    expect((error as PlanError).name).toBe('PlanError');
  });
});

describe('allocateContainerAddress', () => {
  it('reuses the lowest hole and ignores foreign or malformed addresses', () => {
    const used = [
      '10.17.3.20',
      '10.17.3.22',
      '10.17.4.21', // another user's /24
      '10.33.3.21', // same user and reseller on another hostnet
      '192.168.1.21',
      'not-an-ip',
      '010.17.3.21', // octal spelling: not a stored plan address
      '10.17.3.1', // the bridge: outside the container range anyway
    ];
    expect(allocateContainerAddress(alice, used)).toBe('10.17.3.21');
  });

  it('counts addresses given with a prefix length', () => {
    expect(allocateContainerAddress(alice, ['10.17.3.20/24'])).toBe('10.17.3.21');
  });

  it('accepts any iterable, e.g. a Set or a generator', () => {
    function* stored(): Generator<string> {
      yield '10.17.3.20';
      yield '10.17.3.21';
    }
    expect(allocateContainerAddress(alice, new Set(['10.17.3.20']))).toBe('10.17.3.21');
    expect(allocateContainerAddress(alice, stored())).toBe('10.17.3.22');
  });

  it('hands out .200 as the last address', () => {
    expect(allocateContainerAddress(alice, hostParts(20, 199))).toBe('10.17.3.200');
  });

  it('throws a PlanError naming the user, the /24 and the hostnet when .20–.200 are all used', () => {
    const full = hostParts(CONTAINER_FIRST_HOST, CONTAINER_LAST_HOST);
    expect(() => allocateContainerAddress(alice, full, 'alice')).toThrow(PlanError);
    expect(() => allocateContainerAddress(alice, full, 'alice')).toThrow(
      /^user alice's \/24 10\.17\.3\.0\/24 on hostnet 1 is full: all 181 container addresses \.20–\.200 are in use/,
    );
    expect(() => allocateContainerAddress(alice, full)).toThrow(/^the \/24 10\.17\.3\.0\/24 \(reseller_id 1, user_id 3\) on hostnet 1 is full/);
  });

  it('does not spill into VPN client addresses when full', () => {
    const full = hostParts(CONTAINER_FIRST_HOST, CONTAINER_LAST_HOST);
    expect(() => allocateContainerAddress(alice, [...full, ...hostParts(201, 250)])).toThrow(PlanError);
  });
});

describe('locateAddress', () => {
  it.each([
    ['10.17.3.0', 'network'],
    ['10.17.3.1', 'bridge'],
    [`10.17.3.${HOST_RESERVED.first}`, 'host-reserved'],
    [`10.17.3.${HOST_RESERVED.last}`, 'host-reserved'],
    ['10.17.3.17', 'unassigned'],
    ['10.17.3.19', 'unassigned'],
    ['10.17.3.20', 'container'],
    ['10.17.3.200', 'container'],
    [`10.17.3.${VPN_CLIENTS.first}`, 'vpn-client'],
    [`10.17.3.${VPN_CLIENTS.last}`, 'vpn-client'],
    ['10.17.3.251', 'unassigned'],
    ['10.17.3.254', 'unassigned'],
    ['10.17.3.255', 'broadcast'],
  ])('%s is %s', (ip, role) => {
    expect(locateAddress(ip)).toEqual({ hostnet: 1, resellerId: 1, userId: 3, hostPart: Number(ip.split('.')[3]), role });
  });

  it('splits the second octet into hostnet and reseller', () => {
    expect(locateAddress('10.255.255.200')).toEqual({
      hostnet: 15,
      resellerId: 15,
      userId: 255,
      hostPart: 200,
      role: 'container',
    });
    expect(locateAddress('10.32.1.20')).toMatchObject({ hostnet: 2, resellerId: 0, userId: 1 });
    expect(locateAddress('10.16.0.0')).toMatchObject({ hostnet: 1, resellerId: 0, userId: 0, role: 'network' });
  });

  it.each(['10.15.255.255', '10.0.0.1', '11.17.3.20', '192.168.0.1', '', 'garbage', '10.17.3', '10.17.3.256', '::1'])(
    'is undefined outside the hostnets or for non-addresses: %p',
    (ip) => {
      expect(locateAddress(ip)).toBeUndefined();
    },
  );
});

describe('containerAddressProblem', () => {
  it('accepts .20–.200 of the owner /24', () => {
    expect(containerAddressProblem('10.17.3.20', alice)).toBeUndefined();
    expect(containerAddressProblem('10.17.3.200', alice)).toBeUndefined();
  });

  it('names the expected /24 when the address is in another one', () => {
    expect(containerAddressProblem('10.17.4.20', alice)).toBe(
      "10.17.4.20 is not in the owner's /24 10.17.3.0/24 (hostnet 1, reseller_id 1, user_id 3)",
    );
    expect(containerAddressProblem('10.33.3.20', alice)).toMatch(/not in the owner's \/24 10\.17\.3\.0\/24/);
    expect(containerAddressProblem('192.168.3.20', alice)).toMatch(/not in the owner's \/24/);
  });

  it('says why a host part outside .20–.200 is wrong', () => {
    expect(containerAddressProblem('10.17.3.1', alice)).toBe(
      "10.17.3.1 is outside the container range .20–.200 of 10.17.3.0/24 (.1 is the host's bridge address)",
    );
    expect(containerAddressProblem('10.17.3.201', alice)).toMatch(/\.201 is reserved for VPN clients/);
    expect(containerAddressProblem('10.17.3.19', alice)).toMatch(/outside the container range/);
    expect(containerAddressProblem('10.17.3.255', alice)).toMatch(/broadcast/);
  });

  it.each(['', 'abc', '10.17.3', '10.17.3.20/24', '010.17.3.20', '10.17.3.300', ' 10.17.3.20', '10.17.3.20\n'])(
    'reports a malformed address %p',
    (ip) => {
      expect(containerAddressProblem(ip, alice)).toMatch(/is not an IPv4 address/);
    },
  );
});

describe('parseIPv4Octets', () => {
  it('parses dotted quads strictly', () => {
    expect(parseIPv4Octets('10.17.3.20')).toEqual([10, 17, 3, 20]);
    expect(parseIPv4Octets('10.17.3.20/24')).toEqual([10, 17, 3, 20]);
    expect(parseIPv4Octets('10.17.3.20/33')).toBeUndefined();
    expect(parseIPv4Octets('0x0a.17.3.20')).toBeUndefined();
    expect(parseIPv4Octets('167838483')).toBeUndefined();
  });
});

describe('lowestFree', () => {
  it('returns min when nothing is used', () => {
    expect(lowestFree([], 1, 255)).toBe(1);
  });

  it('finds the lowest hole and ignores values outside the range', () => {
    expect(lowestFree([1, 2, 4, 0, 300, -5], 1, 255)).toBe(3);
    expect(lowestFree(new Set([1000, 1001, 1003]), 1000, 4294967294)).toBe(1002);
  });

  it('is undefined when the range is exhausted or empty', () => {
    expect(lowestFree([1, 2, 3], 1, 3)).toBeUndefined();
    expect(lowestFree([], 5, 4)).toBeUndefined();
  });

  it('rejects non-integer bounds', () => {
    expect(() => lowestFree([], 0.5, 3)).toThrow(RangeError);
  });
});
