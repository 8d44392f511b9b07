// The model's view of the plan: which reseller_id and user_id place a user's /24 on a host.
// Problems come back as text (not thrown) so datastore cross-checks can collect them all.
import type { User, Users } from '../datastore/model.js';
import { HOSTNET_RANGE, type UserNet } from './address-plan.js';

export const ROOT_USERNAME = 'root';

const ALLOCATE_HINT = 'run "sc allocate" to fill in missing ids and addresses';

/** Own properties only: a username like `constructor` must not find Object.prototype members. */
function lookupUser(users: Readonly<Users>, name: string): User | undefined {
  return Object.hasOwn(users, name) ? users[name] : undefined;
}

function belongsToRoot(user: User): boolean {
  return user.reseller === undefined || user.reseller === ROOT_USERNAME;
}

function rootProblem(users: Readonly<Users>): string | undefined {
  const root = lookupUser(users, ROOT_USERNAME);
  if (!root) return undefined;
  if (root.user_id !== undefined && root.user_id !== 0) {
    return `user "root" has user_id ${root.user_id}, but root is always user 0`;
  }
  if (root.reseller_id !== undefined && root.reseller_id !== 0) {
    return `user "root" has reseller_id ${root.reseller_id}, but root is always reseller 0`;
  }
  if (!belongsToRoot(root)) return `user "root" names reseller "${root.reseller}", but root has no reseller`;
  return undefined;
}

/** reseller_id of the reseller that `username` belongs to, or a problem. */
function resolveResellerId(users: Readonly<Users>, username: string, user: User): number | { problem: string } {
  const resellerName = user.reseller;
  if (resellerName === undefined || resellerName === ROOT_USERNAME) return 0;
  const reseller = lookupUser(users, resellerName);
  if (!reseller) return { problem: `user "${username}" names unknown reseller "${resellerName}"` };
  if (!belongsToRoot(reseller)) {
    return {
      problem: `user "${username}" names "${resellerName}" as reseller, but "${resellerName}" is itself a user of reseller "${reseller.reseller}"; resellers belong to root`,
    };
  }
  if (reseller.reseller_id === undefined) {
    return { problem: `reseller "${resellerName}" (of user "${username}") has no reseller_id: ${ALLOCATE_HINT}` };
  }
  if (!Number.isInteger(reseller.reseller_id) || reseller.reseller_id < 1 || reseller.reseller_id > 15) {
    return {
      problem: `reseller "${resellerName}" (of user "${username}") has reseller_id ${String(reseller.reseller_id)}; a reseller's id is 1–15 (0 is root)`,
    };
  }
  return reseller.reseller_id;
}

/**
 * Resolves reseller_id (from the user's reseller; root and users of root → 0) and user_id.
 * root (possibly absent from users) is reseller 0, user 0. Returns a problem string when the
 * user, its reseller, or an allocation (user_id / reseller_id) is missing or inconsistent.
 */
export function resolveUserNet(users: Readonly<Users>, username: string, hostnet: number): UserNet | { problem: string } {
  if (!Number.isInteger(hostnet) || hostnet < HOSTNET_RANGE.first || hostnet > HOSTNET_RANGE.last) {
    return { problem: `hostnet ${String(hostnet)} is out of range: a hostnet is an integer 1–15` };
  }
  if (username === ROOT_USERNAME) {
    const problem = rootProblem(users);
    return problem !== undefined ? { problem } : { hostnet, resellerId: 0, userId: 0 };
  }
  const user = lookupUser(users, username);
  if (!user) return { problem: `unknown user "${username}"` };
  if (user.reseller_id !== undefined && !belongsToRoot(user)) {
    return {
      problem: `user "${username}" has a reseller_id but belongs to reseller "${user.reseller}"; only users of root can be resellers`,
    };
  }
  const resellerId = resolveResellerId(users, username, user);
  if (typeof resellerId !== 'number') return resellerId;
  if (user.user_id === undefined) return { problem: `user "${username}" has no user_id: ${ALLOCATE_HINT}` };
  if (!Number.isInteger(user.user_id) || user.user_id < 1 || user.user_id > 255) {
    return {
      problem: `user "${username}" has user_id ${String(user.user_id)}; a user_id is 1–255 (0 is reserved for root)`,
    };
  }
  return { hostnet, resellerId, userId: user.user_id };
}
