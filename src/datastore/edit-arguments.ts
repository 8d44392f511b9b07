// Up-front checks of the names and values given to the datastore commands, so `a;rm -rf x` or
// `../../etc` is refused with a clear message before any lock is taken or file is read.
// The schemas check the same patterns again when the edited datastore is validated.
import { parsePublicKey, PublicKeyError } from '../access/public-keys.js';
import { UserError } from '../errors.js';
import { ROOT_USERNAME } from '../network/user-network.js';

/** Same pattern as `userName` in schemas/users.schema.json. */
const USER_NAME = /^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/;
/** Same pattern as `containerName` in schemas/containers.schema.json (and `fqdn` for hosts). */
const DNS_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const HOST_NAME_MAX = 253;
/** A container's name is also its systemd machine name, which allows 64 characters. */
const CONTAINER_NAME_MAX = 64;
/** Same as `redirectUrl` in schemas/containers.schema.json: no spaces, quotes or backslashes. */
const REDIRECT_URL = /^https?:\/\/[A-Za-z0-9._~:/?@!$&()*+,;=%-]+$/;
/** Same pattern as a container's `type` (an image name, also a directory name on the host). */
const TYPE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function quoted(value: string): string {
  return JSON.stringify(value);
}

export function assertUserName(name: string, role = 'user'): void {
  if (!USER_NAME.test(name)) {
    throw new UserError(
      `invalid ${role} name ${quoted(name)}: must be a lowercase DNS label of at most 32 characters, ` +
        `starting with a letter (letters, digits and '-')`,
    );
  }
}

/** A name for a new user or reseller: valid, and not the built-in root. */
export function assertNewUserName(name: string, role = 'user'): void {
  assertUserName(name, role);
  if (name === ROOT_USERNAME) throw new UserError(`user "root" is built in (reseller 0, user 0); choose another ${role} name`);
}

function assertDnsName(name: string, what: string, maxLength: number): void {
  if (name.length > maxLength || !DNS_NAME.test(name)) {
    throw new UserError(
      `invalid ${what} name ${quoted(name)}: must be a lowercase DNS name (letters, digits, '-' and '.'; ` +
        `labels of at most 63 characters, ${maxLength} in all)`,
    );
  }
}

export function assertContainerName(name: string): void {
  assertDnsName(name, 'container', CONTAINER_NAME_MAX);
}

export function assertHostName(name: string): void {
  assertDnsName(name, 'host', HOST_NAME_MAX);
}

export function assertContainerType(type: string): void {
  if (!TYPE_NAME.test(type)) {
    throw new UserError(
      `invalid container type ${quoted(type)}: must be a base image name of lowercase letters, digits, '_' and '-' (e.g. debian, fedora, busybox)`,
    );
  }
}

export function assertPort(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new UserError(`invalid ${what} ${String(value)}: a port is an integer 1–65535`);
  }
}

/**
 * One public key, checked by the key parser (a newline would smuggle in a second key, options in
 * front would widen what it may do); returns the key in its stored form.
 */
export function assertSshKey(key: string, index: number): string {
  try {
    return parsePublicKey(key).line;
  } catch (error) {
    if (error instanceof PublicKeyError) throw new UserError(`invalid ssh key #${index + 1}: ${error.message}`);
    throw error;
  }
}

export function assertDisplayName(name: string): void {
  if (CONTROL_CHARS.test(name)) throw new UserError(`invalid display name ${quoted(name)}: no control characters allowed`);
}

/**
 * Redirect targets end up in the reverse proxy's configuration: only the keywords or an
 * absolute http(s) URL without whitespace or quotes.
 */
export function assertRedirectValue(field: 'http-redirect' | 'https-redirect', value: string): void {
  const keyword = field === 'http-redirect' ? 'https' : 'http';
  if (value === 'none' || value === keyword) return;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || url.hostname === '' || !REDIRECT_URL.test(value)) {
    throw new UserError(
      `invalid ${field} ${quoted(value)}: must be "none", "${keyword}" or an absolute http:// or https:// URL without spaces or quotes`,
    );
  }
}
