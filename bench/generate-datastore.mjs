// Synthetic datastores for the benchmark: N users' bridges on one host, every id and address
// allocated. Deterministic, and the 1,000-user set is a subset of the 4,000-user set, so the
// bigger apply can run on top of the smaller one in the same namespace.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const BENCH_HOST = 'bench1.example.net';
const HOSTNET = 1;
const USERS_PER_RESELLER = 250;
const RESELLERS = 15;

/**
 * Users in a fixed order: resellers 1–15 with 250 customers each (3,750 bridges), then root's
 * space: the 15 resellers' own sites (user_ids 1–15) and 235 users of root (16–250).
 */
function* allUsers() {
  for (let r = 1; r <= RESELLERS; r++) {
    for (let u = 1; u <= USERS_PER_RESELLER; u++) {
      yield {
        name: `u${r}x${u}`,
        user: { reseller: `res${r}`, user_id: u },
        container: `c${u}.res${r}.example.com`,
        ip: `10.${16 * HOSTNET + r}.${u}.20`,
      };
    }
  }
  for (let r = 1; r <= RESELLERS; r++) {
    yield { name: `res${r}`, user: null, container: `www.res${r}.example.com`, ip: `10.${16 * HOSTNET}.${r}.20` };
  }
  for (let u = RESELLERS + 1; u <= USERS_PER_RESELLER; u++) {
    yield { name: `root${u}`, user: { reseller: 'root', user_id: u }, container: `site${u}.example.org`, ip: `10.${16 * HOSTNET}.${u}.20` };
  }
}

/** The documents of a datastore with `count` users (≤ 4,000), each with one container on BENCH_HOST. */
export function benchDatastore(count) {
  if (count > RESELLERS * USERS_PER_RESELLER + USERS_PER_RESELLER) throw new Error(`at most 4000 users, not ${count}`);
  const users = {};
  const containers = {};
  let uid = 10000;
  // Every reseller exists (its customers need it), whether or not its own site is in the set.
  for (let r = 1; r <= RESELLERS; r++) users[`res${r}`] = { reseller: 'root', reseller_id: r, user_id: r, uid: uid++ };
  let n = 0;
  for (const entry of allUsers()) {
    if (n++ === count) break;
    if (entry.user) users[entry.name] = { ...entry.user, uid: uid++ };
    containers[entry.container] = { user: entry.name, host: BENCH_HOST, type: 'busybox', ip: entry.ip };
  }
  return {
    clusters: { bench: { [BENCH_HOST]: { hostnet: HOSTNET, host_ip: '192.0.2.11' } } },
    users,
    containers,
  };
}

/** Bridge name, bridge address and owner of each container's user, in datastore order. */
export function benchBridges(count) {
  const bridges = [];
  let n = 0;
  for (const entry of allUsers()) {
    if (n++ === count) break;
    const [, second, third] = entry.ip.split('.');
    bridges.push({ name: `sc-${second}-${third}`, cidr: `10.${second}.${third}.1/24`, user: entry.name });
  }
  return bridges;
}

export async function writeBenchDatastore(dir, count) {
  await mkdir(dir, { recursive: true });
  const docs = benchDatastore(count);
  for (const [name, doc] of Object.entries(docs)) await writeFile(path.join(dir, `${name}.json`), JSON.stringify(doc));
  return dir;
}
