// What `sc validate` says about the users' SSH keys: a key that sc will not install (DSA, RSA
// under 2048 bits, not a key at all …) is a warning naming the user and the key's place in the
// file; a private key in the datastore is an error (it is a secret in a shared file). The key
// text itself is never part of a message.
import type { Model } from '../datastore/model.js';
import type { Diagnostic } from '../errors.js';
import { parsePublicKey, PublicKeyError } from './public-keys.js';

export type Locate = (path: readonly (string | number)[]) => Pick<Diagnostic, 'file' | 'line' | 'column' | 'path'>;

export function keyDiagnostics(model: Model, locate: Locate): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const [user, record] of Object.entries(model.users)) {
    (record.ssh_keys ?? []).forEach((line, index) => {
      try {
        parsePublicKey(line);
      } catch (error) {
        if (!(error instanceof PublicKeyError)) throw error;
        const where = locate([user, 'ssh_keys', index]);
        diagnostics.push(
          error.privateKey
            ? {
                severity: 'error',
                ...where,
                message: `SSH key #${index + 1} of ${user}: ${error.message}; remove it from the datastore (and its history) and replace the key`,
              }
            : { severity: 'warning', ...where, message: `SSH key #${index + 1} of ${user} is not installed anywhere: ${error.message}` },
        );
      }
    });
  }
  return diagnostics;
}
