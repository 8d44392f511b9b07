// srvctl 3's query verbs on a loaded model: `sc out host|user|container NAME` prints shell-quoted
// `key='value'` lines that scripts `eval`, and `sc get … NAME FIELD` prints one raw or derived field.
import { UserError } from '../errors.js';
import { userSubnet } from '../network/address-plan.js';
import { bridgeName } from '../network/interface-names.js';
import { resolveUserNet, ROOT_USERNAME } from '../network/user-network.js';
import { resellerOf } from './id-allocation.js';
import { findHost, type Model, type User } from './model.js';

export type QueryTarget = 'host' | 'user' | 'container';

/** Single-quoted for sh: nothing inside is special except `'`, which becomes `'\''`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A field name as a shell variable name: `http-redirect` → `http_redirect`. */
function variableName(key: string): string {
  const name = key.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The plain fields plus the derived ones that are not stored (stored values win). */
function withDerived(raw: Readonly<Record<string, unknown>>, derived: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(derived)) if (!Object.hasOwn(fields, k) && v !== undefined) fields[k] = v;
  return fields;
}

function containerFields(model: Model, name: string): Record<string, unknown> {
  const c = own(model.containers, name);
  if (!c) throw new UserError(`unknown container "${name}"`);
  const derived: Record<string, unknown> = {};
  const owner = c.user === ROOT_USERNAME ? undefined : own(model.users, c.user);
  derived.reseller = c.user === ROOT_USERNAME ? ROOT_USERNAME : owner ? resellerOf(owner) : undefined;
  const host = findHost(model, c.host);
  if (host) {
    const net = resolveUserNet(model.users, c.user, host.host.hostnet);
    if (!('problem' in net)) {
      derived.bridge = bridgeName(net);
      derived.gateway = userSubnet(net).bridgeAddress;
    }
    derived.hostnet = host.host.hostnet;
    derived.cluster = host.cluster;
  }
  return withDerived(c, derived);
}

function userFields(model: Model, name: string): Record<string, unknown> {
  const user: Readonly<User> | undefined = own(model.users, name);
  if (name === ROOT_USERNAME) return withDerived(user ?? {}, { reseller_id: 0, user_id: 0 });
  if (!user) throw new UserError(`unknown user "${name}"`);
  return withDerived(user, { reseller: resellerOf(user) });
}

function hostFields(model: Model, name: string): Record<string, unknown> {
  const ref = findHost(model, name);
  if (!ref) throw new UserError(`unknown host "${name}": it is not in clusters`);
  return withDerived(ref.host, { clustername: ref.cluster });
}

function fieldsOf(model: Model, what: QueryTarget, name: string): Record<string, unknown> {
  if (what === 'container') return containerFields(model, name);
  if (what === 'user') return userFields(model, name);
  if (what === 'host') return hostFields(model, name);
  throw new UserError(`unknown record type "${String(what)}": host, user or container`);
}

/**
 * srvctl 3 style lines: container → `C='shop.example.com'` then `key='value'`; user → `U='alice'`
 * then fields; host → `SC_HOSTNAME='h'` then `SC_<KEY>='v'` (incl. SC_CLUSTERNAME). `record` holds
 * the same fields unquoted, for `-o json`.
 */
export function outRecord(model: Model, what: QueryTarget, name: string): { lines: string[]; record: Record<string, unknown> } {
  const fields = fieldsOf(model, what, name);
  const identity = what === 'container' ? 'C' : what === 'user' ? 'U' : 'SC_HOSTNAME';
  const lines = [`${identity}=${shellQuote(name)}`];
  for (const [key, value] of Object.entries(fields)) {
    const variable = what === 'host' ? `SC_${variableName(key).toUpperCase()}` : variableName(key);
    lines.push(`${variable}=${shellQuote(valueText(value))}`);
  }
  const identityKey = what === 'container' ? 'container' : what === 'user' ? 'username' : 'hostname';
  return { lines, record: { [identityKey]: name, ...fields } };
}

/** One raw or derived field (`http_redirect` finds `http-redirect`); missing → UserError. */
export function getField(model: Model, what: QueryTarget, name: string, field: string): unknown {
  const fields = fieldsOf(model, what, name);
  const lower = field.toLowerCase();
  const unprefixed = what === 'host' && lower.startsWith('sc_') ? lower.slice(3) : lower;
  const candidates = [field, field.replace(/_/g, '-'), lower, unprefixed];
  for (const key of candidates) {
    if (Object.hasOwn(fields, key) && fields[key] !== undefined) return fields[key];
  }
  throw new UserError(`${what} ${name} has no field ${field}`);
}
