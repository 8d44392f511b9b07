// Next free reseller_id, user_id and uid (SPEC §1, §2): the numbers the datastore commands and
// `sc allocate` store once. Pure functions over the users map; stored values are never moved.
import { UserError } from '../errors.js';
import { lowestFree } from '../network/address-plan.js';
import { ROOT_USERNAME } from '../network/user-network.js';
import type { User, Users } from './model.js';

export const RESELLER_IDS = { first: 1, last: 15 } as const;
export const USER_IDS = { first: 1, last: 255 } as const;
/** uids are max(all uids, UID_FLOOR) + 1: the first one handed out is 1001. */
export const UID_FLOOR = 1000;

/** The reseller a user belongs to, `root` when the field is absent. */
export function resellerOf(user: Readonly<User>): string {
  return user.reseller ?? ROOT_USERNAME;
}

export function isReseller(users: Readonly<Users>, name: string): boolean {
  if (name === ROOT_USERNAME) return true;
  const user = Object.hasOwn(users, name) ? users[name] : undefined;
  return user !== undefined && resellerOf(user) === ROOT_USERNAME && typeof user.reseller_id === 'number' && user.reseller_id >= 1;
}

function numbers(values: Iterable<unknown>): number[] {
  return [...values].filter((v): v is number => typeof v === 'number');
}

export function nextResellerId(users: Readonly<Users>): number {
  const id = lowestFree(numbers(Object.values(users).map((u) => u.reseller_id)), RESELLER_IDS.first, RESELLER_IDS.last);
  if (id === undefined) {
    throw new UserError(`no free reseller_id: all ${RESELLER_IDS.last} reseller ids (1–15) are in use; the network plan has room for 15 resellers`);
  }
  return id;
}

/** user_id is unique within a reseller; a reseller itself is a user of root. */
export function nextUserId(users: Readonly<Users>, reseller: string): number {
  const used = Object.entries(users)
    .filter(([name, user]) => name !== ROOT_USERNAME && resellerOf(user) === reseller)
    .map(([, user]) => user.user_id);
  const id = lowestFree(numbers(used), USER_IDS.first, USER_IDS.last);
  if (id === undefined) {
    throw new UserError(`no free user_id under reseller "${reseller}": all ${USER_IDS.last} user ids are in use`);
  }
  return id;
}

export function nextUid(users: Readonly<Users>): number {
  let max = UID_FLOOR;
  for (const uid of numbers(Object.values(users).map((u) => u.uid))) if (uid > max) max = uid;
  return max + 1;
}
