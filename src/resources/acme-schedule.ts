// When sc orders a certificate by ACME: a name without a usable one now, a name whose ACME
// certificate expires within the renewal window; and, after a failure, not before its backoff has
// passed (so a name whose DNS points elsewhere does not hammer the CA, nor block the others). Pure.

/** The record sc keeps per name after a failed order (on the host, never in the datastore). */
export interface AcmeFailureRecord {
  readonly failures: number;
  readonly lastError: string;
  /** ISO 8601: no new order before this. */
  readonly notBefore: string;
}

const DAY_MS = 86_400_000;
/** First retry after 5 minutes, doubling, at most a day apart. */
export const BACKOFF_BASE_MS = 5 * 60_000;
export const BACKOFF_MAX_MS = DAY_MS;

export function renewalDue(notAfter: string, now: Date, renewDays: number): boolean {
  return new Date(notAfter).getTime() - now.getTime() < renewDays * DAY_MS;
}

export function recordFailure(previous: AcmeFailureRecord | undefined, error: string, now: Date): AcmeFailureRecord {
  const failures = (previous?.failures ?? 0) + 1;
  const delay = Math.min(BACKOFF_BASE_MS * 2 ** (failures - 1), BACKOFF_MAX_MS);
  return { failures, lastError: error, notBefore: new Date(now.getTime() + delay).toISOString() };
}

export function backingOff(record: AcmeFailureRecord | undefined, now: Date): boolean {
  return record !== undefined && now.getTime() < new Date(record.notBefore).getTime();
}

/** Parses a stored record; anything else counts as none. */
export function parseFailureRecord(text: string | undefined): AcmeFailureRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as Partial<AcmeFailureRecord>;
    return typeof r.failures === 'number' && typeof r.lastError === 'string' && typeof r.notBefore === 'string'
      ? { failures: r.failures, lastError: r.lastError, notBefore: r.notBefore }
      : undefined;
  } catch {
    return undefined;
  }
}
