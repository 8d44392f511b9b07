// Typed reads from datastore data that may not have passed its schema: cross-checks run on
// every document (so all problems are reported at once) and must not trust a field's type.

export type RawObject = Record<string, unknown>;

export function isRawObject(value: unknown): value is RawObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object-valued entries of a mapping, in document order (other values are the schema's to report). */
export function objectEntries(value: unknown): [string, RawObject][] {
  if (!isRawObject(value)) return [];
  return Object.entries(value).filter((entry): entry is [string, RawObject] => isRawObject(entry[1]));
}

export function stringField(record: RawObject, field: string): string | undefined {
  const value = record[field];
  return typeof value === 'string' ? value : undefined;
}

/** An integer field within [min, max], or undefined (absent, or invalid — which the schema reports). */
export function integerField(record: RawObject, field: string, min: number, max: number): number | undefined {
  const value = record[field];
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
}

export function hasField(record: RawObject, field: string): boolean {
  return Object.hasOwn(record, field) && record[field] !== undefined;
}
