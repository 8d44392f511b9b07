// Typed reads from datastore data that may not have passed its schema: cross-checks run on
// every document (so all problems are reported at once) and must not trust a field's type.
import { deepFreeze } from './model.js';

export type RawObject = Record<string, unknown>;

export function isRawObject(value: unknown): value is RawObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object-valued entries of a mapping, in document order (other values are the schema's to report). */
export function objectEntries(value: unknown): [string, RawObject][] {
  if (!isRawObject(value)) return [];
  const entries: [string, RawObject][] = [];
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const item = value[key];
    if (isRawObject(item)) entries.push([key, item]);
  }
  return entries;
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

/**
 * A frozen deep copy of parsed datastore data (JSON.parse / yaml's toJS: plain objects, arrays,
 * scalars): the model a load hands out. Copy and freeze in one walk, several times faster than
 * structuredClone and a separate deep freeze on the thousands of records of a large datastore.
 * Anything else (a Date from a YAML timestamp, say) is copied by structuredClone, then frozen.
 */
export function frozenCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  // Index loops, no callbacks: this walk visits every value of the datastore once.
  if (Array.isArray(value)) {
    const items = value as unknown[];
    const copy = new Array<unknown>(items.length);
    for (let i = 0; i < items.length; i++) copy[i] = frozenCopy(items[i]);
    return Object.freeze(copy) as T;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return deepFreeze(structuredClone(value));
  const copy: RawObject = proto === null ? (Object.create(null) as RawObject) : {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const item = frozenCopy((value as RawObject)[key]);
    // A key "__proto__" (JSON.parse makes it an own property) stays an own property, as in structuredClone.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return Object.freeze(copy) as T;
}
