// Synthetic datastores for integration tests: R resellers × U users, each user with one container
// on the test host, every id and address allocated, so load → validate → plan accepts them.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clusters, Containers, Model, Users } from '../../src/datastore/model.js';

export interface GeneratedDatastore {
  clusters: Clusters;
  users: Users;
  containers: Containers;
}

export function generateDatastore(opts: { host: string; hostnet: number; resellers: number; usersPerReseller: number }): GeneratedDatastore {
  const users: Users = {};
  const containers: Containers = {};
  let uid = 20000;
  for (let r = 1; r <= opts.resellers; r++) {
    const reseller = `res${r}`;
    users[reseller] = { name: `Reseller ${r}`, reseller: 'root', reseller_id: r, user_id: r, uid: uid++ };
    for (let u = 1; u <= opts.usersPerReseller; u++) {
      const user = `u${r}x${u}`;
      users[user] = { name: `User ${u} of ${reseller}`, reseller, user_id: u, uid: uid++ };
      containers[`c${u}.${reseller}.example.com`] = { user, host: opts.host, type: 'busybox', ip: `10.${16 * opts.hostnet + r}.${u}.20` };
    }
  }
  return {
    clusters: { test: { [opts.host]: { hostnet: opts.hostnet, host_ip: '192.0.2.11' } } },
    users,
    containers,
  };
}

export const asModel = (d: GeneratedDatastore): Model => ({ ...d, settings: {} });

/** Writes clusters.json, users.json and containers.json into `dir` (created if needed). */
export async function writeDatastore(dir: string, d: GeneratedDatastore): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, doc] of Object.entries({ clusters: d.clusters, users: d.users, containers: d.containers })) {
    await writeFile(path.join(dir, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  }
}
