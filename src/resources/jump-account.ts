// The jump-account kind (issue 16): for each user who may reach a container on this host, a Linux
// account with the datastore's uid in sc's group, no password, no shell and no home, whose keys
// (sshd reads them from /etc/ssh/srvctl-jump-keys/NAME) only allow forwarding to port 22 of that
// user's containers. The GECOS mark says sc created the account; any other account with the
// same name or uid is never touched (a conflict).
import { parseAccounts, withoutUser, withUser, type AccountTexts, type PasswdEntry } from '../access/account-database.js';
import { jumpAccounts, jumpKeyLines } from '../access/access-plan.js';
import { JUMP_GECOS, JUMP_GROUP, JUMP_HOME, JUMP_SHELL, jumpKeysOfFile, jumpKeysPath, renderJumpKeysFile } from '../access/sshd-jump-config.js';
import type { Model } from '../datastore/model.js';
import { FIRST_USER_UID } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import {
  refString,
  type BatchOutcome,
  type DesiredObject,
  type ObserveContext,
  type ObservedObject,
  type PlannedAction,
  type ResourceHandler,
} from './contract.js';
import { requireAccounts, SSH_JUMP_KIND } from './ssh-jump.js';

export const JUMP_ACCOUNT_KIND = 'jump-account';

export interface JumpAccountSpec {
  readonly uid: number;
  /** The primary group's name (`gid N` when it has none). */
  readonly group: string;
  readonly home: string;
  readonly shell: string;
  /** `none`: `*` in /etc/shadow (no password can match, key login works); `locked` (`!…`, sshd refuses keys too); `set`. */
  readonly password: 'none' | 'locked' | 'set';
  /** The lines of the account's keys file. */
  readonly keys: readonly string[];
}

function passwordState(field: string | undefined): JumpAccountSpec['password'] {
  // No shadow file: the passwd field ('x') is all there is, and sc wrote no password there.
  if (field === undefined || field === '*') return 'none';
  return field.startsWith('!') ? 'locked' : 'set';
}

const entryFor = (name: string, spec: JumpAccountSpec, gid: number): PasswdEntry => ({
  name,
  uid: spec.uid,
  gid,
  gecos: JUMP_GECOS,
  home: spec.home,
  shell: spec.shell,
});

function jumpGid(texts: AccountTexts): number {
  const gid = parseAccounts(texts).groups.find((g) => g.name === JUMP_GROUP)?.gid;
  if (gid === undefined) throw new ScError(`group ${JUMP_GROUP} does not exist yet (the ssh-jump resource creates it)`);
  return gid;
}

/** One locked edit of the account files for many accounts; then each keys file. */
async function applyAccounts(drivers: Drivers, upserts: readonly DesiredObject<JumpAccountSpec>[], removals: readonly string[]): Promise<void> {
  // Keys go first on removal: a user who lost access loses it even if the rest is interrupted.
  for (const name of removals) await drivers.files.remove(jumpKeysPath(name));
  await requireAccounts(drivers).edit((texts) => {
    const db = parseAccounts(texts);
    for (const want of upserts) {
      const other = db.passwd.find((p) => p.name === want.ref.id && p.gecos !== JUMP_GECOS);
      if (other) throw new ConflictError(`account ${other.name} appeared and sc did not create it; it is left alone`);
    }
    for (const name of removals) {
      const entry = db.passwd.find((p) => p.name === name);
      if (entry && entry.gecos !== JUMP_GECOS) throw new ConflictError(`refusing to remove account ${name}: sc did not create it`);
    }
    let next = texts;
    const gid = upserts.length > 0 ? jumpGid(texts) : 0;
    for (const want of upserts) next = withUser(next, entryFor(want.ref.id, want.spec, gid));
    for (const name of removals) next = withoutUser(next, name);
    return next;
  });
  for (const want of upserts)
    await drivers.files.write(jumpKeysPath(want.ref.id), renderJumpKeysFile(want.ref.id, want.spec.keys), { mode: 0o644, uid: 0, gid: 0 });
}

export const jumpAccountHandler = {
  kind: JUMP_ACCOUNT_KIND,
  dependsOnKinds: [SSH_JUMP_KIND],

  desired(model: Model, host: HostContext): DesiredObject<JumpAccountSpec>[] {
    return jumpAccounts(model, host.name).map((plan) => ({
      ref: { kind: JUMP_ACCOUNT_KIND, id: plan.user },
      spec: { uid: plan.uid, group: JUMP_GROUP, home: JUMP_HOME, shell: JUMP_SHELL, password: 'none', keys: jumpKeyLines(plan) },
      dependsOn: [{ kind: SSH_JUMP_KIND, id: JUMP_GROUP }],
      description: `uid ${plan.uid}, ${plan.keys.length} key${plan.keys.length === 1 ? '' : 's'}, may reach ${plan.containers.join(', ')}`,
    }));
  },

  /**
   * One read of the account files: sc's accounts (with their keys files), and the other accounts
   * that stand in the way of a desired one (same name or uid), as foreign; the rest is not sc's business.
   */
  async observe(drivers: Drivers, _host: HostContext, context: ObserveContext<JumpAccountSpec>): Promise<ObservedObject<JumpAccountSpec>[]> {
    const db = parseAccounts(await requireAccounts(drivers).read());
    const groupName = new Map(db.groups.map((g) => [g.gid, g.name]));
    const names = new Set(context.desired.map((d) => d.ref.id));
    const uids = new Set(context.desired.map((d) => d.spec.uid));
    const relevant = db.passwd.filter((p) => p.gecos === JUMP_GECOS || names.has(p.name) || uids.has(p.uid));
    return Promise.all(
      relevant.map(async (p): Promise<ObservedObject<JumpAccountSpec>> => {
        const owned = p.gecos === JUMP_GECOS;
        const keysText = owned ? await drivers.files.read(jumpKeysPath(p.name)).catch(() => undefined) : undefined;
        return {
          ref: { kind: JUMP_ACCOUNT_KIND, id: p.name },
          spec: {
            uid: p.uid,
            group: groupName.get(p.gid) ?? `gid ${p.gid}`,
            home: p.home,
            shell: p.shell,
            password: passwordState(db.shadowPasswords.get(p.name)),
            keys: keysText === undefined ? [] : jumpKeysOfFile(keysText),
          },
          owned,
          ...(owned ? {} : { description: `account ${p.name} (uid ${p.uid}), not created by sc` }),
        };
      }),
    );
  },

  normalize(spec: JumpAccountSpec): unknown {
    return { uid: spec.uid, group: spec.group, home: spec.home, shell: spec.shell, password: spec.password, keys: spec.keys };
  },

  conflict(want: DesiredObject<JumpAccountSpec>, observed: readonly ObservedObject<JumpAccountSpec>[]): string | undefined {
    // validate refuses such a uid already; an account with a system uid (0!) is never made.
    if (want.spec.uid < FIRST_USER_UID)
      return `uid ${want.spec.uid} of user ${want.ref.id} is in the system range: sc makes jump accounts only with uids from ${FIRST_USER_UID} up`;
    const sameName = observed.find((o) => o.ref.id === want.ref.id);
    if (sameName)
      return `account ${want.ref.id} exists (uid ${sameName.spec.uid}) and sc did not create it: sc never touches it; rename the user or the account`;
    const sameUid = observed.find((o) => o.spec.uid === want.spec.uid);
    if (sameUid)
      return `uid ${want.spec.uid} of user ${want.ref.id} is taken by account ${sameUid.ref.id}, which sc did not create: give the user another uid or move that account`;
    return undefined;
  },

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<JumpAccountSpec>): Promise<void> {
    await applyAccounts(drivers, [want], []);
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<JumpAccountSpec>, have: ObservedObject<JumpAccountSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change account ${have.ref.id}: sc did not create it`);
    await applyAccounts(drivers, [want], []);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<JumpAccountSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to remove account ${have.ref.id}: sc did not create it`);
    await applyAccounts(drivers, [], [have.ref.id]);
  },

  /** All creates, updates and deletes of accounts in one locked edit of the account files. */
  async applyBatch(drivers: Drivers, _host: HostContext, actions: readonly PlannedAction<JumpAccountSpec>[]): Promise<BatchOutcome> {
    const upserts = actions
      .filter((a) => (a.type === 'create' || a.type === 'update') && a.want)
      .map((a) => a.want as DesiredObject<JumpAccountSpec>);
    const removals = actions.filter((a) => a.type === 'delete' && a.have?.owned).map((a) => a.ref.id);
    const rest = actions.filter((a) => !(a.type === 'create' || a.type === 'update' || (a.type === 'delete' && a.have?.owned)));
    // A throw makes the executor retry each action on its own, so each gets its own error.
    await applyAccounts(drivers, upserts, removals);
    return { failed: new Set(rest.map((a) => refString(a.ref))) };
  },
} satisfies ResourceHandler<JumpAccountSpec>;
