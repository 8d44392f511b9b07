// A user's public SSH keys from srvctl 3's users/NAME/*.pub files. Passwords (.password), hashes
// (.hash), private keys and anything else there are left behind — listed by path, never read.
import type { LeftBehind, LeftBehindKind } from './migration-report.js';
import type { UserFileEntry } from './srvctl3-source.js';

/** One OpenSSH public key line: type, base64 body, optional comment. */
const PUBLIC_KEY =
  /^(ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)\s+([A-Za-z0-9+/]+={0,3})(?:\s+(.*))?$/;

export interface UserKeys {
  /** Deduplicated, in file-name then line order; `type body comment` with single spaces. */
  readonly keys: string[];
  readonly leftBehind: LeftBehind[];
}

/** What a file that is not imported is, from its name alone (secrets are never opened). */
function classify(entry: UserFileEntry): LeftBehindKind {
  if (entry.kind === 'symlink') return 'symlink';
  if (entry.kind !== 'file') return 'other';
  const name = entry.name;
  if (name === '.password' || name.endsWith('.password')) return 'password';
  if (name === '.hash' || name.endsWith('.hash')) return 'password hash';
  // id_rsa, srvctl_id_rsa, alice_ed25519, host.key, user.p12 …
  if (/^id_|_id_|(^|[-_.])(rsa|dsa|ecdsa|ed25519)$|\.(key|pem|p12|pfx)$/.test(name)) return 'private key';
  return 'other';
}

/** srvctl 3's own key pair for its GUI and sshpiperd: its private half stays behind, so its public half grants nothing to the user. */
const INTERNAL_KEY = /^srvctl_/;

export function userPublicKeys(user: string, entries: readonly UserFileEntry[]): UserKeys {
  const keys: string[] = [];
  const bodies = new Set<string>();
  const leftBehind: LeftBehind[] = [];
  const leave = (entry: UserFileEntry, what: LeftBehindKind) => leftBehind.push({ path: `users/${user}/${entry.name}`, what });
  for (const entry of entries) {
    if (entry.kind !== 'file' || !entry.name.endsWith('.pub')) {
      leave(entry, classify(entry));
      continue;
    }
    if (INTERNAL_KEY.test(entry.name)) {
      leave(entry, 'internal key');
      continue;
    }
    if (entry.text === undefined) {
      leave(entry, 'too large');
      continue;
    }
    if (/PRIVATE KEY/.test(entry.text)) {
      leave(entry, 'private key');
      continue;
    }
    let found = 0;
    for (const raw of entry.text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const match = PUBLIC_KEY.exec(line);
      if (!match) continue;
      found += 1;
      const body = `${match[1]} ${match[2]}`;
      if (bodies.has(body)) continue;
      bodies.add(body);
      const comment = match[3]?.trim().replace(/\s+/g, ' ');
      keys.push(comment ? `${body} ${comment}` : body);
    }
    if (found === 0) leave(entry, 'not a public key');
  }
  return { keys, leftBehind };
}
