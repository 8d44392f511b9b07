// Who may reach which container (issue 16), as pure functions of the model and this host: the keys
// installed in each container's root account, the jump accounts on the host with the containers
// each may forward to, and the cluster's container names for the host's /etc/hosts.
import { resellerOf } from '../datastore/id-allocation.js';
import type { Model } from '../datastore/model.js';
import { ROOT_USERNAME } from '../network/user-network.js';
import { tryParsePublicKey, type PublicKey } from './public-keys.js';

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The user's keys that parse (validate refuses a datastore with bad ones; this never installs them). */
export function userKeys(model: Model, user: string): PublicKey[] {
  const record = Object.hasOwn(model.users, user) ? model.users[user] : undefined;
  return (record?.ssh_keys ?? []).map(tryParsePublicKey).filter((k): k is PublicKey => k !== undefined);
}

/** The owner's reseller, or undefined for root and root's own users (root's keys go in anyway). */
export function resellerOfOwner(model: Model, owner: string): string | undefined {
  if (owner === ROOT_USERNAME) return undefined;
  const record = Object.hasOwn(model.users, owner) ? model.users[owner] : undefined;
  const reseller = record ? resellerOf(record) : ROOT_USERNAME;
  return reseller === ROOT_USERNAME ? undefined : reseller;
}

/**
 * The lines of sc's block in a container's /root/.ssh/authorized_keys: root's keys, the owner's
 * reseller's, the owner's, each group after a comment naming whose they are; a key listed twice
 * is installed once (under the first holder).
 */
export function containerKeyLines(model: Model, owner: string): string[] {
  const holders: [string, string][] = [[ROOT_USERNAME, 'root (administrator)']];
  const reseller = resellerOfOwner(model, owner);
  if (reseller !== undefined) holders.push([reseller, `${reseller} (reseller)`]);
  if (owner !== ROOT_USERNAME) holders.push([owner, `${owner} (owner)`]);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const [user, label] of holders) {
    const keys = userKeys(model, user).filter((k) => !seen.has(k.blob));
    if (keys.length === 0) continue;
    lines.push(`# ${label}`);
    for (const key of keys) {
      seen.add(key.blob);
      lines.push(key.line);
    }
  }
  return lines;
}

/** Containers of this host that users may reach: enabled ones. */
export function reachableContainers(model: Model, hostName: string): [string, string][] {
  return Object.entries(model.containers)
    .filter(([, c]) => c.host === hostName && c.enabled !== false)
    .map(([name, c]): [string, string] => [name, c.user])
    .sort(([a], [b]) => byName(a, b));
}

export interface JumpAccountPlan {
  readonly user: string;
  readonly uid: number;
  /** Containers of this host this account may forward to (port 22), sorted. */
  readonly containers: readonly string[];
  readonly keys: readonly PublicKey[];
}

/**
 * The jump accounts of this host: every user owning an enabled container here, and the reseller
 * of each such owner (a reseller reaches all of its users' containers). Root has none: the
 * administrator works on the host itself. Users without a stored uid get none (validate asks
 * for `sc allocate` first).
 */
export function jumpAccounts(model: Model, hostName: string): JumpAccountPlan[] {
  const reach = new Map<string, string[]>();
  const grant = (user: string, container: string): void => {
    if (user === ROOT_USERNAME) return;
    reach.set(user, [...(reach.get(user) ?? []), container]);
  };
  for (const [name, owner] of reachableContainers(model, hostName)) {
    grant(owner, name);
    const reseller = resellerOfOwner(model, owner);
    if (reseller !== undefined) grant(reseller, name);
  }
  const plans: JumpAccountPlan[] = [];
  for (const [user, containers] of [...reach.entries()].sort(([a], [b]) => byName(a, b))) {
    const uid = Object.hasOwn(model.users, user) ? model.users[user]?.uid : undefined;
    if (uid === undefined) continue;
    plans.push({ user, uid, containers: [...new Set(containers)].sort(byName), keys: userKeys(model, user) });
  }
  return plans;
}

/** `restrict,port-forwarding,permitopen="a:22",permitopen="b:22" TYPE KEY COMMENT` per key. */
export function jumpKeyLines(plan: JumpAccountPlan): string[] {
  if (plan.containers.length === 0) return [];
  const options = ['restrict', 'port-forwarding', ...plan.containers.map((c) => `permitopen="${c}:22"`)].join(',');
  return plan.keys.map((k) => `${options} ${k.line}`);
}

/** The cluster's containers with their addresses, for the host's /etc/hosts (`IP<TAB>NAME`). */
export function clusterHostLines(model: Model, cluster: string): string[] {
  const hosts = new Set(Object.keys(model.clusters[cluster] ?? {}));
  return Object.entries(model.containers)
    .filter(([, c]) => hosts.has(c.host) && c.ip !== undefined)
    .sort(([a], [b]) => byName(a, b))
    .map(([name, c]) => `${c.ip as string}\t${name}`);
}

/** The containers `user` may reach across the cluster (its own, and its users' for a reseller), with their hosts. */
export function userReach(model: Model, user: string): { container: string; host: string }[] {
  return Object.entries(model.containers)
    .filter(([, c]) => c.enabled !== false && (c.user === user || (user !== ROOT_USERNAME && resellerOfOwner(model, c.user) === user)))
    .sort(([a], [b]) => byName(a, b))
    .map(([container, c]) => ({ container, host: c.host }));
}
