// EditableDocument and the YAML line replay: an edit rewrites only the lines it touches, keeps
// comments, indentation and quoting elsewhere, and always means exactly the edited data.
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { EditableDocument } from '../../../src/datastore/edit-document.js';
import { sourceDocumentFromText } from '../../../src/datastore/source-document.js';
import { detectYamlStyle, matchLines, replayLineEdits } from '../../../src/datastore/yaml-text-merge.js';
import { loadYaml } from '../../../src/datastore/yaml-module.js';

// YAML documents are parsed and edited synchronously once the package is loaded.
beforeAll(async () => {
  await loadYaml();
});

const HAND_WRITTEN = `# Containers of the farm (hand-written).

shop.example.com:   # alice's shop
  user: alice
  host: "web1.example.net"
  type: debian
  ip: 10.17.3.20
  mapped_ports:
    - proto: tcp
      host_port: 2022
      container_port: 22
wiki.example.com:
  user: bob   # bob's wiki
  host: web1.example.net
  type: busybox
  ip: 10.17.1.20

# the blog
blog.example.com: {user: alice, host: web1.example.net, type: debian, ip: 10.17.3.21}
`;

const FOUR_SPACES = `# indented by four
shop.example.com:   # alice's shop
    user: alice
    host: web1.example.net
    type: debian
`;

function editable(text = HAND_WRITTEN): EditableDocument {
  return EditableDocument.fromSource(sourceDocumentFromText('containers', '/tmp/sc-test/containers.yaml', text));
}

function changedLines(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  const matches = matchLines(a, b) ?? [];
  const inA = new Set(matches.map(([i]) => i));
  const inB = new Set(matches.map(([, j]) => j));
  return { removed: a.filter((_, i) => !inA.has(i)), added: b.filter((_, j) => !inB.has(j)) };
}

describe('YAML edits touch only their lines', () => {
  test("adding a record appends it in the file's indentation and changes nothing else", () => {
    const doc = editable(FOUR_SPACES);
    doc.set(['new.example.com'], { user: 'alice', host: 'web1.example.net', type: 'debian', ip: '10.17.3.22' });
    expect(doc.render()).toBe(`${FOUR_SPACES}new.example.com:\n    user: alice\n    host: web1.example.net\n    type: debian\n    ip: 10.17.3.22\n`);
  });

  test('setting a field in a record with a trailing key comment keeps the comment on its line', () => {
    const doc = editable();
    doc.set(['shop.example.com', 'http-redirect'], 'none');
    const text = doc.render();
    expect(changedLines(HAND_WRITTEN, text)).toEqual({ removed: [], added: ['  http-redirect: none'] });
    expect(text).toContain("shop.example.com:   # alice's shop\n");
    expect(text).toContain('  host: "web1.example.net"\n');
  });

  test('removing a record removes its lines only', () => {
    const doc = editable();
    doc.delete(['wiki.example.com']);
    const { removed, added } = changedLines(HAND_WRITTEN, doc.render());
    expect(added).toEqual([]);
    expect(removed).toEqual(['wiki.example.com:', "  user: bob   # bob's wiki", '  host: web1.example.net', '  type: busybox', '  ip: 10.17.1.20']);
  });

  test('appending to a sequence adds the item in the same style', () => {
    const doc = editable();
    doc.append(['shop.example.com', 'mapped_ports'], { proto: 'udp', host_port: 1194, container_port: 1194 });
    const { removed, added } = changedLines(HAND_WRITTEN, doc.render());
    expect(removed).toEqual([]);
    expect(added).toEqual(['    - proto: udp', '      host_port: 1194', '      container_port: 1194']);
    expect(parseYaml(doc.render())['shop.example.com'].mapped_ports).toHaveLength(2);
  });

  test('an item appended to a list of one-line mappings is one too', () => {
    const doc = editable('c.example.com:\n  mapped_ports:\n    - { proto: tcp, host_port: 2022, container_port: 22 } # ssh\n');
    doc.append(['c.example.com', 'mapped_ports'], { proto: 'udp', host_port: 1194, container_port: 1194 });
    expect(doc.render()).toBe(
      'c.example.com:\n  mapped_ports:\n    - { proto: tcp, host_port: 2022, container_port: 22 } # ssh\n    - { proto: udp, host_port: 1194, container_port: 1194 }\n',
    );
  });

  test('a field inside a flow mapping falls back to a correct rendering', () => {
    const doc = editable();
    doc.set(['blog.example.com', 'enabled'], false);
    const data = parseYaml(doc.render()) as Record<string, Record<string, unknown>>;
    expect(data['blog.example.com']).toEqual({ user: 'alice', host: 'web1.example.net', type: 'debian', ip: '10.17.3.21', enabled: false });
    expect(doc.render()).toContain('# the blog');
  });

  test('random sequences of edits always render exactly the edited data, comments kept', () => {
    const names = ['shop.example.com', 'blog.example.com', 'wiki.example.com', 'a.example.com', 'b.example.com'];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        name: fc.constantFrom(...names),
        field: fc.constantFrom('ip', 'type', 'enabled', 'http-redirect'),
        value: fc.oneof(fc.constantFrom('none', 'x', '10.17.3.99'), fc.boolean()),
      }),
      fc.record({ kind: fc.constant('add' as const), name: fc.constantFrom(...names) }),
      fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...names) }),
      fc.record({ kind: fc.constant('append' as const), name: fc.constantFrom(...names), port: fc.integer({ min: 1, max: 65535 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 6 }), (ops) => {
        const doc = editable();
        for (const o of ops) {
          if (o.kind === 'set') doc.set([o.name, o.field], o.value);
          else if (o.kind === 'add') doc.set([o.name], { user: 'alice', host: 'web1.example.net', type: 'debian' });
          else if (o.kind === 'delete') doc.delete([o.name]);
          else doc.append([o.name, 'mapped_ports'], { proto: 'tcp', host_port: o.port, container_port: 80 });
        }
        const text = doc.render();
        expect(parseYaml(text)).toEqual(doc.toData());
        expect(text).toContain('# Containers of the farm (hand-written).');
        // A comment above a record belongs to it: it goes when the record goes.
        if (!ops.some((o) => o.kind === 'delete' && o.name === 'blog.example.com')) expect(text).toContain('# the blog');
      }),
      { numRuns: 150 },
    );
  });
});

describe('line matching (Myers diff)', () => {
  function lcsLength(a: string[], b: string[]): number {
    const dp = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
    for (let i = a.length - 1; i >= 0; i--)
      for (let j = b.length - 1; j >= 0; j--) dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
    return dp[0]![0]!;
  }

  test('matches equal lines in order, as many as the longest common subsequence', () => {
    const lines = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 25 });
    fc.assert(
      fc.property(lines, lines, (a, b) => {
        const m = matchLines(a, b);
        expect(m).toBeDefined();
        for (const [i, j] of m ?? []) expect(a[i]).toBe(b[j]);
        for (let k = 1; k < (m ?? []).length; k++) {
          expect(m![k]![0]).toBeGreaterThan(m![k - 1]![0]);
          expect(m![k]![1]).toBeGreaterThan(m![k - 1]![1]);
        }
        expect(m?.length).toBe(lcsLength(a, b));
      }),
      { numRuns: 300 },
    );
  });

  test('gives up beyond the edit distance limit', () => {
    expect(matchLines(['a', 'b', 'c'], ['x', 'y', 'z'], 2)).toBeUndefined();
    expect(matchLines(['a', 'b', 'c'], ['x', 'y', 'z'], 6)).toEqual([]);
  });

  test('replays an insertion into text that differs from the rendering elsewhere', () => {
    const original = 'k: # note\n  a: 1\nz: 2\n';
    const before = 'k:\n  # note\n  a: 1\nz: 2\n';
    const after = 'k:\n  # note\n  a: 1\n  b: 3\nz: 2\n';
    expect(replayLineEdits(original, before, after)).toBe('k: # note\n  a: 1\n  b: 3\nz: 2\n');
    // A change in a stretch the original wrote differently takes that stretch's new rendering.
    expect(replayLineEdits(original, before, 'k:\n  # other\n  a: 1\nz: 2\n')).toBe('k:\n  # other\n  a: 1\nz: 2\n');
    // Text that has nothing in common with the rendering is not replayed.
    expect(replayLineEdits('x\n'.repeat(3000), 'y\n'.repeat(3000), 'z\n')).toBeUndefined();
  });

  test('detects indentation and sequence style', () => {
    expect(detectYamlStyle(FOUR_SPACES)).toEqual({ indent: 4, indentSeq: true });
    expect(detectYamlStyle(HAND_WRITTEN)).toEqual({ indent: 2, indentSeq: true });
    expect(detectYamlStyle('a:\n  b:\n  - 1\n')).toEqual({ indent: 2, indentSeq: false });
    expect(detectYamlStyle('a:\n  b:\n    - 1\n')).toEqual({ indent: 2, indentSeq: true });
  });
});

describe('JSON documents', () => {
  test('are edited as data and re-serialized with 2-space indent, key order kept', () => {
    const json = '{"b": {"z": 1, "a": 2}, "a": [1]}';
    const doc = EditableDocument.fromSource(sourceDocumentFromText('users', '/tmp/sc-test/users.json', json));
    doc.set(['b', 'm'], 3);
    doc.append(['a'], 2);
    doc.set(['c', 'x'], { y: true });
    doc.delete(['b', 'z']);
    expect(doc.render()).toBe(`${JSON.stringify({ b: { a: 2, m: 3 }, a: [1, 2], c: { x: { y: true } } }, null, 2)}\n`);
  });

  test('a key named __proto__ stays data and never reaches a prototype', () => {
    const doc = EditableDocument.create('users', '/tmp/sc-test/users.json', 'json');
    doc.set(['__proto__', 'polluted'], true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(doc.render())).toEqual(JSON.parse('{"__proto__":{"polluted":true}}'));
  });
});
