// `sc add-publickey` and `sc remove-publickey`: a user's ssh_keys in users.json/yaml. Keys are
// checked by the public key parser first (a private key, DSA, short RSA, options or several lines
// are refused and nothing is written); the host picks the change up on its next apply.
import {
  looksLikePrivateKey,
  normalizeFingerprint,
  parsePublicKey,
  PRIVATE_KEY_REFUSAL,
  PublicKeyError,
  type PublicKey,
} from '../access/public-keys.js';
import { UserError } from '../errors.js';
import { ROOT_USERNAME } from '../network/user-network.js';
import { assertUserName } from './edit-arguments.js';
import { runDatastoreEdit, type EditContext, type EditResult } from './edit-session.js';
import type { Model } from './model.js';

/** A key text as given on the command line or in a file (`where` names it in errors, never the key). */
export interface KeyInput {
  readonly text: string;
  readonly where: string;
  /** A file holds one key per line; a key given as an argument must be one line (a newline would smuggle in a second key). */
  readonly file?: boolean;
}

/** Every key line of the inputs (blank and `#` lines skipped), or a UserError naming where the bad one is. */
export function parseKeyInputs(inputs: readonly KeyInput[]): PublicKey[] {
  const keys: PublicKey[] = [];
  for (const input of inputs) {
    // A private key is refused as a whole, before any of its lines is looked at (or shown).
    if (looksLikePrivateKey(input.text)) throw new UserError(`${input.where}: ${PRIVATE_KEY_REFUSAL}`);
    const lines = input.file ? input.text.split('\n') : [input.text];
    let found = 0;
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '' || line.trim().startsWith('#')) continue;
      found += 1;
      try {
        keys.push(parsePublicKey(line));
      } catch (error) {
        if (!(error instanceof PublicKeyError)) throw error;
        const at = lines.length > 1 ? `${input.where} line ${i + 1}` : input.where;
        throw new UserError(`${at}: ${error.message}; nothing was written`);
      }
    }
    if (found === 0) throw new UserError(`${input.where}: no public key in it`);
  }
  return keys;
}

function userRecordExists(model: Model, user: string): boolean {
  return Object.hasOwn(model.users, user);
}

/** Adds the keys a user does not have yet (same key data = same key, whatever the comment). */
export async function addPublicKeys(ctx: EditContext, user: string, keys: readonly PublicKey[]): Promise<EditResult> {
  assertUserName(user);
  if (keys.length === 0) throw new UserError('no key given');
  return runDatastoreEdit(ctx, { command: `add-publickey ${user}` }, (edit) => {
    const known = userRecordExists(edit.model, user);
    if (!known && user !== ROOT_USERNAME) throw new UserError(`unknown user "${user}": add it first with "sc add-user ${user}"`);
    const current = (edit.model.users[user]?.ssh_keys ?? []).map((line) => line.split(/\s+/)[1]);
    const fresh: PublicKey[] = [];
    for (const key of keys) if (!current.includes(key.blob) && !fresh.some((k) => k.blob === key.blob)) fresh.push(key);
    const already = keys.filter((k) => !fresh.includes(k)).map((k) => k.fingerprint);
    if (fresh.length === 0) return `${user} already has ${already.join(', ')}; nothing to add`;
    const doc = edit.document('users');
    if (!known) doc.set([ROOT_USERNAME], { reseller_id: 0, user_id: 0, uid: 0, ssh_keys: fresh.map((k) => k.line) });
    else for (const key of fresh) doc.append([user, 'ssh_keys'], key.line);
    edit.record({
      kind: 'users',
      key: user,
      action: 'update',
      value: { ssh_keys: [...(edit.model.users[user]?.ssh_keys ?? []), ...fresh.map((k) => k.line)] },
    });
    const added = fresh.map((k) => `${k.type} ${k.fingerprint}${k.comment ? ` (${k.comment})` : ''}`).join(', ');
    return `added to ${user}: ${added}${already.length ? `; already there: ${already.join(', ')}` : ''}; "sc apply" installs it on the hosts of ${user}'s containers`;
  });
}

/** Removes the key with this fingerprint; the next apply takes it out of every container and jump account. */
export async function removePublicKey(ctx: EditContext, user: string, fingerprintText: string): Promise<EditResult> {
  assertUserName(user);
  const fingerprint = normalizeFingerprint(fingerprintText);
  if (fingerprint === undefined)
    throw new UserError(`invalid fingerprint ${JSON.stringify(fingerprintText.slice(0, 60))}: give it as ssh-keygen -l prints it (SHA256:…)`);
  return runDatastoreEdit(ctx, { command: `remove-publickey ${user}` }, (edit) => {
    if (!userRecordExists(edit.model, user)) throw new UserError(`unknown user "${user}"`);
    const lines = edit.model.users[user]?.ssh_keys ?? [];
    const keep = lines.filter((line) => {
      try {
        return parsePublicKey(line).fingerprint !== fingerprint;
      } catch {
        return true;
      }
    });
    if (keep.length === lines.length) {
      throw new UserError(`${user} has no key ${fingerprint} (sc out user ${user} lists the keys; ssh-keygen -l -f FILE prints a key's fingerprint)`);
    }
    const doc = edit.document('users');
    if (keep.length === 0) doc.delete([user, 'ssh_keys']);
    else doc.set([user, 'ssh_keys'], keep);
    edit.record({ kind: 'users', key: user, action: 'update', value: { ssh_keys: keep } });
    return `removed ${fingerprint} from ${user}; the next "sc apply" on each host takes it out of every container and jump account`;
  });
}
