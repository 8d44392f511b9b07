// `sc allocate` (SPEC §2): after a hand edit, fill in every missing reseller_id, user_id, uid and
// container ip — deterministically, in document order, around all stored values — and write back.
import { UserError, type Diagnostic } from '../errors.js';
import { allocateContainerAddress } from '../network/address-plan.js';
import { resolveUserNet, ROOT_USERNAME } from '../network/user-network.js';
import { runDatastoreEdit, type DatastoreEdit, type EditContext, type EditResult } from './edit-session.js';
import { nextResellerId, nextUid, nextUserId, resellerOf } from './id-allocation.js';
import { findHost, type User, type Users } from './model.js';

type Allocated = Record<string, number | string>;

/** Working copy of the users: each allocation is visible to the next one. */
function mutableUsers(users: Readonly<Users>): Record<string, User> {
  return Object.fromEntries(Object.entries(users).map(([name, user]) => [name, { ...user }]));
}

function problem(edit: DatastoreEdit, kind: 'users' | 'containers', path: string[], message: string): Diagnostic {
  return { severity: 'error', ...edit.where(kind, path), message };
}

function allocateUserIds(edit: DatastoreEdit, users: Record<string, User>, out: Map<string, Allocated>, problems: Diagnostic[]): void {
  const note = (name: string, field: string, value: number): void => {
    out.set(name, { ...out.get(name), [field]: value });
  };
  const attempt = (name: string, field: string, allocate: () => number): void => {
    try {
      const value = allocate();
      (users[name] as Record<string, unknown>)[field] = value;
      note(name, field, value);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.push(problem(edit, 'users', [name], `cannot allocate ${field} for ${name}: ${error.message}`));
    }
  };
  const names = Object.keys(users).filter((n) => n !== ROOT_USERNAME);
  // Resellers are the users of root that other users name as their reseller.
  const named = new Set(names.map((n) => resellerOf(users[n] as User)));
  for (const name of names) {
    const user = users[name] as User;
    if (named.has(name) && resellerOf(user) === ROOT_USERNAME && user.reseller_id === undefined) {
      attempt(name, 'reseller_id', () => nextResellerId(users));
    }
  }
  for (const name of names) {
    const user = users[name] as User;
    if (user.user_id === undefined) attempt(name, 'user_id', () => nextUserId(users, resellerOf(user)));
  }
  for (const name of names) {
    if ((users[name] as User).uid === undefined) attempt(name, 'uid', () => nextUid(users));
  }
}

function allocateAddresses(edit: DatastoreEdit, users: Readonly<Users>, out: Map<string, Allocated>, problems: Diagnostic[]): void {
  const { model } = edit;
  const used = Object.values(model.containers).flatMap((c) => (c.ip !== undefined ? [c.ip] : []));
  for (const [name, container] of Object.entries(model.containers)) {
    if (container.ip !== undefined) continue;
    const host = findHost(model, container.host);
    if (!host) {
      problems.push(problem(edit, 'containers', [name, 'host'], `cannot allocate an ip for ${name}: unknown host "${container.host}"`));
      continue;
    }
    const net = resolveUserNet(users, container.user, host.host.hostnet);
    if ('problem' in net) {
      problems.push(problem(edit, 'containers', [name, 'user'], `cannot allocate an ip for ${name}: ${net.problem}`));
      continue;
    }
    try {
      const ip = allocateContainerAddress(net, used, container.user);
      used.push(ip);
      out.set(name, { ip });
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.push(problem(edit, 'containers', [name], `cannot allocate an ip for ${name}: ${error.message}`));
    }
  }
}

function describe(kind: string, allocated: Map<string, Allocated>): string[] {
  return [...allocated].map(
    ([name, fields]) =>
      `  ${kind} ${name}: ${Object.entries(fields)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
  );
}

/** Fills in every missing allocation and writes it back (nothing on `dryRun`). */
export async function allocateMissing(ctx: EditContext, opts: { dryRun?: boolean } = {}): Promise<EditResult> {
  return runDatastoreEdit(ctx, { command: 'allocate', loadUnallocated: true, dryRun: opts.dryRun }, (edit) => {
    const problems: Diagnostic[] = [];
    const users = mutableUsers(edit.model.users);
    const userFields = new Map<string, Allocated>();
    allocateUserIds(edit, users, userFields, problems);
    const containerFields = new Map<string, Allocated>();
    allocateAddresses(edit, users, containerFields, problems);
    if (problems.length > 0) {
      throw new UserError(`allocate: ${problems.length} allocation(s) impossible; nothing was written`, problems);
    }
    for (const [name, fields] of userFields) {
      for (const [field, value] of Object.entries(fields)) edit.document('users').set([name, field], value);
      edit.record({ kind: 'users', key: name, action: 'update', value: fields });
    }
    for (const [name, fields] of containerFields) {
      for (const [field, value] of Object.entries(fields)) edit.document('containers').set([name, field], value);
      edit.record({ kind: 'containers', key: name, action: 'update', value: fields });
    }
    const count = [...userFields.values(), ...containerFields.values()].reduce((n, f) => n + Object.keys(f).length, 0);
    if (count === 0) return 'nothing to allocate: every user, reseller and container already has its ids and address';
    const verb = opts.dryRun ? 'would allocate' : 'allocated';
    return [`${verb} ${count} value(s):`, ...describe('user', userFields), ...describe('container', containerFields)].join('\n');
  });
}
