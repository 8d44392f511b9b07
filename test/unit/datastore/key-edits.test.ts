// sc add-publickey / remove-publickey on temp copies of a small datastore: keys checked before
// anything is written, duplicates not added, removal by fingerprint, refusals write nothing.
import { promises as fs } from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parsePublicKey } from '../../../src/access/public-keys.js';
import { addPublicKeys, parseKeyInputs, removePublicKey } from '../../../src/datastore/key-edits.js';
import { editContext, makeDatastore, snapshot, SMALL_YAML } from '../../fixtures/edit/small-datastore.js';

const lines = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ssh/public-keys.txt'), 'utf8')
  .split('\n')
  .filter((l) => /^(ssh|ecdsa)-/.test(l));
const [ED, RSA, RSA1024, P256] = lines as [string, string, string, string];

const dirs: string[] = [];
async function datastore(): Promise<string> {
  const dir = await makeDatastore(SMALL_YAML);
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});
const users = async (dir: string) => parseYaml(await fs.readFile(join(dir, 'users.yaml'), 'utf8')) as Record<string, { ssh_keys?: string[] }>;

describe('parseKeyInputs', () => {
  test('a file holds one key per line (comments and blanks skipped); an argument must be one line', () => {
    expect(parseKeyInputs([{ text: `# mine\n${ED}\n\n${P256}\n`, where: 'k.pub', file: true }]).map((k) => k.line)).toEqual([ED, P256]);
    expect(() => parseKeyInputs([{ text: `${ED}\n${P256}`, where: 'the key argument' }])).toThrow(/the key argument: one key per line/);
  });
  test('the bad line is named by file and line, never shown; a private key file is refused whole', () => {
    expect(() => parseKeyInputs([{ text: `${ED}\n${RSA1024}\n`, where: 'k.pub', file: true }])).toThrow(/^k\.pub line 2: RSA keys under 2048 bits/);
    const secret = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ';
    let message = '';
    try {
      parseKeyInputs([
        { text: `-----BEGIN OPENSSH PRIVATE KEY-----\n${secret}\n-----END OPENSSH PRIVATE KEY-----\n`, where: 'id_ed25519', file: true },
      ]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^id_ed25519: this is a PRIVATE key/);
    expect(message).not.toContain(secret);
    expect(() => parseKeyInputs([{ text: '# nothing\n', where: 'empty.pub', file: true }])).toThrow(/no public key in it/);
  });
});

describe('add-publickey / remove-publickey', () => {
  test('adds new keys, skips ones already there (same key data), removes by fingerprint', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    const added = await addPublicKeys(ctx, 'alice', [parsePublicKey(ED), parsePublicKey(RSA)]);
    expect(added.message).toContain(parsePublicKey(ED).fingerprint);
    expect((await users(dir)).alice?.ssh_keys).toEqual([ED, RSA]);
    const again = await addPublicKeys(ctx, 'alice', [parsePublicKey(`${ED.split(' ').slice(0, 2).join(' ')} other-comment`)]);
    expect(again.message).toMatch(/already has .*nothing to add/);
    expect(again.files).toEqual([]);
    await removePublicKey(ctx, 'alice', parsePublicKey(ED).fingerprint);
    expect((await users(dir)).alice?.ssh_keys).toEqual([RSA]);
    await removePublicKey(ctx, 'alice', parsePublicKey(RSA).fingerprint.slice('SHA256:'.length));
    expect((await users(dir)).alice?.ssh_keys).toBeUndefined();
  });

  test('unknown users, unknown fingerprints and bad fingerprints are refused; nothing written', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await expect(addPublicKeys(ctx, 'nobody', [parsePublicKey(ED)])).rejects.toThrow(/unknown user "nobody"/);
    await expect(removePublicKey(ctx, 'alice', parsePublicKey(ED).fingerprint)).rejects.toThrow(/alice has no key SHA256:/);
    await expect(removePublicKey(ctx, 'alice', 'MD5:aa:bb')).rejects.toThrow(/invalid fingerprint/);
    expect(await snapshot(dir)).toEqual(SMALL_YAML);
  });

  test('root may be absent from users: its record is created with its keys', async () => {
    const dir = await datastore();
    await addPublicKeys(editContext(dir), 'root', [parsePublicKey(P256)]);
    expect((await users(dir)).root).toEqual({ reseller_id: 0, user_id: 0, uid: 0, ssh_keys: [P256] });
  });
});
