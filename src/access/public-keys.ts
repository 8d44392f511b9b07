// OpenSSH public keys as users hand them in: one line `TYPE BASE64 [COMMENT]`. The parser decodes
// the key blob the way `ssh-keygen -l` does (type inside the blob, RSA modulus size, EC point on
// its curve via node:crypto) and refuses what must never reach an authorized_keys file: private
// keys (never echoed), DSA, RSA under 2048 bits, options in front of the key, several lines.
import { createHash, createPublicKey } from 'node:crypto';

export const MIN_RSA_BITS = 2048;

/** The key types sc installs. Certificates and DSA are refused with their own message. */
const ACCEPTED_TYPES = [
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
] as const;
export type PublicKeyType = (typeof ACCEPTED_TYPES)[number];

const KEY_TYPE_LIKE = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9]+|sk-[a-z0-9-]+@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const CONTROL_CHARS = /[\u0000-\u0008\u000b-\u001f\u007f]/;

export interface PublicKey {
  readonly type: PublicKeyType;
  /** The base64 key blob, as given. */
  readonly blob: string;
  readonly comment?: string;
  readonly bits: number;
  /** `SHA256:…` as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  /** `TYPE BASE64 [COMMENT]` with single spaces: the form stored and installed. */
  readonly line: string;
}

/** Why a text is not an acceptable public key. Never contains the text itself. */
export class PublicKeyError extends Error {
  constructor(
    message: string,
    /** True when the text was a private key: the caller must say so loudly and never echo it. */
    readonly privateKey = false,
  ) {
    super(message);
    this.name = 'PublicKeyError';
  }
}

export const PRIVATE_KEY_REFUSAL =
  'this is a PRIVATE key: it was not stored and is not shown; keep it secret and give the public key (the .pub file) instead';

/** Whether a text holds private key material (PEM/OpenSSH/PuTTY private key markers). */
export function looksLikePrivateKey(text: string): boolean {
  // PEM/OpenSSH (`-----BEGIN OPENSSH PRIVATE KEY-----`, RSA, EC, ENCRYPTED …), PGP key blocks, PuTTY .ppk.
  return /PRIVATE KEY( BLOCK)?-----|PuTTY-User-Key-File-\d/.test(text);
}

/** `SHA256:` + unpadded base64 of the SHA-256 of the key blob. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Reads the length-prefixed strings of an SSH wire-format blob. */
class BlobReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  string(): Buffer {
    if (this.offset + 4 > this.buf.length) throw new PublicKeyError('the key data is truncated');
    const length = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    if (length > this.buf.length - this.offset) throw new PublicKeyError('the key data is truncated');
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  text(): string {
    return this.string().toString('latin1');
  }
  end(): void {
    if (this.offset !== this.buf.length) throw new PublicKeyError('the key data has trailing bytes');
  }
}

/** An mpint without its sign padding. */
const unsignedBytes = (mpint: Buffer): Buffer => {
  let start = 0;
  while (start < mpint.length - 1 && mpint[start] === 0) start += 1;
  return mpint.subarray(start);
};

const bitLength = (bytes: Buffer): number => {
  const first = bytes[0] ?? 0;
  return bytes.length === 0 || first === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(first));
};

const b64url = (b: Buffer): string => b.toString('base64url');

const CURVES: Readonly<Record<string, { jwk: string; bits: number; size: number }>> = {
  nistp256: { jwk: 'P-256', bits: 256, size: 32 },
  nistp384: { jwk: 'P-384', bits: 384, size: 48 },
  nistp521: { jwk: 'P-521', bits: 521, size: 66 },
};

/** Checks that the bytes are a valid key of the type (node:crypto rejects points off the curve). Returns its size in bits. */
function checkKeyMaterial(type: PublicKeyType, reader: BlobReader): number {
  const load = (jwk: Record<string, string>): void => {
    try {
      createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      throw new PublicKeyError(`the ${type} key data is not a valid key`);
    }
  };
  if (type === 'ssh-ed25519' || type === 'sk-ssh-ed25519@openssh.com') {
    const point = reader.string();
    if (point.length !== 32) throw new PublicKeyError(`an ${type} key is 32 bytes, this one is ${point.length}`);
    load({ kty: 'OKP', crv: 'Ed25519', x: b64url(point) });
    if (type.startsWith('sk-')) reader.string(); // the FIDO application, e.g. ssh:
    reader.end();
    return 256;
  }
  if (type === 'ssh-rsa') {
    const e = unsignedBytes(reader.string());
    const n = unsignedBytes(reader.string());
    reader.end();
    const bits = bitLength(n);
    if (bits < MIN_RSA_BITS)
      throw new PublicKeyError(
        `RSA keys under ${MIN_RSA_BITS} bits are refused (this one has ${bits}); make a new one with \`ssh-keygen -t ed25519\``,
      );
    load({ kty: 'RSA', n: b64url(n), e: b64url(e) });
    return bits;
  }
  // ecdsa-sha2-nistpNNN and sk-ecdsa-sha2-nistp256@openssh.com
  const expected = /nistp(256|384|521)/.exec(type)?.[0] as string;
  const curveName = reader.text();
  if (curveName !== expected) throw new PublicKeyError(`the key data names curve "${curveName.slice(0, 20)}", not ${expected}`);
  const curve = CURVES[expected] as { jwk: string; bits: number; size: number };
  const point = reader.string();
  if (point.length !== 1 + 2 * curve.size || point[0] !== 4)
    throw new PublicKeyError(`the ${type} key point is not an uncompressed ${expected} point`);
  load({ kty: 'EC', crv: curve.jwk, x: b64url(point.subarray(1, 1 + curve.size)), y: b64url(point.subarray(1 + curve.size)) });
  if (type.startsWith('sk-')) reader.string();
  reader.end();
  return curve.bits;
}

/**
 * Parses one public key line. Throws PublicKeyError with a message that never contains the
 * input (it might be a secret pasted by mistake).
 */
export function parsePublicKey(text: string): PublicKey {
  if (looksLikePrivateKey(text)) {
    throw new PublicKeyError(PRIVATE_KEY_REFUSAL, true);
  }
  const trimmed = text.replace(/^[ \t]+|[ \t\r\n]+$/g, '');
  if (/[\r\n]/.test(trimmed)) throw new PublicKeyError('one key per line: the text has embedded line breaks');
  if (CONTROL_CHARS.test(trimmed)) throw new PublicKeyError('the text contains control characters');
  if (trimmed === '') throw new PublicKeyError('the key is empty');
  const fields = trimmed.split(/[ \t]+/);
  const [type = '', data = '', ...rest] = fields;
  if (type === 'ssh-dss')
    throw new PublicKeyError('DSA keys (ssh-dss) are refused: OpenSSH no longer accepts them; make a new key with `ssh-keygen -t ed25519`');
  if (type.endsWith('-cert-v01@openssh.com')) throw new PublicKeyError('SSH certificates are not accepted: give the plain public key');
  if (!KEY_TYPE_LIKE.test(type)) {
    if (fields.slice(1).some((f) => KEY_TYPE_LIKE.test(f))) {
      throw new PublicKeyError(
        'options in front of the key (like command="…" or from="…") are not accepted: give only TYPE KEY [COMMENT]; sc writes the options itself',
      );
    }
    throw new PublicKeyError('not an OpenSSH public key (expected a line like "ssh-ed25519 AAAA… comment")');
  }
  if (!(ACCEPTED_TYPES as readonly string[]).includes(type))
    throw new PublicKeyError(
      `key type ${type} is not accepted (use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least ${MIN_RSA_BITS} bits)`,
    );
  const keyType = type as PublicKeyType;
  if (data === '' || !BASE64.test(data) || data.length % 4 !== 0) throw new PublicKeyError(`the ${keyType} key data is not base64`);
  const blob = Buffer.from(data, 'base64');
  const reader = new BlobReader(blob);
  const inner = reader.text();
  if (inner !== keyType) throw new PublicKeyError(`the line says ${keyType} but the key data is a "${inner.slice(0, 40)}" key`);
  const bits = checkKeyMaterial(keyType, reader);
  const comment = rest.join(' ');
  return {
    type: keyType,
    blob: data,
    ...(comment !== '' ? { comment } : {}),
    bits,
    fingerprint: fingerprintOf(blob),
    line: comment !== '' ? `${keyType} ${data} ${comment}` : `${keyType} ${data}`,
  };
}

/** Parses, returning undefined for a line that is not an acceptable key (datastore values already validated). */
export function tryParsePublicKey(text: string): PublicKey | undefined {
  try {
    return parsePublicKey(text);
  } catch {
    return undefined;
  }
}

/** A fingerprint as users type it: `SHA256:abc…` (the prefix may be omitted). */
export function normalizeFingerprint(text: string): string | undefined {
  const body = text.trim().replace(/^SHA256:/i, '');
  return /^[A-Za-z0-9+/]{43}$/.test(body) ? `SHA256:${body}` : undefined;
}
