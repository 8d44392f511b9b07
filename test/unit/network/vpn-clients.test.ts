// The user VPN's addresses: host parts .201–.250 allocated lowest-free, the same on every host.
import { PlanError } from '../../../src/network/address-plan.js';
import { allocateVpnHostPart, VPN_CLIENT_CAPACITY, vpnClientAddress, vpnClientCommonName } from '../../../src/network/vpn-clients.js';

describe('vpn client addresses', () => {
  test('lowest free host part in .201–.250, around the taken ones', () => {
    expect(allocateVpnHostPart([], 'alice')).toBe(201);
    expect(allocateVpnHostPart([201, 203], 'alice')).toBe(202);
    expect(allocateVpnHostPart([20, 201, 255], 'alice')).toBe(202);
  });
  test('a full range is a clear error naming the user and the way out', () => {
    const all = Array.from({ length: VPN_CLIENT_CAPACITY }, (_, i) => 201 + i);
    expect(VPN_CLIENT_CAPACITY).toBe(50);
    expect(() => allocateVpnHostPart(all, 'alice')).toThrow(PlanError);
    expect(() => allocateVpnHostPart(all, 'alice')).toThrow(
      /alice has no free VPN client address: all 50 addresses \.201–\.250.*sc remove-vpn-client alice DEVICE/,
    );
  });
  test("the address is .host_part of the user's /24 on each host", () => {
    expect(vpnClientAddress({ hostnet: 1, resellerId: 1, userId: 3 }, 201)).toBe('10.17.3.201');
    expect(vpnClientAddress({ hostnet: 2, resellerId: 1, userId: 3 }, 201)).toBe('10.33.3.201');
    expect(() => vpnClientAddress({ hostnet: 1, resellerId: 1, userId: 3 }, 200)).toThrow(/outside the VPN client range/);
  });
  test('common name USER@DEVICE', () => {
    expect(vpnClientCommonName('alice', 'laptop')).toBe('alice@laptop');
  });
});
