// The yaml package is loaded only when YAML is read: a datastore of JSON files (settings.json
// included) is loaded and checked without it. Each test file has its own module registry, so the
// package starts unloaded here; the tests run in order.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import { readSettingsFile } from '../../../src/datastore/settings-file.js';
import { loadYaml, yamlPackage } from '../../../src/datastore/yaml-module.js';

const exampleJson = new URL('../../../examples/datastore-json', import.meta.url).pathname;
const exampleYaml = new URL('../../../examples/datastore', import.meta.url).pathname;

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'sc-yaml-lazy-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** readSettingsFile of a dir holding only settings.json with `text`. */
async function settingsJson(text: string): Promise<unknown> {
  const dir = mkdtempSync(join(scratch, 's-'));
  writeFileSync(join(dir, 'settings.json'), text);
  return readSettingsFile(dir);
}

/** What readSettingsFile made of any file before: the yaml parser's data, or undefined when it throws. */
function viaYaml(text: string): unknown {
  try {
    const data = parse(text) as unknown;
    return data !== null && typeof data === 'object' ? data : {};
  } catch {
    return undefined;
  }
}

test('a JSON datastore and its settings.json are read without the yaml package', async () => {
  const loaded = await loadDatastore({ dir: exampleJson, readOnly: true, origin: 'option' });
  expect(Object.keys(loaded.model.containers).length).toBeGreaterThan(0);
  expect(await readSettingsFile(exampleJson)).toEqual(loaded.model.settings);
  expect(() => yamlPackage()).toThrow(/before loadYaml/);
});

test('settings.json read by JSON.parse gives what the yaml parser gave', async () => {
  const cases = [
    '{"source": {"url": "/srv/farm.git", "verify": true}}',
    '{\n\t"source": {"verify": false}\n}',
    '{"s": "\\ud83d\\ude00 \\/ \\u0000", "n": 12345678901234567890, "z": -0, "<<": {"x": 1}}',
    '[1, 2]',
    'null',
    '"text"',
  ];
  for (const text of cases) expect(await settingsJson(text)).toEqual(viaYaml(text));
  expect(() => yamlPackage()).toThrow(/before loadYaml/);
});

test('settings.json that JSON.parse would read differently goes to the yaml parser', async () => {
  const cases = [
    // One key twice: JSON.parse keeps the last, the yaml parser refuses the file (no settings).
    '{"source": {"verify": true, "verify": false}}',
    // A byte-order mark, YAML in a .json file, nesting past the datastore's limit.
    '\uFEFF{"source": {"verify": true}}',
    'source:\n  verify: true\n',
    `${'['.repeat(100)}${']'.repeat(100)}`,
    '{ not json',
  ];
  for (const text of cases) expect(await settingsJson(text)).toEqual(viaYaml(text));
  expect(await settingsJson(cases[0] as string)).toBeUndefined();
});

test('a YAML datastore loads the package', async () => {
  await loadDatastore({ dir: exampleYaml, readOnly: true, origin: 'option' });
  expect(yamlPackage()).toBe(await loadYaml());
  expect(typeof yamlPackage().parseDocument).toBe('function');
});
