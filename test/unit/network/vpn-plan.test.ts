// Host-to-host VPN addressing: one deterministic link per pair of hostnets inside 10.0.0.0/12.
import ipaddr from 'ipaddr.js';
import { PlanError } from '../../../src/network/address-plan.js';
import { isValidInterfaceName } from '../../../src/network/interface-names.js';
import { VPN_RESERVED_CIDR, parseVpnDeviceName, vpnLink, vpnLinksOf } from '../../../src/network/vpn-plan.js';

const reserved = ipaddr.IPv4.parseCIDR(VPN_RESERVED_CIDR);
const containerSpace = ipaddr.IPv4.parseCIDR('10.16.0.0/12');

function allPairs(): [number, number][] {
  const pairs: [number, number][] = [];
  for (let a = 1; a <= 15; a++) for (let b = a + 1; b <= 15; b++) pairs.push([a, b]);
  return pairs;
}

describe('vpnLink', () => {
  it('numbers the link between hostnets 1 and 2', () => {
    const link = vpnLink(2, 1);
    expect(link).toMatchObject({ low: 1, high: 2, port: 11018, device: 'scv-1-2', subnet: '10.1.2.0/24' });
    expect(link.addressOf(1)).toBe('10.1.2.1');
    expect(link.addressOf(2)).toBe('10.1.2.2');
    expect(link.peerAddressOf(1)).toBe('10.1.2.2');
    expect(link.peerAddressOf(2)).toBe('10.1.2.1');
    expect(link.routeVia(1)).toBe('10.32.0.0/12');
    expect(link.routeVia(2)).toBe('10.16.0.0/12');
  });

  it('is symmetric and unique per pair, inside 10.0.0.0/12, with unique ports and valid devices', () => {
    const ports = new Set<number>();
    const devices = new Set<string>();
    const addresses = new Set<string>();
    for (const [a, b] of allPairs()) {
      const forward = vpnLink(a, b);
      const backward = vpnLink(b, a);
      const plain = (link: typeof forward) => ({
        low: link.low,
        high: link.high,
        port: link.port,
        device: link.device,
        subnet: link.subnet,
        ends: [a, b].map((h) => [link.addressOf(h), link.peerAddressOf(h), link.routeVia(h)]),
      });
      expect(plain(backward)).toEqual(plain(forward));

      expect(forward.addressOf(a)).toBe(forward.peerAddressOf(b));
      expect(forward.addressOf(b)).toBe(forward.peerAddressOf(a));
      expect(forward.addressOf(a)).not.toBe(forward.addressOf(b));
      for (const h of [a, b]) {
        const address = ipaddr.IPv4.parse(forward.addressOf(h));
        expect(address.match(reserved)).toBe(true);
        expect(address.match(containerSpace)).toBe(false);
        expect(addresses.has(forward.addressOf(h))).toBe(false);
        addresses.add(forward.addressOf(h));
      }
      expect(forward.routeVia(a)).toBe(`10.${16 * b}.0.0/12`);
      expect(forward.routeVia(b)).toBe(`10.${16 * a}.0.0/12`);

      expect(ports.has(forward.port)).toBe(false);
      ports.add(forward.port);
      expect(forward.port).toBeGreaterThan(11000);
      expect(forward.port).toBeLessThan(65536);

      expect(isValidInterfaceName(forward.device)).toBe(true);
      expect(forward.device.length).toBeLessThanOrEqual(15);
      expect(devices.has(forward.device)).toBe(false);
      devices.add(forward.device);
      expect(parseVpnDeviceName(forward.device)).toEqual({ low: forward.low, high: forward.high });
    }
    expect(ports.size).toBe(105);
    expect(devices.size).toBe(105);
  });

  it.each([
    [1, 1, /two different hostnets/],
    [0, 2, /hostnet 0 is out of range/],
    [1, 16, /hostnet 16 is out of range/],
    [1.5, 2, /hostnet 1.5 is out of range/],
  ])('rejects vpnLink(%p, %p)', (a, b, message) => {
    expect(() => vpnLink(a, b)).toThrow(PlanError);
    expect(() => vpnLink(a, b)).toThrow(message);
  });

  it('refuses to answer for a hostnet that is not an end of the link', () => {
    const link = vpnLink(3, 7);
    expect(() => link.addressOf(4)).toThrow(/hostnet 4 is not an end of the VPN link between hostnets 3 and 7/);
    expect(() => link.peerAddressOf(4)).toThrow(PlanError);
    expect(() => link.routeVia(4)).toThrow(PlanError);
  });
});

describe('vpnLinksOf', () => {
  it('links a host to every other hostnet of its cluster, once, in hostnet order', () => {
    const links = vpnLinksOf(2, [3, 1, 2, 3]);
    expect(links.map((l) => l.device)).toEqual(['scv-1-2', 'scv-2-3']);
    expect(links.map((l) => l.routeVia(2))).toEqual(['10.16.0.0/12', '10.48.0.0/12']);
    expect(vpnLinksOf(5, [5])).toEqual([]);
  });
});

describe('parseVpnDeviceName', () => {
  it.each(['scv-2-1', 'scv-1-1', 'scv-0-1', 'scv-1-16', 'scv-01-2', 'sc-1-2', 'scv-1-2-3'])('refuses %p', (name) => {
    expect(parseVpnDeviceName(name)).toBeUndefined();
  });
});
