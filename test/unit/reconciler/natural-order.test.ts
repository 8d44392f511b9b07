// compareNatural walks both strings in place; it must order exactly like the plain definition:
// split into digit / non-digit runs, digit runs by magnitude (then the shorter run), others by code units.
import fc from 'fast-check';
import { compareNatural } from '../../../src/reconciler/natural-order.js';

function reference(a: string, b: string): number {
  const left = a.match(/(\d+)|(\D+)/g) ?? [];
  const right = b.match(/(\d+)|(\D+)/g) ?? [];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i] as string;
    const y = right[i] as string;
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) {
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return left.length - right.length;
}

describe('compareNatural', () => {
  test('orders names as people read them', () => {
    const names = ['sc-17-10', 'sc-17-9', 'sc-2-1', 'sc-17-09', 'sc-17', 'a', '', 'sc-17-9a', 'sc-17-9-1', 'B', '007', '7', '10'];
    expect([...names].sort(compareNatural)).toEqual([
      '',
      '7',
      '007',
      '10',
      'B',
      'a',
      'sc-2-1',
      'sc-17',
      'sc-17-9',
      'sc-17-9-1',
      'sc-17-9a',
      'sc-17-09',
      'sc-17-10',
    ]);
  });

  test('agrees with the run-by-run definition (sign), on names made of digits, letters and separators', () => {
    const name = fc.string({ unit: fc.constantFrom('0', '1', '9', '00', 'a', 'b', 'B', '-', '.', 'é', '\u{1F600}'), maxLength: 12 });
    fc.assert(
      fc.property(name, name, (a, b) => {
        expect(Math.sign(compareNatural(a, b)) || 0).toBe(Math.sign(reference(a, b)) || 0);
        expect(Math.sign(compareNatural(b, a)) || 0).toBe(-Math.sign(compareNatural(a, b)) || 0);
      }),
      { numRuns: 5000 },
    );
  });
});
