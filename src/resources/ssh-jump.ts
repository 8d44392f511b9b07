// The ssh-jump kind (issue 16): what every jump account relies on — the group sc owns
// (srvctl-jump) and the sshd drop-in that confines its members to public-key login and local
// forwarding. The drop-in's header is sc's mark: written first on create and removed last on
// delete, so a group without it is someone else's (a conflict), never taken over.
import { freeSystemGid, parseAccounts, withGroup, withoutGroup } from '../access/account-database.js';
import { jumpAccounts } from '../access/access-plan.js';
import { jumpHeader, JUMP_GROUP, renderSshdDropin, SSHD_DROPIN } from '../access/sshd-jump-config.js';
import type { Model } from '../datastore/model.js';
import type { AccountsDriver } from '../drivers/accounts.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { contentHash } from './container-files-render.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';

export const SSH_JUMP_KIND = 'ssh-jump';

export interface SshJumpSpec {
  /** Whether the group exists. */
  readonly group: boolean;
  /** Content hash of the drop-in. */
  readonly dropin: string;
  /** Desired only: the drop-in's text. */
  readonly text?: string;
}

export function requireAccounts(drivers: Drivers): AccountsDriver {
  if (!drivers.accounts) throw new ScError('no accounts driver: this sc cannot manage host accounts');
  return drivers.accounts;
}

async function reloadSshd(drivers: Drivers): Promise<void> {
  await drivers.sshd?.reload();
}

async function converge(drivers: Drivers, text: string): Promise<void> {
  const changed = await drivers.files.write(SSHD_DROPIN, text, { mode: 0o644, uid: 0, gid: 0 });
  await requireAccounts(drivers).edit((texts) => {
    const db = parseAccounts(texts);
    if (db.groups.some((g) => g.name === JUMP_GROUP)) return texts;
    const gid = freeSystemGid(db.groups, db.passwd);
    if (gid === undefined) throw new ScError(`no free system gid (100–999) for group ${JUMP_GROUP}`);
    return withGroup(texts, JUMP_GROUP, gid);
  });
  if (changed) await reloadSshd(drivers);
}

export const sshJumpHandler = {
  kind: SSH_JUMP_KIND,

  desired(model: Model, host: HostContext): DesiredObject<SshJumpSpec>[] {
    if (jumpAccounts(model, host.name).length === 0) return [];
    const text = renderSshdDropin();
    return [
      {
        ref: { kind: SSH_JUMP_KIND, id: JUMP_GROUP },
        spec: { group: true, dropin: contentHash(text), text },
        description: `group ${JUMP_GROUP} and ${SSHD_DROPIN}: key login, local forwarding only`,
      },
    ];
  },

  async observe(drivers: Drivers): Promise<ObservedObject<SshJumpSpec>[]> {
    const [dropin, texts] = await Promise.all([drivers.files.read(SSHD_DROPIN).catch(() => 'not a regular file'), requireAccounts(drivers).read()]);
    const group = parseAccounts(texts).groups.some((g) => g.name === JUMP_GROUP);
    const ref = { kind: SSH_JUMP_KIND, id: JUMP_GROUP };
    if (dropin !== undefined && dropin.startsWith(`${jumpHeader(JUMP_GROUP)}\n`))
      return [{ ref, spec: { group, dropin: contentHash(dropin) }, owned: true }];
    if (dropin === undefined && !group) return [];
    const what = dropin !== undefined ? `${SSHD_DROPIN} exists without sc's header` : `group ${JUMP_GROUP} exists but sc did not create it`;
    return [{ ref, spec: { group, dropin: dropin === undefined ? '' : contentHash(dropin) }, owned: false, description: what }];
  },

  normalize(spec: SshJumpSpec): unknown {
    return { group: spec.group, dropin: spec.dropin };
  },

  conflict(want: DesiredObject<SshJumpSpec>, observed: readonly ObservedObject<SshJumpSpec>[]): string | undefined {
    const inTheWay = observed.find((o) => o.ref.id === want.ref.id);
    return inTheWay ? `${inTheWay.description ?? 'foreign'}: sc leaves it alone; remove or rename it to let sc manage jump accounts` : undefined;
  },

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<SshJumpSpec>): Promise<void> {
    const current = await drivers.files.read(SSHD_DROPIN);
    if (current !== undefined && !current.startsWith(`${jumpHeader(JUMP_GROUP)}\n`))
      throw new ConflictError(`${SSHD_DROPIN} appeared and is not sc's; it is left alone`);
    await converge(drivers, want.spec.text ?? renderSshdDropin());
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<SshJumpSpec>, have: ObservedObject<SshJumpSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change ${SSHD_DROPIN}: sc did not write it`);
    await converge(drivers, want.spec.text ?? renderSshdDropin());
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<SshJumpSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to delete ${SSHD_DROPIN}: sc did not write it`);
    await requireAccounts(drivers).edit((texts) => {
      const db = parseAccounts(texts);
      const gid = db.groups.find((g) => g.name === JUMP_GROUP)?.gid;
      const users = db.passwd.filter((p) => p.gid === gid).map((p) => p.name);
      if (gid !== undefined && users.length > 0)
        throw new ScError(`group ${JUMP_GROUP} is still the group of ${users.join(', ')}; sc removes it once no account uses it`);
      return withoutGroup(texts, JUMP_GROUP);
    });
    await drivers.files.remove(SSHD_DROPIN);
    await reloadSshd(drivers);
  },
} satisfies ResourceHandler<SshJumpSpec>;
