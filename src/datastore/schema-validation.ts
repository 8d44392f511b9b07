// Checks each datastore document against its JSON Schema (schemas/*.schema.json, ajv 2020) and
// turns ajv's errors into readable problems at JSON paths; also warns about unknown fields.
import type { ErrorObject } from 'ajv';
import { DATASTORE_KINDS, type DatastoreKind } from './model.js';
import * as generated from './schema-validators.generated.js';
import { parseJsonPointer, type DocumentPath } from './source-document.js';

/** One problem in one document, located by a path into its data. */
export interface DocumentProblem {
  severity: 'error' | 'warning';
  kind: DatastoreKind;
  path: DocumentPath;
  message: string;
}

/** An ajv validation function (compiled at build time by scripts/generate-validators.mjs). */
interface ValidateFunction {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

// allErrors and verbose (each error carries its data and parent schema), as describeSchemaError needs.
const validators = Object.fromEntries(
  DATASTORE_KINDS.map((kind) => [kind, (generated as Record<string, unknown>)[kind] as ValidateFunction]),
) as Record<DatastoreKind, ValidateFunction>;
const knownFields = generated.KNOWN_FIELDS as Record<'host' | 'user' | 'container', readonly string[]>;

/** Schema errors of one document's data (an empty document is `{}`), every one of them. */
export function schemaProblems(kind: DatastoreKind, data: unknown): DocumentProblem[] {
  const validate = validators[kind];
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  // An anyOf failure also reports each branch's failure (under the branches' own schema paths when
  // they are $refs); the anyOf's own message says it all. No schema here mixes anyOf with other rules.
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const covered = (e: ErrorObject): boolean => e.keyword !== 'anyOf' && e.propertyName === undefined && anyOfPaths.has(e.instancePath);
  return errors
    .filter((e) => e.keyword !== 'propertyNames' && !covered(e))
    .map((e) => ({ severity: 'error' as const, kind, ...describeSchemaError(e) }));
}

// Names and rules for the patterned strings, keyed by the schema definition or property name.
const NAMED_RULES: Record<string, { noun: string; rule: string }> = {
  containerName: { noun: 'container name', rule: "must be a lowercase DNS name (letters, digits, '-' and '.'), at most 64 characters" },
  domainName: { noun: 'domain name', rule: "must be a lowercase DNS name (letters, digits, '-' and '.'), at most 253 characters" },
  fqdn: { noun: 'host name', rule: "must be a lowercase DNS name (letters, digits, '-' and '.')" },
  userName: { noun: 'user name', rule: "must be a lowercase DNS label (letters, digits and '-') starting with a letter, at most 32 characters" },
  ownerName: { noun: 'user name', rule: "must be a lowercase DNS label (letters, digits and '-') starting with a letter, at most 32 characters" },
  clusterName: { noun: 'cluster name', rule: "must be letters, digits, '_' and '-', at most 63 characters" },
  images: { noun: 'image type', rule: "must be lowercase letters, digits, '_' and '-', at most 32 characters" },
  type: { noun: 'image type', rule: "must be lowercase letters, digits, '_' and '-', at most 32 characters" },
  interface: { noun: 'interface name', rule: "must be 1–15 letters, digits, '_', '.', ':' or '-'" },
  bridge: { noun: 'bridge name', rule: "must be 1–15 letters, digits, '_', '.' or '-'" },
  redirectUrl: { noun: 'URL', rule: 'must be an http:// or https:// URL without spaces or quotes' },
  'http-redirect': { noun: 'http-redirect', rule: 'must be "none", "https" or an http(s) URL without spaces or quotes' },
  'https-redirect': { noun: 'https-redirect', rule: 'must be "none", "http" or an http(s) URL without spaces or quotes' },
  ssh_keys: { noun: 'SSH key', rule: 'must be one line' },
  prefix: { noun: 'prefix', rule: 'must be a number from 0 to 32' },
  http_port: { noun: 'port', rule: 'must be a port number' },
  https_port: { noun: 'port', rule: 'must be a port number' },
};

const RANGE_HINTS: Record<string, string> = {
  hostnet: 'hostnet H owns 10.(16·H).0.0/12',
  reseller_id: 'resellers are 1–15, root is 0',
  user_id: "a user's number inside its reseller, the third octet of its addresses",
};

const SCHEMA_KEYWORDS = new Set([
  '#',
  '$defs',
  'properties',
  'additionalProperties',
  'propertyNames',
  'items',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  'pattern',
  'maxLength',
  'minLength',
  'type',
  'format',
  'enum',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'required',
]);

/** The definition or property a schema path is about: `#/$defs/container/properties/type/pattern` → `type`. */
function subjectOf(schemaPath: string): string | undefined {
  const names = schemaPath.split('/').filter((s) => !SCHEMA_KEYWORDS.has(s) && !/^\d+$/.test(s));
  return names[names.length - 1];
}

function describeSchemaError(e: ErrorObject): { path: DocumentPath; message: string } {
  const path: (string | number)[] = parseJsonPointer(e.instancePath);
  const subject = subjectOf(e.schemaPath);
  const named = subject === undefined ? undefined : NAMED_RULES[subject];
  const value: unknown = e.data;
  if (e.propertyName !== undefined) {
    path.push(e.propertyName);
    const noun = named?.noun ?? 'name';
    return { path, message: `invalid ${noun} ${JSON.stringify(e.propertyName)}: ${named?.rule ?? plainMessage(e)}` };
  }
  const field = path[path.length - 1];
  switch (e.keyword) {
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return { path, message: `missing required field "${missing}"` };
    }
    case 'additionalProperties': {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return { path: [...path, extra], message: `unknown field "${extra}"${known.length ? ` (known: ${known.join(', ')})` : ''}` };
    }
    case 'type':
      return { path, message: `must be ${typeNames(String((e.params as { type: string }).type))}, not ${describeValue(value)}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum': {
      const schema = (e.parentSchema ?? {}) as { minimum?: number; maximum?: number; type?: unknown };
      const kind = schema.type === 'integer' ? 'an integer' : 'a number';
      const range =
        schema.minimum !== undefined && schema.maximum !== undefined
          ? `${kind} from ${schema.minimum} to ${schema.maximum}`
          : `${kind} ${(e.params as { comparison: string }).comparison} ${String((e.params as { limit: number }).limit)}`;
      const hint = typeof field === 'string' && RANGE_HINTS[field] ? ` (${RANGE_HINTS[field]})` : '';
      return { path, message: `${describeValue(value)} is out of range: must be ${range}${hint}` };
    }
    case 'format': {
      const format = String((e.params as { format: string }).format);
      const what = format === 'ipv4' ? 'an IPv4 address' : format === 'ipv6' ? 'an IPv6 address' : `a valid ${format}`;
      return { path, message: `${describeValue(value)} is not ${what}` };
    }
    case 'enum': {
      const allowed = ((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v));
      return { path, message: `must be one of ${allowed.join(', ')}, not ${describeValue(value)}` };
    }
    case 'pattern':
    case 'maxLength':
    case 'minLength':
    case 'anyOf':
      if (named) return { path, message: `invalid ${named.noun} ${describeValue(value)}: ${named.rule}` };
      return { path, message: `${describeValue(value)} ${plainMessage(e)}` };
    default:
      return { path, message: plainMessage(e) };
  }
}

function plainMessage(e: ErrorObject): string {
  const description = (e.parentSchema as { description?: string } | undefined)?.description;
  if (e.keyword === 'pattern')
    return description ? `is not valid: ${description}` : `must match ${String((e.params as { pattern: string }).pattern)}`;
  return e.message ?? `fails the schema rule "${e.keyword}"`;
}

function typeNames(types: string): string {
  const article: Record<string, string> = {
    integer: 'an integer',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    object: 'an object (a mapping of names to values)',
    array: 'a list',
    null: 'null',
  };
  return types
    .split(',')
    .map((t) => article[t] ?? t)
    .join(' or ');
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// srvctl 3 wrote these fields; they are carried along silently (sc does not use them).
export const SRVCTL3_FIELDS: Readonly<Record<'host' | 'user' | 'container', readonly string[]>> = {
  host: ['dns_server', 'mac_address', 'host_key', 'dev_server'],
  user: ['added_by_username', 'added_on_datestamp', 'codepad', 'id', 'is_reseller_id', 'projects'],
  container: [
    'creation_time',
    'br',
    'gateway',
    'interface',
    'users',
    'readers',
    'altnames',
    'static',
    'use_gsuite',
    'use_mailchimp',
    'mx',
    'dns_records',
    'google-site-verification',
    'facebook-domain-verification',
    'dkim-google-domainkey',
    'dkim-default-domainkey',
    'dkim-mail-domainkey',
    'dns_query',
    'dns_scan',
    'www_scan',
    'host_key',
  ],
};

/** Warnings for fields of hosts, users and containers that neither sc nor srvctl 3 knows (typos, mostly). */
export function unknownFieldProblems(kind: DatastoreKind, data: unknown): DocumentProblem[] {
  if (kind === 'settings' || !isObject(data)) return [];
  const objectKind = kind === 'clusters' ? 'host' : kind === 'users' ? 'user' : 'container';
  const known = new Set([...knownFields[objectKind], ...SRVCTL3_FIELDS[objectKind]]);
  let knownList: string[] | undefined;
  const problems: DocumentProblem[] = [];
  // Paths are built only for a record with an unknown field (thousands of records have none).
  const check = (value: unknown, first: string, second?: string): void => {
    if (!isObject(value)) return;
    for (const field of Object.keys(value)) {
      if (known.has(field)) continue;
      const near = (knownList ??= [...known]).find((k) => editDistance(k, field) <= 2);
      const at: DocumentPath = second === undefined ? [first] : [first, second];
      problems.push({
        severity: 'warning',
        kind,
        path: [...at, field],
        message: `unknown field "${field}" on ${objectKind} "${String(at[at.length - 1])}" is ignored${near ? ` (did you mean "${near}"?)` : ''}`,
      });
    }
  };
  for (const name of Object.keys(data)) {
    const value = data[name];
    if (kind !== 'clusters') check(value, name);
    else if (isObject(value)) for (const host of Object.keys(value)) check(value[host], name, host);
  }
  return problems;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
