// Users and resellers: srvctl 3.2's resellers (users with a reseller_id; the default data ships
// a…x, ids 1–24) that own users or containers are renumbered onto sc's 1–15; every user gets a
// user_id inside its reseller (its old global one when that is free there); uids are kept. Public
// keys from users/NAME/*.pub become ssh_keys; passwords, hashes and private keys stay behind.
import { lowestFree } from '../network/address-plan.js';
import { ROOT_USERNAME } from '../network/user-network.js';
import type { ImportContext } from './import-context.js';
import type { ResellerMapping, UserMapping } from './migration-report.js';
import { carriedSrvctl3Fields, type Record3 } from './srvctl3-fields.js';
import { userPublicKeys } from './srvctl3-keys.js';

export interface UserPlan {
  /** The new users document, in the srvctl 3 file's order. */
  readonly users: Record<string, Record3>;
  readonly mappings: UserMapping[];
  readonly resellers: ResellerMapping[];
}

interface OldUser {
  readonly name: string;
  readonly record: Record3;
  readonly oldResellerId?: number;
  /** The srvctl 3 reseller it belongs to (`root` for resellers and root's own users). */
  readonly owner: string;
  readonly oldUserId?: number;
  readonly uid?: number;
}

const isRecord = (value: unknown): value is Record3 => typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0;

/** How srvctl 3.2 stored NaN: JSON.stringify writes null; `srvctl put` writes the string. */
const looksLikeNaN = (value: unknown): boolean => value === null || value === 'NaN' || (typeof value === 'number' && Number.isNaN(value));

const E1_FIELDS = ['id', 'is_reseller_id'];
const HANDLED = ['name', 'reseller', 'reseller_id', 'user_id', 'uid', 'ssh_keys', 'password', ...E1_FIELDS];

function readUser(ctx: ImportContext, name: string, record: Record3): OldUser | undefined {
  let ok = true;
  const fail = (path: (string | number)[], message: string): void => {
    ctx.error('users', [name, ...path], message);
    ok = false;
  };
  let oldResellerId: number | undefined;
  if (record.reseller_id !== undefined) {
    if (isCount(record.reseller_id)) oldResellerId = record.reseller_id;
    else fail(['reseller_id'], `reseller_id ${JSON.stringify(record.reseller_id)} is not a number`);
  }
  let oldUserId: number | undefined;
  if (record.user_id !== undefined) {
    if (isCount(record.user_id) && record.user_id <= 255) oldUserId = record.user_id;
    else if (!looksLikeNaN(record.user_id)) fail(['user_id'], `user_id ${JSON.stringify(record.user_id)} is not a number 0–255`);
    // NaN: srvctl 3.2's new_reseller never set one; sc gives the user a new one anyway.
  }
  let uid: number | undefined;
  if (record.uid !== undefined) {
    if (isCount(record.uid) && record.uid <= 4294967294) uid = record.uid;
    else if (looksLikeNaN(record.uid)) {
      fail(
        ['uid'],
        `uid ${JSON.stringify(record.uid)}: srvctl 3.2 stored NaN here (its new_reseller bug counted from a user without user_id); set the uid the Linux account really has (\`id -u ${name}\`)`,
      );
    } else fail(['uid'], `uid ${JSON.stringify(record.uid)} is not a number`);
  }
  const reseller = record.reseller;
  if (reseller !== undefined && typeof reseller !== 'string') fail(['reseller'], `reseller ${JSON.stringify(reseller)} is not a username`);
  let owner = ROOT_USERNAME;
  if (name === ROOT_USERNAME) owner = ROOT_USERNAME;
  else if (oldResellerId !== undefined) {
    if (typeof reseller === 'string' && reseller !== name && reseller !== ROOT_USERNAME) {
      ctx.warn('users', name, `a reseller (reseller_id ${oldResellerId}) that names "${reseller}" as its reseller: resellers belong to root in sc`);
    }
  } else if (typeof reseller === 'string' && reseller !== name) owner = reseller;
  if (!ok) return undefined;
  return {
    name,
    record,
    owner,
    ...(oldResellerId !== undefined ? { oldResellerId } : {}),
    ...(oldUserId !== undefined ? { oldUserId } : {}),
    ...(uid !== undefined ? { uid } : {}),
  };
}

export function mapUsers(ctx: ImportContext, containersOf: ReadonlyMap<string, number>): UserPlan {
  const data = ctx.document('users').data as Record3;
  const olds: OldUser[] = [];
  for (const [name, record] of Object.entries(data)) {
    if (!isRecord(record)) {
      ctx.error('users', [name], 'a user must be an object (name, uid, …)');
      continue;
    }
    const user = readUser(ctx, name, record);
    if (user) olds.push(user);
  }
  const byName = new Map(olds.map((u) => [u.name, u]));

  // Every user's srvctl 3 reseller must exist and be one.
  const members = new Map<string, OldUser[]>();
  for (const user of olds) {
    if (user.name === ROOT_USERNAME || user.oldResellerId !== undefined || user.owner === ROOT_USERNAME) continue;
    const reseller = byName.get(user.owner);
    const declared = Object.hasOwn(data, user.owner);
    if (!declared) ctx.error('users', [user.name, 'reseller'], `reseller "${user.owner}" does not exist in users.json`);
    else if (reseller && reseller.oldResellerId === undefined) {
      ctx.error('users', [user.name, 'reseller'], `"${user.owner}" is named as reseller but is not one (it has no reseller_id)`);
    } else if (reseller) members.set(user.owner, [...(members.get(user.owner) ?? []), user]);
  }

  // uids are kept, so two users with one uid cannot both be imported.
  const uidOwner = new Map<number, string>();
  for (const user of olds) {
    if (user.uid === undefined) continue;
    const other = uidOwner.get(user.uid);
    if (other !== undefined) ctx.error('users', [user.name, 'uid'], `uid ${user.uid} is also the uid of "${other}"`);
    else uidOwner.set(user.uid, user.name);
  }

  // Resellers that own users or containers get sc reseller ids, in order of their old one.
  const containerCount = (name: string): number => containersOf.get(name) ?? 0;
  const oldResellers = olds.filter((u) => u.name !== ROOT_USERNAME && u.oldResellerId !== undefined);
  const used = oldResellers
    .filter((r) => (members.get(r.name)?.length ?? 0) > 0 || containerCount(r.name) > 0)
    .sort((a, b) => (a.oldResellerId ?? 0) - (b.oldResellerId ?? 0) || (a.name < b.name ? -1 : 1));
  if (used.length > 15) {
    ctx.error(
      'users',
      [],
      `${used.length} resellers own users or containers, but sc's network plan has room for 15: ` +
        used
          .map((r) => {
            const users = members.get(r.name) ?? [];
            const containers = containerCount(r.name) + users.reduce((n, u) => n + containerCount(u.name), 0);
            return `${r.name} (reseller_id ${r.oldResellerId}, ${users.length} users, ${containers} containers)`;
          })
          .join(', ') +
        '; move the users and containers of the smaller ones to other resellers in srvctl 3 first',
    );
  }
  const newResellerId = new Map(used.slice(0, 15).map((r, i) => [r.name, i + 1]));

  // sc's reseller of each user: root for resellers (used or not) and root's own users.
  const scReseller = (user: OldUser): string => (user.oldResellerId !== undefined || user.owner === ROOT_USERNAME ? ROOT_USERNAME : user.owner);
  const groups = new Map<string, OldUser[]>();
  for (const user of olds) if (user.name !== ROOT_USERNAME) groups.set(scReseller(user), [...(groups.get(scReseller(user)) ?? []), user]);
  const newUserId = new Map<string, number>();
  for (const [reseller, group] of groups) {
    const ordered = [...group].sort((a, b) => (a.oldUserId ?? 256) - (b.oldUserId ?? 256) || (a.name < b.name ? -1 : 1));
    const taken = new Set<number>();
    const later: OldUser[] = [];
    for (const user of ordered) {
      // srvctl 3.2's user_id was global and unique: kept where it fits, so the third octet often stays.
      if (user.oldUserId !== undefined && user.oldUserId >= 1 && !taken.has(user.oldUserId)) {
        newUserId.set(user.name, user.oldUserId);
        taken.add(user.oldUserId);
      } else later.push(user);
    }
    for (const user of later) {
      const id = lowestFree(taken, 1, 255);
      if (id === undefined) {
        ctx.error('users', [user.name], `reseller "${reseller}" has more than 255 users: no user_id left for "${user.name}"`);
        continue;
      }
      newUserId.set(user.name, id);
      taken.add(id);
    }
  }

  // Users without a stored uid got one from srvctl 3 on each host at the time: sc needs it stored.
  let nextUid = Math.max(1000, ...uidOwner.keys());
  const users: Record<string, Record3> = {};
  const mappings: UserMapping[] = [];
  for (const user of olds) {
    const record = user.record;
    const keys = userPublicKeys(user.name, ctx.source.userDirs.get(user.name) ?? []);
    for (const left of keys.leftBehind) ctx.leaveBehind(left);
    if (Object.hasOwn(record, 'password')) ctx.leaveBehind({ path: `users.json#/${user.name}/password`, what: 'password' });
    for (const field of E1_FIELDS) {
      if (Object.hasOwn(record, field)) ctx.drop('users', user.name, field, 'srvctl 3 E1 numbering, replaced by reseller_id and user_id');
    }
    let uid = user.uid;
    let note: string | undefined;
    if (uid === undefined && user.name !== ROOT_USERNAME) {
      nextUid += 1;
      uid = nextUid;
      ctx.warn(
        'users',
        user.name,
        `no uid stored in srvctl 3 (it computed one when it made the Linux account): sc stores ${uid}; check it against \`id -u ${user.name}\` on the hosts`,
      );
      note = 'uid allocated';
    }
    const rest = carriedSrvctl3Fields(ctx, 'users', user.name, record, HANDLED);
    if (user.name === ROOT_USERNAME) {
      users[user.name] = {
        ...(typeof record.name === 'string' ? { name: record.name } : {}),
        reseller_id: 0,
        user_id: 0,
        ...(uid !== undefined ? { uid } : {}),
        ...(keys.keys.length ? { ssh_keys: keys.keys } : {}),
        ...rest,
      };
      mappings.push({
        name: user.name,
        reseller: ROOT_USERNAME,
        old_user_id: user.oldUserId ?? null,
        user_id: 0,
        uid: uid ?? null,
        ssh_keys: keys.keys.length,
      });
      continue;
    }
    const userId = newUserId.get(user.name);
    if (userId === undefined) continue;
    const reseller = scReseller(user);
    const resellerId = newResellerId.get(user.name);
    if (user.oldResellerId !== undefined && resellerId === undefined) note = 'reseller without users or containers: a user of root in sc';
    if (user.oldUserId === undefined && note === undefined) note = 'had no user_id (srvctl 3.2 new_reseller bug)';
    users[user.name] = {
      ...(typeof record.name === 'string' ? { name: record.name } : {}),
      reseller,
      ...(resellerId !== undefined ? { reseller_id: resellerId } : {}),
      user_id: userId,
      uid,
      ...(keys.keys.length ? { ssh_keys: keys.keys } : {}),
      ...rest,
    };
    mappings.push({
      name: user.name,
      reseller,
      old_user_id: user.oldUserId ?? null,
      user_id: userId,
      uid: uid ?? null,
      ssh_keys: keys.keys.length,
      ...(note !== undefined ? { note } : {}),
    });
  }

  // users/NAME of nobody, and stray files in users/: listed, not read.
  for (const name of ctx.source.userDirs.keys()) if (!byName.has(name)) ctx.leaveBehind({ path: `users/${name}`, what: 'unknown user' });
  for (const entry of ctx.source.strayUserEntries)
    ctx.leaveBehind({ path: `users/${entry.name}`, what: entry.kind === 'symlink' ? 'symlink' : 'other' });

  const resellers: ResellerMapping[] = used.slice(0, 15).map((r) => {
    const group = groups.get(r.name) ?? [];
    return {
      name: r.name,
      old_reseller_id: r.oldResellerId ?? 0,
      reseller_id: newResellerId.get(r.name) ?? 0,
      users: group.length,
      containers: containerCount(r.name) + group.reduce((n, u) => n + containerCount(u.name), 0),
    };
  });
  return { users, mappings, resellers };
}
