// Cross-checks of users.json: reseller references, reseller_id / user_id / uid uniqueness and
// missing allocations. Also tells the container checks whose /24 can be placed in the plan.
import type { DocumentProblem } from './schema-validation.js';
import { hasField, integerField, isRawObject, objectEntries, stringField, type RawObject } from './raw-data.js';

export const ROOT_USER = 'root';
export const ALLOCATE_HINT = 'run "sc allocate" to fill in missing ids and addresses';
import { FIRST_USER_UID } from './model.js';

export { FIRST_USER_UID };

export interface UserCheckResult {
  problems: DocumentProblem[];
  /** Every username, and root (always known, listed or not). */
  known: Set<string>;
  /** Users whose /24 cannot be placed (a problem already reported, or an allocation missing): skip their plan checks. */
  unplaced: Set<string>;
}

export function checkUsers(users: unknown, options: { allowUnallocated: boolean }): UserCheckResult {
  const problems: DocumentProblem[] = [];
  const error = (path: (string | number)[], message: string): void => {
    problems.push({ severity: 'error', kind: 'users', path, message });
  };
  const missing = (name: string, field: string, detail = ''): void => {
    if (!options.allowUnallocated) error([name], `missing ${field}${detail}: ${ALLOCATE_HINT}`);
  };
  const entries = objectEntries(users);
  const byName = new Map(entries);
  const known = new Set([ROOT_USER, ...entries.map(([name]) => name)]);
  const unplaced = new Set<string>();

  const root = byName.get(ROOT_USER);
  if (root && !checkRoot(root, error)) unplaced.add(ROOT_USER);

  // Resellers first: which users of root carry a usable reseller_id.
  const resellerIdOwner = new Map<number, string>();
  const unusableResellers = new Set<string>();
  for (const [name, user] of entries) {
    if (name === ROOT_USER || !hasField(user, 'reseller_id')) continue;
    const reseller = stringField(user, 'reseller');
    if (!belongsToRoot(user)) {
      error([name, 'reseller_id'], `reseller_id is only for resellers, which belong to root; "${name}" belongs to reseller "${String(reseller)}"`);
      unplaced.add(name);
      continue;
    }
    const id = integerField(user, 'reseller_id', 0, 15);
    if (id === undefined) {
      unusableResellers.add(name); // out of range or not an integer: the schema says so
    } else if (id === 0) {
      error([name, 'reseller_id'], "reseller_id 0 is root's; a reseller's id is 1–15");
      unusableResellers.add(name);
    } else if (resellerIdOwner.has(id)) {
      error([name, 'reseller_id'], `reseller_id ${id} is also the id of reseller "${resellerIdOwner.get(id)}"; every reseller needs its own`);
      unusableResellers.add(name);
    } else {
      resellerIdOwner.set(id, name);
    }
  }

  // Each user's reseller reference.
  const customersOf = new Map<string, string[]>();
  for (const [name, user] of entries) {
    if (name === ROOT_USER || belongsToRoot(user)) continue;
    const reseller = stringField(user, 'reseller');
    if (reseller === undefined) {
      unplaced.add(name); // not a string: the schema says so
      continue;
    }
    unplaced.add(name);
    const target = byName.get(reseller);
    if (reseller === name) {
      error([name, 'reseller'], `"${name}" names itself as its reseller; a reseller belongs to "root" (set reseller: root)`);
    } else if (!known.has(reseller)) {
      error([name, 'reseller'], `unknown reseller "${reseller}"`);
    } else if (!target) {
      // A record that is not an object: the schema reports it.
    } else if (!belongsToRoot(target)) {
      error([name, 'reseller'], `"${reseller}" is not a reseller: it belongs to reseller "${String(target.reseller)}", and resellers belong to root`);
    } else if (!hasField(target, 'reseller_id')) {
      const customers = customersOf.get(reseller);
      if (customers) customers.push(name);
      else customersOf.set(reseller, [name]);
    } else if (!unusableResellers.has(reseller)) {
      unplaced.delete(name);
    }
  }
  for (const [reseller, customers] of customersOf) {
    missing(reseller, 'reseller_id', ` ("${reseller}" is the reseller of ${customers.map((c) => `"${c}"`).join(', ')})`);
  }

  // user_id: unique within its reseller's space; uid: unique everywhere.
  const userIdOwner = new Map<string, string>();
  const uidOwner = new Map<number, string>();
  const rootUid = root ? integerField(root, 'uid', 0, 0) : undefined;
  if (rootUid !== undefined) uidOwner.set(rootUid, ROOT_USER);
  for (const [name, user] of entries) {
    if (name === ROOT_USER) continue;
    const space = belongsToRoot(user) ? ROOT_USER : String(stringField(user, 'reseller'));
    if (!hasField(user, 'user_id')) {
      missing(name, 'user_id');
      unplaced.add(name);
    } else {
      const userId = integerField(user, 'user_id', 0, 255);
      if (userId === undefined) {
        unplaced.add(name);
      } else if (userId === 0) {
        error([name, 'user_id'], "user_id 0 is root's; users are 1–255");
        unplaced.add(name);
      } else {
        const key = `${space}\u0000${userId}`;
        const other = userIdOwner.get(key);
        if (other !== undefined) {
          const among = space === ROOT_USER ? 'users of root' : `users of reseller "${space}"`;
          error([name, 'user_id'], `user_id ${userId} is also "${other}"'s; user_ids are unique among the ${among}`);
          unplaced.add(name);
        } else {
          userIdOwner.set(key, name);
        }
      }
    }
    if (!hasField(user, 'uid')) {
      missing(name, 'uid');
      continue;
    }
    const uid = integerField(user, 'uid', 0, Number.MAX_SAFE_INTEGER);
    if (uid === undefined) continue;
    if (uid < FIRST_USER_UID) {
      error([name, 'uid'], `uid ${uid} belongs to the system range; users get uids from ${FIRST_USER_UID} up`);
    } else if (uidOwner.has(uid)) {
      error([name, 'uid'], `uid ${uid} is also "${uidOwner.get(uid)}"'s; every user needs its own uid`);
    } else {
      uidOwner.set(uid, name);
    }
  }
  for (const [name, user] of entries) checkVpnClients(name, user, error);
  return { problems, known, unplaced };
}

/** A user's VPN devices: each name and each host part (.201–.250) once. Shapes are the schema's. */
function checkVpnClients(name: string, user: RawObject, error: (path: (string | number)[], message: string) => void): void {
  const clients = user.vpn_clients;
  if (!Array.isArray(clients)) return;
  if (name === ROOT_USER && clients.length > 0) error([name, 'vpn_clients'], 'root has no VPN clients: the administrator works on the hosts');
  const deviceAt = new Map<string, number>();
  const hostPartOwner = new Map<number, string>();
  clients.forEach((client: unknown, index) => {
    if (!isRawObject(client)) return;
    const device = stringField(client, 'device');
    const hostPart = integerField(client, 'host_part', 201, 250);
    if (device !== undefined) {
      if (deviceAt.has(device))
        error([name, 'vpn_clients', index, 'device'], `VPN client "${device}" is listed twice for ${name} (also at index ${deviceAt.get(device)})`);
      else deviceAt.set(device, index);
    }
    if (hostPart !== undefined) {
      const other = hostPartOwner.get(hostPart);
      if (other !== undefined)
        error(
          [name, 'vpn_clients', index, 'host_part'],
          `host part ${hostPart} is also ${name}'s VPN client "${other}"'s; every device needs its own address`,
        );
      else hostPartOwner.set(hostPart, device ?? `#${index}`);
    }
  });
}

function belongsToRoot(user: RawObject): boolean {
  return !hasField(user, 'reseller') || user.reseller === ROOT_USER;
}

/** root is reseller 0 and user 0 (uid 0): a listed root may only say so. */
function checkRoot(root: RawObject, error: (path: (string | number)[], message: string) => void): boolean {
  let ok = true;
  for (const field of ['reseller_id', 'user_id', 'uid'] as const) {
    if (hasField(root, field) && root[field] !== 0) {
      error([ROOT_USER, field], `root's ${field} is always 0, not ${JSON.stringify(root[field])}`);
      ok = false;
    }
  }
  if (!belongsToRoot(root)) {
    error([ROOT_USER, 'reseller'], `root has no reseller, not ${JSON.stringify(root.reseller)}`);
    ok = false;
  }
  return ok;
}
