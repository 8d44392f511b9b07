// JSON syntax errors: the true line:column (Node 20's JSON.parse gives none) and a message naming
// only the offending character, escaped; never the text around it.
import fc from 'fast-check';
import { findJsonSyntaxProblem, jsonDepth, jsonPathOffsets, jsonShape, jsonTextShape, memberCount } from '../../../src/datastore/json-syntax.js';
import { sourceDocumentFromText } from '../../../src/datastore/load-datastore.js';
import { formatDiagnostic, UserError } from '../../../src/errors.js';
import { dataDepth } from '../../../src/datastore/limits.js';
import { loadYaml } from '../../../src/datastore/yaml-module.js';

// YAML text (and a JSON document's yaml `document`) is parsed synchronously once the package is loaded.
beforeAll(async () => {
  await loadYaml();
});

function syntaxError(text: string, name = '/tmp/x/users.json'): string {
  try {
    sourceDocumentFromText('users', name, text);
  } catch (error) {
    if (error instanceof UserError) return error.diagnostics.map(formatDiagnostic).join('\n');
    throw error;
  }
  throw new Error('no error');
}

test('a mistake on line 4 of a 60-line file is reported at 4:col', () => {
  const lines = ['{'];
  for (let i = 0; i < 58; i++) lines.push(`  "user${i}": { "uid": ${1000 + i} }${i < 57 ? ',' : ''}`);
  lines.push('}');
  expect(lines).toHaveLength(60);
  lines[3] = '  "user2": { "uid": 1002 ,},';
  const text = lines.join('\n');
  JSON.parse(lines.map((l, i) => (i === 3 ? '  "user2": { "uid": 1002 },' : l)).join('\n')); // the fixed file is valid
  expect(syntaxError(text)).toMatch(/users\.json:4:27: JSON syntax: a ',' before '\}' \(trailing comma\)$/);
});

test('a file that is not JSON at all names its first character only, escaped, at 1:1', () => {
  const message = syntaxError('TOPSECRET-0123456789\nmore secret\n');
  expect(message).toMatch(/users\.json:1:1: JSON syntax: unexpected 'T'$/);
  expect(message).not.toContain('OPSECRET');
  expect(syntaxError('\u0007\u0001binary')).toMatch(/:1:1: JSON syntax: unexpected U\+0007$/);
  expect(syntaxError('-----BEGIN PRIVATE KEY-----\nMIIabc')).not.toContain('PRIVATE');
});

test.each([
  ['{"a": 1,}', 1, 9, "a ',' before '}' (trailing comma)"],
  ['{"a" 1}', 1, 6, "expected ':' after the key, not '1'"],
  ['{\n  "a": [1, 2\n}', 3, 1, "expected ',' or ']' after a value, not '}'"],
  ['{"a": "x\ny"}', 1, 9, 'a line break inside a string (escape it)'],
  ['{"a": "x', 1, 7, 'a string that is never closed (missing ")'],
  ['{"a": 01}', 1, 8, "bad number: unexpected '1'"],
  ['{"a": tru}', 1, 7, "unexpected 't'"],
  ['{"a": 1} {}', 1, 10, "unexpected '{' after the end of the document"],
  ['{"a": "\\x"}', 1, 8, 'bad escape \\x in a string'],
  ["{'a': 1}", 1, 2, "expected a key in double quotes, not '''"],
  ['{"a": [', 1, 8, 'unexpected end of the file: 2 unclosed arrays and arrays'],
])('%j → %i:%i %s', (text, line, column, message) => {
  const problem = findJsonSyntaxProblem(text);
  expect(problem).toBeDefined();
  const before = text.slice(0, problem?.offset);
  const gotLine = before.split('\n').length;
  const gotColumn = before.length - before.lastIndexOf('\n');
  expect([gotLine, gotColumn]).toEqual([line, column]);
  if (!message.startsWith('unexpected end')) expect(problem?.message).toBe(message);
});

test('agrees with JSON.parse on valid documents', () => {
  for (const text of ['{}', '[]', '"x"', '1.5e-3', '{"a":[1,{"b":null}],"c":"\\u00e9\\n"}', ' true ']) {
    expect(findJsonSyntaxProblem(text)).toBeUndefined();
  }
});

test('depth is counted without recursion; over a limit it is a problem', () => {
  const deep = '['.repeat(100_000) + ']'.repeat(100_000);
  expect(jsonDepth(deep)).toBe(100_000);
  expect(findJsonSyntaxProblem(deep, 64)).toEqual({ offset: 64, message: 'nesting deeper than 64 levels' });
  expect(jsonDepth('{"[[[": ["]"]}')).toBe(2);
});

describe('limits', () => {
  test('JSON nested deeper than the limit is refused at the bracket that goes too deep', () => {
    const text = `{"a": ${'['.repeat(100)}${']'.repeat(100)}}`;
    expect(syntaxError(text)).toMatch(/users\.json:1:70: JSON: nesting deeper than 64 levels; sc refuses it$/);
  });
  test('YAML nested deeper than the limit is refused (flow and block)', () => {
    expect(syntaxError(`a: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, '/tmp/x/users.yaml')).toMatch(/nesting deeper than 64 levels; sc refuses it$/);
    const block = ['a:', ...Array.from({ length: 99 }, (_, i) => `${'  '.repeat(i + 1)}k:`), `${'  '.repeat(100)}v: 1`].join('\n');
    expect(syntaxError(block, '/tmp/x/users.yaml')).toMatch(/users\.yaml:1:1: YAML: nesting deeper than 64 levels; sc refuses it$/);
  });
  test('YAML aliases that expand exponentially are refused', () => {
    const bomb = [
      'a: &a [x,x,x,x,x,x,x,x,x]',
      ...'bcdef'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdef'[i]}`).join(',')}]`),
    ].join('\n');
    expect(syntaxError(bomb, '/tmp/x/users.yaml')).toMatch(/users\.yaml:1:1: YAML: Excessive alias count/);
  });
});

describe('JSON positions without a YAML document', () => {
  test("agree with the YAML document's positions for every key and element of the example datastore", async () => {
    const { readFile } = await import('node:fs/promises');
    for (const kind of ['clusters', 'users', 'containers', 'settings'] as const) {
      const file = new URL(`../../../examples/datastore-json/${kind}.json`, import.meta.url).pathname;
      const text = `${await readFile(file, 'utf8')}`;
      const viaScan = sourceDocumentFromText(kind, file, text);
      const viaYaml = sourceDocumentFromText(kind, file, text);
      void viaYaml.document; // builds the YAML document: positions come from it from now on
      const paths: (string | number)[][] = [];
      const walk = (value: unknown, path: (string | number)[]): void => {
        paths.push(path);
        if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]));
        else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
      };
      walk(viaScan.data, []);
      expect(paths.length).toBeGreaterThan(5);
      for (const path of [...paths, ['no-such-key'], [...(paths[paths.length - 1] ?? []), 'missing']]) {
        expect([kind, path, viaScan.positionOf(path)]).toEqual([kind, path, viaYaml.positionOf(path)]);
      }
    }
  });
  test('keys with escapes and slashes', () => {
    const text = '{\n  "a/b": [1, {"x\\"y": true}],\n  "c~d": null\n}';
    const offsets = jsonPathOffsets(text);
    expect(offsets.get('/a~1b/1/x"y')).toBe(text.indexOf('"x\\"y"'));
    expect(offsets.get('/c~0d')).toBe(text.indexOf('"c~d"'));
    expect(offsets.get('/a~1b/0')).toBe(text.indexOf('1,'));
  });
});

describe('jsonShape and memberCount', () => {
  it('counts the keys of the text and the members of its value: equal unless keys repeat', () => {
    const text = '{"a": {"b" :1, "c\\":": [{"d": "x:"}, "e", {}]}, "f": "\\\\"}';
    expect(jsonShape(text)).toEqual({ depth: 4, members: 5 });
    expect(memberCount(JSON.parse(text))).toBe(5);
    const repeated = '{"a": 1, "x": {"b": 2, "b": 3}, "a": 4}';
    expect(jsonShape(repeated).members).toBe(5);
    expect(memberCount(JSON.parse(repeated))).toBe(3);
    expect(memberCount(JSON.parse('{"__proto__": {"x": 1}}'))).toBe(2);
  });

  it('bounds the longest string or key of the value by its length as written', () => {
    expect(jsonTextShape('{"abc": ["de", "fghij"], "k": 1}').longestString).toBe(5);
    const escaped = '{"\\u0061\\n": "\\"\\\\"}';
    expect(jsonTextShape(escaped).longestString).toBe(8);
    const longest = Math.max(
      ...[...Object.keys(JSON.parse(escaped) as object), ...Object.values(JSON.parse(escaped) as object)].map((x: string) => x.length),
    );
    expect(longest).toBe(2);
    expect(jsonTextShape('{}').longestString).toBe(0);
  });

  it('agrees with the parsed value for any JSON text (escaped quotes and backslashes included)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', '\\', '"', ':', '{', '}', '[', ']', ',', ' ', 'é', '\u2028') });
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.integer(), text, fc.constant(null), fc.array(tie('node')), fc.dictionary(text, tie('node'))),
    })).node;
    fc.assert(
      fc.property(value, fc.constantFrom(undefined, 2, '\t'), (v, indent) => {
        const json = JSON.stringify(v, null, indent);
        const shape = jsonTextShape(json);
        expect(shape.members).toBe(memberCount(v));
        expect(shape.depth).toBe(dataDepth(v));
        const lengths: number[] = [];
        const walk = (x: unknown): void => {
          if (typeof x === 'string') lengths.push(x.length);
          else if (Array.isArray(x)) x.forEach(walk);
          else if (x !== null && typeof x === 'object')
            for (const [k, y] of Object.entries(x)) {
              lengths.push(k.length);
              walk(y);
            }
        };
        walk(v);
        expect(Math.max(0, ...lengths)).toBeLessThanOrEqual(shape.longestString);
      }),
      { numRuns: 500 },
    );
  });
});
