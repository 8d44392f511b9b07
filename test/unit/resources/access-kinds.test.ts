// The access kinds (container-keys, host-names, ssh-jump, jump-account) planned and applied on a
// temporary --root with the real files and accounts drivers: what a first apply writes, that a
// second plan is empty, what counts as drift, what is a conflict, and that foreign lines and
// accounts are never touched. sshd is a recorder of reloads.
import { chown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Model } from '../../../src/datastore/model.js';
import { createAccountsDriver } from '../../../src/drivers/accounts.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { executePlan } from '../../../src/reconciler/executor.js';
import { desiredState, observeHost } from '../../../src/reconciler/observe-host.js';
import { planActions, type Plan } from '../../../src/reconciler/planner.js';
import { containerKeysHandler } from '../../../src/resources/container-keys.js';
import type { HandlerRegistry } from '../../../src/resources/contract.js';
import { hostNamesHandler } from '../../../src/resources/host-names.js';
import { jumpAccountHandler } from '../../../src/resources/jump-account.js';
import { sshJumpHandler } from '../../../src/resources/ssh-jump.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';

const keyLines = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ssh/public-keys.txt'), 'utf8')
  .split('\n')
  .filter((l) => /^(ssh|ecdsa)-/.test(l));
const [ED, RSA, , P256, P384] = keyLines as [string, string, string, string, string];

// The container kind is not under test: a stand-in that desires each container of this host.
const containerStandIn = {
  kind: 'container',
  desired: (model: Model, host: HostContext) =>
    Object.entries(model.containers)
      .filter(([, c]) => c.host === host.name)
      .map(([name]) => ({ ref: { kind: 'container', id: name }, spec: {} })),
  // Every tree under /srv is an existing container: only the access kinds have work to do.
  observe: async (d: Drivers) =>
    ((await d.files.list('/srv')) ?? [])
      .filter((e) => e.type === 'dir')
      .map((e) => ({ ref: { kind: 'container', id: e.name }, spec: {}, owned: true })),
  create: async () => undefined,
  delete: async () => undefined,
};

const handlers = {
  container: containerStandIn,
  'container-keys': containerKeysHandler,
  'host-names': hostNamesHandler,
  'ssh-jump': sshJumpHandler,
  'jump-account': jumpAccountHandler,
} as unknown as HandlerRegistry;

function model(users: Model['users'] = {}, containers?: Model['containers']): Model {
  return {
    clusters: { c: { 'h1.test': { hostnet: 1, host_ip: '192.0.2.11' } } },
    users: {
      root: { reseller_id: 0, user_id: 0, uid: 0, ssh_keys: [P384] },
      alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 31000, ssh_keys: [P256] },
      alice: { reseller: 'alpha', user_id: 1, uid: 31001, ssh_keys: [ED] },
      bob: { reseller: 'root', user_id: 2, uid: 31002, ssh_keys: [RSA] },
      ...users,
    },
    containers: containers ?? {
      'shop.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.1.20' },
      'bike.test': { user: 'bob', host: 'h1.test', type: 'busybox', ip: '10.16.2.20' },
    },
    settings: {},
  };
}

let root: string;
let drivers: Drivers;
let reloads: number;
const host = (): HostContext => ({ name: 'h1.test', cluster: 'c', host: { hostnet: 1, host_ip: '192.0.2.11' }, root });
const at = (p: string) => path.join(root, p);

async function plan(m: Model): Promise<Plan> {
  const desired = desiredState(handlers, m, host());
  return planActions(handlers, desired, await observeHost(handlers, drivers, host(), { model: m, desired }));
}

async function apply(m: Model): Promise<Plan> {
  const p = await plan(m);
  await executePlan(p, { handlers, drivers, host: host(), concurrency: 4 });
  return p;
}

/** The access kinds' actions (the container stand-in's own are not under test). */
const actions = (p: Plan) => p.actions.filter((a) => a.ref.kind !== 'container').map((a) => `${a.type} ${a.ref.kind}/${a.ref.id}`);

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sc-access-'));
  await mkdir(at('etc'), { recursive: true });
  await writeFile(at('etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\ncarol:x:31050:31050:Carol:/home/carol:/bin/bash\n');
  await writeFile(at('etc/group'), 'root:x:0:\ncarol:x:31050:\n');
  await writeFile(at('etc/shadow'), 'root:*:20000:0:99999:7:::\ncarol:$y$hash:20000:0:99999:7:::\n', { mode: 0o640 });
  await writeFile(at('etc/hosts'), '127.0.0.1 localhost\n');
  for (const name of ['shop.test', 'bike.test']) await mkdir(at(`srv/${name}/rootfs/root`), { recursive: true });
  await writeFile(at('srv/shop.test/rootfs/root/.ssh-placeholder'), '');
  const files = createFilesDriver(root);
  reloads = 0;
  drivers = {
    ...baseDrivers({ run: () => Promise.reject(new Error('unexpected exec')) }, files),
    ip: { listLinks: async () => [], listAddresses: async () => [], batch: async () => undefined },
    accounts: createAccountsDriver(files, { lockTimeoutMs: 500 }),
    sshd: {
      reload: async () => {
        reloads += 1;
        return 'reloaded' as const;
      },
    },
  };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('access kinds on a temporary root', () => {
  test('a first apply writes keys, hosts block, group, drop-in and accounts; the second plan is empty', async () => {
    const first = await apply(model());
    expect(actions(first).sort()).toEqual(
      [
        'create container-keys/bike.test',
        'create container-keys/shop.test',
        'create host-names/etc-hosts',
        'create jump-account/alice',
        'create jump-account/alpha',
        'create jump-account/bob',
        'create ssh-jump/srvctl-jump',
      ].sort(),
    );
    expect(reloads).toBe(1);
    expect((await plan(model())).actions).toEqual([]);
    const passwd = await readFile(at('etc/passwd'), 'utf8');
    expect(passwd.startsWith('root:x:0:0:root:/root:/bin/bash\ncarol:x:31050:31050:Carol:/home/carol:/bin/bash\n')).toBe(true);
    expect(passwd).toMatch(/^alice:x:31001:999:srvctl jump account:\/nonexistent:\/usr\/sbin\/nologin$/m);
    expect(await readFile(at('etc/group'), 'utf8')).toBe('root:x:0:\ncarol:x:31050:\nsrvctl-jump:x:999:\n');
    expect(await readFile(at('etc/shadow'), 'utf8')).toContain('carol:$y$hash:20000:0:99999:7:::\n');
    const shop = await readFile(at('srv/shop.test/rootfs/root/.ssh/authorized_keys'), 'utf8');
    expect(shop.split('\n').filter((l) => !l.startsWith('#') && l !== '')).toEqual([P384, P256, ED]);
    expect(await readFile(at('etc/ssh/srvctl-jump-keys/alpha'), 'utf8')).toContain(`restrict,port-forwarding,permitopen="shop.test:22" ${P256}`);
    expect(await readFile(at('etc/hosts'), 'utf8')).toContain('10.17.1.20\tshop.test\n');
  });

  test("a new keys file and .ssh belong to the owner of the container's /root (a tree nspawn chowned to its uid range)", async () => {
    const base = 1_847_066_624; // PrivateUsers=pick's range, as nspawn chowns a tree without idmapped mounts
    await chown(at('srv/bike.test/rootfs/root'), base, base);
    await apply(model());
    const own = async (p: string) => {
      const st = await stat(at(p));
      return [st.uid, st.gid, st.mode & 0o777];
    };
    expect(await own('srv/bike.test/rootfs/root/.ssh')).toEqual([base, base, 0o700]);
    expect(await own('srv/bike.test/rootfs/root/.ssh/authorized_keys')).toEqual([base, base, 0o600]);
    // An idmapped tree's /root is 0: so are the new ones.
    expect(await own('srv/shop.test/rootfs/root/.ssh')).toEqual([0, 0, 0o700]);
    expect(await own('srv/shop.test/rootfs/root/.ssh/authorized_keys')).toEqual([0, 0, 0o600]);
    expect((await plan(model())).actions).toEqual([]);
  });

  test('drift in a block, an account, a keys file or the drop-in is an update (sshd reloaded); lines outside the block stay', async () => {
    await apply(model());
    const file = at('srv/shop.test/rootfs/root/.ssh/authorized_keys');
    await writeFile(file, `own-line\n${(await readFile(file, 'utf8')).replace(ED, RSA)}after\n`);
    await writeFile(at('etc/shadow'), (await readFile(at('etc/shadow'), 'utf8')).replace(/^alice:\*:/m, 'alice:$y$pw:'));
    await rm(at('etc/ssh/srvctl-jump-keys/bob'));
    const dropin = at('etc/ssh/sshd_config.d/srvctl-jump.conf');
    await writeFile(dropin, (await readFile(dropin, 'utf8')).replace('AllowTcpForwarding local', 'AllowTcpForwarding yes'));
    const p = await apply(model());
    expect(actions(p).sort()).toEqual([
      'update container-keys/shop.test',
      'update jump-account/alice',
      'update jump-account/bob',
      'update ssh-jump/srvctl-jump',
    ]);
    expect(await readFile(dropin, 'utf8')).toContain('\tAllowTcpForwarding local\n');
    expect(reloads).toBe(2);
    const after = await readFile(file, 'utf8');
    expect(after.startsWith('own-line\n')).toBe(true);
    expect(after.endsWith('after\n')).toBe(true);
    expect(after).toContain(ED);
    expect(after).not.toContain(RSA);
    expect((await plan(model())).actions).toEqual([]);
  });

  test('removal: a user and container gone lose account, keys file and block; the last account takes group and drop-in', async () => {
    await apply(model());
    const m = model();
    const { bob: _bob, ...users } = m.users;
    const p = await apply({ ...m, users, containers: { 'shop.test': m.containers['shop.test'] as never } });
    expect(actions(p).sort()).toEqual(['delete container-keys/bike.test', 'delete jump-account/bob', 'update host-names/etc-hosts']);
    expect(await readFile(at('etc/passwd'), 'utf8')).not.toMatch(/^bob:/m);
    await expect(readFile(at('etc/ssh/srvctl-jump-keys/bob'))).rejects.toThrow();
    expect(await readFile(at('srv/bike.test/rootfs/root/.ssh/authorized_keys'), 'utf8')).toBe('');
    const none = await apply({ ...m, containers: {} });
    expect(actions(none).sort()).toEqual([
      'delete container-keys/shop.test',
      'delete host-names/etc-hosts',
      'delete jump-account/alice',
      'delete jump-account/alpha',
      'delete ssh-jump/srvctl-jump',
    ]);
    expect(await readFile(at('etc/group'), 'utf8')).toBe('root:x:0:\ncarol:x:31050:\n');
    expect(await readFile(at('etc/hosts'), 'utf8')).toBe('127.0.0.1 localhost\n');
    expect(await readFile(at('etc/passwd'), 'utf8')).toBe('root:x:0:0:root:/root:/bin/bash\ncarol:x:31050:31050:Carol:/home/carol:/bin/bash\n');
  });

  test('a container nobody has keys for gets no block (an earlier one is taken out); its file stays', async () => {
    await apply(model());
    const m = model({ root: { reseller_id: 0, user_id: 0, uid: 0 }, bob: { reseller: 'root', user_id: 2, uid: 31002 } });
    const p = await apply(m);
    expect(actions(p)).toContain('delete container-keys/bike.test');
    expect(await readFile(at('srv/bike.test/rootfs/root/.ssh/authorized_keys'), 'utf8')).toBe('');
    expect((await plan(m)).actions).toEqual([]);
  });

  test('an account sc did not create with the same name or uid, or a system uid, is a conflict and nothing is touched', async () => {
    const m = model(
      {
        carol: { reseller: 'root', user_id: 3, uid: 31060 },
        dave: { reseller: 'root', user_id: 4, uid: 31050 },
        eve: { reseller: 'root', user_id: 5, uid: 0 },
      },
      {
        'c.test': { user: 'carol', host: 'h1.test', type: 'busybox', ip: '10.16.3.20' },
        'd.test': { user: 'dave', host: 'h1.test', type: 'busybox', ip: '10.16.4.20' },
        'e.test': { user: 'eve', host: 'h1.test', type: 'busybox', ip: '10.16.5.20' },
      },
    );
    const p = await plan(m);
    const conflicts = p.actions.filter((a) => a.type === 'conflict').map((a) => `${a.ref.id}: ${a.message}`);
    expect(conflicts).toEqual([
      'carol: account carol exists (uid 31050) and sc did not create it: sc never touches it; rename the user or the account',
      'dave: uid 31050 of user dave is taken by account carol, which sc did not create: give the user another uid or move that account',
      'eve: uid 0 of user eve is in the system range: sc makes jump accounts only with uids from 1000 up',
    ]);
    const before = await readFile(at('etc/passwd'), 'utf8');
    await executePlan(p, { handlers, drivers, host: host(), concurrency: 4 });
    expect((await readFile(at('etc/passwd'), 'utf8')).split('\n').filter((l) => /^(carol|dave|eve):/.test(l))).toEqual(
      before.split('\n').filter((l) => l.startsWith('carol:')),
    );
  });

  test('a group srvctl-jump that sc did not make, or a foreign drop-in, is a conflict', async () => {
    await writeFile(at('etc/group'), 'root:x:0:\nsrvctl-jump:x:500:\n');
    const p = await plan(model());
    expect(p.actions.find((a) => a.ref.kind === 'ssh-jump')?.type).toBe('conflict');
    expect(p.actions.find((a) => a.ref.kind === 'ssh-jump')?.message).toMatch(/group srvctl-jump exists but sc did not create it/);
    await writeFile(at('etc/group'), 'root:x:0:\n');
    await mkdir(at('etc/ssh/sshd_config.d'), { recursive: true });
    await writeFile(at('etc/ssh/sshd_config.d/srvctl-jump.conf'), 'Match Group admins\n');
    const q = await apply(model());
    expect(q.actions.find((a) => a.ref.kind === 'ssh-jump')?.message).toMatch(/srvctl-jump.conf exists without sc's header/);
    expect(await readFile(at('etc/ssh/sshd_config.d/srvctl-jump.conf'), 'utf8')).toBe('Match Group admins\n');
    expect(reloads).toBe(0);
  });

  test('an authorized_keys that is a symlink (out of the container) is a conflict; nothing is written through it', async () => {
    await mkdir(at('srv/shop.test/rootfs/root/.ssh'), { recursive: true });
    await writeFile(at('outside'), 'host file\n');
    await symlink(at('outside'), at('srv/shop.test/rootfs/root/.ssh/authorized_keys'));
    const p = await apply(model());
    expect(p.actions.find((a) => a.ref.id === 'shop.test' && a.ref.kind === 'container-keys')?.type).toBe('conflict');
    expect(await readFile(at('outside'), 'utf8')).toBe('host file\n');
  });

  test("the account files lock: a live holder makes the edit wait and fail; a dead holder's lock is taken over", async () => {
    await writeFile(at('etc/passwd.lock'), String(process.pid));
    await expect(drivers.accounts?.edit((t) => t)).rejects.toThrow(/passwd\.lock is held by process/);
    await writeFile(at('etc/passwd.lock'), '999999999');
    await drivers.accounts?.edit((t) => ({ ...t, group: `${t.group}x:x:5:\n` }));
    expect(await readFile(at('etc/group'), 'utf8')).toContain('x:x:5:');
    await expect(readFile(at('etc/passwd.lock'))).rejects.toThrow();
  });
});
