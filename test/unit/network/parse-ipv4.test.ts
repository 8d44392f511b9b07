// parseIPv4Octets is one regular expression; it must accept exactly what the ipaddr.js-based
// definition accepted: a four-part decimal address without leading zeros, optionally /0–32.
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { parseIPv4Octets } from '../../../src/network/address-plan.js';

function reference(text: string): number[] | undefined {
  const address = text.includes('/') && ipaddr.IPv4.isValidCIDR(text) ? text.slice(0, text.indexOf('/')) : text;
  if (!ipaddr.IPv4.isValidFourPartDecimal(address)) return undefined;
  return ipaddr.IPv4.parse(address).octets;
}

describe('parseIPv4Octets', () => {
  test.each(['10.17.3.20', '0.0.0.0', '255.255.255.255', '10.17.3.1/24', '10.17.3.1/0', '10.17.3.1/32', '10.17.3.1/024'])('accepts %s', (text) => {
    expect(parseIPv4Octets(text)).toEqual(reference(text));
    expect(parseIPv4Octets(text)).toBeDefined();
  });

  test.each([
    '010.1.2.3',
    '10.1.515',
    '10.1.2.256',
    '10.1.2.3/33',
    '10.1.2.3/',
    ' 10.1.2.3',
    '10.1.2.3 ',
    '1.2.3',
    '1.2.3.4.5',
    '0x10.1.2.3',
    '10.1.2.3/8/8',
    '',
  ])('refuses %j', (text) => {
    expect(parseIPv4Octets(text)).toBeUndefined();
    expect(reference(text)).toBeUndefined();
  });

  test('agrees with the ipaddr.js definition on generated strings', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '0x1', '', '1e1', ' 1'));
    const text = fc.oneof(
      fc
        .tuple(octet, octet, octet, octet, fc.option(fc.oneof(fc.integer({ min: 0, max: 40 }).map(String), fc.constantFrom('', '08', 'x'))))
        .map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}${p === null ? '' : `/${p}`}`),
      fc.string({ unit: fc.constantFrom('1', '0', '2', '5', '.', '/', 'x'), maxLength: 16 }),
    );
    fc.assert(
      fc.property(text, (t) => expect(parseIPv4Octets(t)).toEqual(reference(t))),
      { numRuns: 5000 },
    );
  });
});
