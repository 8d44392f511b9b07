// The public key parser against keys ssh-keygen made (fingerprints and sizes as `ssh-keygen -l`
// printed them) and every kind of bad input issue 16 names; errors never echo the input.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { looksLikePrivateKey, normalizeFingerprint, parsePublicKey, PublicKeyError } from '../../../src/access/public-keys.js';

const fixture = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ssh/public-keys.txt'), 'utf8').split('\n');
/** key line → [bits, fingerprint] from the ssh-keygen -l line after it. */
const keys = new Map<string, [number, string]>();
for (let i = 1; i + 1 < fixture.length; i += 2) {
  const [, bits, fp] = /^# (\d+) (SHA256:\S+)/.exec(fixture[i + 1] as string) ?? [];
  keys.set(fixture[i] as string, [Number(bits), fp as string]);
}
const keyOf = (type: string, bits?: number): string =>
  [...keys.entries()].find(([l, [b]]) => l.startsWith(`${type} `) && (bits === undefined || b === bits))?.[0] as string;

function refusal(text: string): PublicKeyError {
  try {
    parsePublicKey(text);
  } catch (error) {
    expect(error).toBeInstanceOf(PublicKeyError);
    return error as PublicKeyError;
  }
  throw new Error('accepted');
}

describe('parsePublicKey', () => {
  it("reads ed25519, RSA 2048 and the three ECDSA curves with ssh-keygen's fingerprint and size", () => {
    const accepted = [
      keyOf('ssh-ed25519'),
      keyOf('ssh-rsa', 2048),
      keyOf('ecdsa-sha2-nistp256'),
      keyOf('ecdsa-sha2-nistp384'),
      keyOf('ecdsa-sha2-nistp521'),
    ];
    for (const line of accepted) {
      const key = parsePublicKey(line);
      const [bits, fingerprint] = keys.get(line) as [number, string];
      expect([key.bits, key.fingerprint]).toEqual([bits, fingerprint]);
      expect(key.line).toBe(line);
      expect(key.comment).toMatch(/@test$/);
    }
  });

  it('normalises spacing and keeps a key without comment', () => {
    const [type, data] = keyOf('ssh-ed25519').split(' ') as [string, string];
    expect(parsePublicKey(`  ${type}\t${data}   my  laptop \n`).line).toBe(`${type} ${data} my laptop`);
    expect(parsePublicKey(`${type} ${data}`).line).toBe(`${type} ${data}`);
  });

  it('refuses RSA under 2048 bits and DSA', () => {
    expect(refusal(keyOf('ssh-rsa', 1024)).message).toMatch(/under 2048 bits.*1024/);
    expect(refusal(keyOf('ssh-dss')).message).toMatch(/DSA/);
  });

  it('refuses options in front of the key, embedded newlines, certificates and junk', () => {
    const ed = keyOf('ssh-ed25519');
    expect(refusal(`command="/bin/sh" ${ed}`).message).toMatch(/options in front of the key/);
    expect(refusal(`restrict,permitopen="x:22" ${ed}`).message).toMatch(/options in front/);
    expect(refusal(`${ed}\n${keyOf('ssh-rsa', 2048)}`).message).toMatch(/line breaks/);
    expect(refusal(`${ed}\u0007`).message).toMatch(/control characters/);
    expect(refusal('ssh-ed25519-cert-v01@openssh.com AAAA').message).toMatch(/certificates/);
    expect(refusal('hello world').message).toMatch(/not an OpenSSH public key/);
    expect(refusal('ssh-ed25519 not*base64').message).toMatch(/not base64/);
    expect(refusal('').message).toMatch(/empty/);
  });

  it('refuses a blob whose inner type differs, a truncated blob and an ed25519 key of the wrong size', () => {
    const rsaData = keyOf('ssh-rsa', 2048).split(' ')[1] as string;
    expect(refusal(`ssh-ed25519 ${rsaData}`).message).toMatch(/says ssh-ed25519 but the key data is a "ssh-rsa"/);
    const ed = Buffer.from(keyOf('ssh-ed25519').split(' ')[1] as string, 'base64');
    expect(refusal(`ssh-ed25519 ${ed.subarray(0, ed.length - 4).toString('base64')}`).message).toMatch(/truncated/);
    const short = Buffer.concat([ed.subarray(0, 15), Buffer.from([0, 0, 0, 16]), Buffer.alloc(16, 1)]);
    expect(refusal(`ssh-ed25519 ${short.toString('base64')}`).message).toMatch(/32 bytes/);
  });

  it('refuses an ECDSA point that is not on its curve', () => {
    const blob = Buffer.from(keyOf('ecdsa-sha2-nistp256').split(' ')[1] as string, 'base64');
    const bent = Buffer.from(blob);
    bent[bent.length - 1] = (bent[bent.length - 1] as number) ^ 1;
    expect(refusal(`ecdsa-sha2-nistp256 ${bent.toString('base64')}`).message).toMatch(/not a valid key/);
  });

  it('refuses a private key loudly and never echoes it', () => {
    const secret = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW';
    const text = `-----BEGIN OPENSSH PRIVATE KEY-----\n${secret}\n-----END OPENSSH PRIVATE KEY-----\n`;
    const error = refusal(text);
    expect(error.privateKey).toBe(true);
    expect(error.message).toMatch(/PRIVATE key/);
    expect(error.message).not.toContain(secret);
    expect(looksLikePrivateKey('-----BEGIN RSA PRIVATE KEY-----\nxx')).toBe(true);
    expect(looksLikePrivateKey('PuTTY-User-Key-File-3: ssh-ed25519')).toBe(true);
    expect(looksLikePrivateKey('-----BEGIN PGP PRIVATE KEY BLOCK-----')).toBe(true);
    expect(looksLikePrivateKey(keyOf('ssh-ed25519'))).toBe(false);
    expect(looksLikePrivateKey('-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----')).toBe(false);
  });

  it('error messages never contain the key data', () => {
    for (const line of [keyOf('ssh-rsa', 1024), keyOf('ssh-dss'), `command="x" ${keyOf('ssh-ed25519')}`]) {
      expect(refusal(line).message).not.toContain(line.split(' ').find((f) => f.startsWith('AAAA')));
    }
  });
});

describe('normalizeFingerprint', () => {
  it('accepts SHA256:… with or without the prefix, nothing else', () => {
    const fp = 'SHA256:j8kO8oflKZE1AE+3EOC4tN2D+e1LYmwYZCQlVkdKuyw';
    expect(normalizeFingerprint(fp)).toBe(fp);
    expect(normalizeFingerprint(fp.slice(7))).toBe(fp);
    expect(normalizeFingerprint('MD5:aa:bb')).toBeUndefined();
  });
});
