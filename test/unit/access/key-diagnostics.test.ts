// sc validate's view of the users' keys: unusable ones are warnings with their place, a private
// key is an error, and no message carries the key text.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyDiagnostics } from '../../../src/access/key-diagnostics.js';
import type { Model } from '../../../src/datastore/model.js';

const keys = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/ssh/public-keys.txt'), 'utf8')
  .split('\n')
  .filter((l) => /^(ssh|ecdsa)-/.test(l));
const ed = keys[0] as string;
const dsa = keys.find((k) => k.startsWith('ssh-dss')) as string;

test('unusable keys are warnings at their JSON path; a private key is an error; good keys say nothing', () => {
  const model = {
    clusters: {},
    containers: {},
    settings: {},
    users: { a: { ssh_keys: [ed, dsa] }, b: { ssh_keys: ['PuTTY-User-Key-File-3: ssh-ed25519'] } },
  } as unknown as Model;
  const found = keyDiagnostics(model, (p) => ({ file: 'users.yaml', line: 7, path: `/${p.join('/')}` }));
  expect(found.map((d) => [d.severity, d.path])).toEqual([
    ['warning', '/a/ssh_keys/1'],
    ['error', '/b/ssh_keys/0'],
  ]);
  expect(found[0]?.message).toMatch(/^SSH key #2 of a is not installed anywhere: DSA/);
  expect(found[1]?.message).toMatch(/PRIVATE key/);
  for (const d of found) expect(d.message).not.toContain('AAAA');
});
