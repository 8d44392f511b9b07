// When sc orders by ACME: renewal inside the window, and the backoff after failures.
import { backingOff, BACKOFF_BASE_MS, BACKOFF_MAX_MS, parseFailureRecord, recordFailure, renewalDue } from '../../../src/resources/acme-schedule.js';

const now = new Date('2027-01-10T00:00:00.000Z');
const days = (n: number) => new Date(now.getTime() + n * 86_400_000).toISOString();

describe('acme schedule', () => {
  it('renews within the window, not before', () => {
    expect(renewalDue(days(29), now, 30)).toBe(true);
    expect(renewalDue(days(31), now, 30)).toBe(false);
    expect(renewalDue(days(-1), now, 30)).toBe(true);
  });

  it('backs off 5 minutes, doubling, at most a day', () => {
    const first = recordFailure(undefined, 'no route', now);
    expect(first).toEqual({ failures: 1, lastError: 'no route', notBefore: new Date(now.getTime() + BACKOFF_BASE_MS).toISOString() });
    const second = recordFailure(first, 'again', now);
    expect(second.notBefore).toBe(new Date(now.getTime() + 2 * BACKOFF_BASE_MS).toISOString());
    let r = second;
    for (let i = 0; i < 20; i++) r = recordFailure(r, 'x', now);
    expect(r.notBefore).toBe(new Date(now.getTime() + BACKOFF_MAX_MS).toISOString());
    expect(backingOff(first, now)).toBe(true);
    expect(backingOff(first, new Date(now.getTime() + BACKOFF_BASE_MS))).toBe(false);
    expect(backingOff(undefined, now)).toBe(false);
  });

  it('reads back what it stored; anything else is no record', () => {
    const r = recordFailure(undefined, 'e', now);
    expect(parseFailureRecord(JSON.stringify(r))).toEqual(r);
    expect(parseFailureRecord('{"failures":"x"}')).toBeUndefined();
    expect(parseFailureRecord('nope')).toBeUndefined();
    expect(parseFailureRecord(undefined)).toBeUndefined();
  });
});
