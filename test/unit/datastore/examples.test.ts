// The shipped examples: examples/datastore (YAML) and examples/datastore-json validate and give
// one model; every examples/invalid/<case> is rejected with exactly its one mistake, located —
// by the schemas, the cross-checks or a kind's own validate(model), as `sc validate` loads it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import type { DatastoreLocation } from '../../../src/datastore/datastore-location.js';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import { findHost } from '../../../src/datastore/model.js';
import { parseJsonPointer } from '../../../src/datastore/source-document.js';
import { formatDiagnostic, UserError, type Diagnostic } from '../../../src/errors.js';
import { resolveUserNet } from '../../../src/network/user-network.js';
import { loadDesired } from '../../../src/reconciler/desired-state.js';
import { resourceHandlers } from '../../../src/resources/registry.js';
import { userSubnet } from '../../../src/network/address-plan.js';

const at = (dir: string): DatastoreLocation => ({ dir, readOnly: false, origin: 'option' });

async function rejection(dir: string): Promise<UserError> {
  try {
    await loadDesired(at(dir), resourceHandlers);
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error;
  }
  throw new Error(`${dir} was accepted`);
}

describe('examples/datastore', () => {
  test('the YAML example is valid, without warnings (also from the kinds), and realistic', async () => {
    const { model, warnings, documents } = await loadDesired(at('examples/datastore'), resourceHandlers);
    expect(warnings).toEqual([]);
    expect(Object.values(documents).map((d) => d.format)).toEqual(['yaml', 'yaml', 'yaml', 'yaml']);
    expect(Object.keys(model.clusters)).toEqual(['eu', 'us']);
    const hosts = Object.values(model.clusters).flatMap((h) => Object.keys(h));
    expect(hosts).toEqual(['web1.example.net', 'web2.example.net', 'web3.example.net']);
    const containers = Object.values(model.containers);
    expect(containers.length).toBeGreaterThanOrEqual(18);
    expect(containers.filter((c) => c.type === 'busybox').length).toBeGreaterThanOrEqual(2);
    expect(containers.filter((c) => c.enabled === false).length).toBeGreaterThanOrEqual(1);
    expect(containers.filter((c) => c.mapped_ports?.length).length).toBeGreaterThanOrEqual(2);
    expect(containers.filter((c) => c.aliases?.length).length).toBeGreaterThanOrEqual(2);
    expect(containers.filter((c) => c['http-redirect'] !== undefined).length).toBeGreaterThanOrEqual(2);
    const resellers = Object.entries(model.users).filter(([name, u]) => name !== 'root' && (u.reseller_id ?? 0) >= 1);
    expect(resellers.map(([name]) => name)).toEqual(['alpha', 'bravo']);
    for (const host of hosts) expect(containers.some((c) => c.host === host)).toBe(true);
  });

  test('its addresses follow the plan (SPEC §2 worked example: alice of alpha on hostnet 1 → 10.17.3.20)', async () => {
    const { model } = await loadDatastore(at('examples/datastore'));
    expect(model.containers['shop.example.com']).toMatchObject({ user: 'alice', host: 'web1.example.net', ip: '10.17.3.20' });
    for (const [name, c] of Object.entries(model.containers)) {
      const hostnet = findHost(model, c.host)?.host.hostnet;
      if (hostnet === undefined) throw new Error(`${name}: no host`);
      const net = resolveUserNet(model.users, c.user, hostnet);
      if ('problem' in net) throw new Error(`${name}: ${net.problem}`);
      expect(`${c.ip?.split('.').slice(0, 3).join('.')}.0/24`).toBe(userSubnet(net).cidr);
    }
  });

  test('the JSON example holds the same datastore: deep-equal models', async () => {
    const yaml = await loadDatastore(at('examples/datastore'));
    const json = await loadDesired(at('examples/datastore-json'), resourceHandlers);
    expect(Object.values(json.documents).map((d) => d.format)).toEqual(['json', 'json', 'json', 'json']);
    expect(json.warnings).toEqual([]);
    expect(json.model).toEqual(yaml.model);
    expect(Object.keys(json.model.containers)).toEqual(Object.keys(yaml.model.containers));
  });

  test('the model is deep-frozen', async () => {
    const { model } = await loadDatastore(at('examples/datastore'));
    expect(Object.isFrozen(model)).toBe(true);
    expect(Object.isFrozen(model.containers['www.example.com']?.mapped_ports?.[0])).toBe(true);
  });
});

describe('examples/invalid', () => {
  const root = 'examples/invalid';
  const cases = readdirSync(root).sort();
  // Problems of a whole file (it does not parse, or two files claim one kind) have no JSON path.
  const fileLevel = new Set(['malformed-json', 'malformed-yaml', 'two-formats']);

  test('covers the required cases', () => {
    for (const required of [
      'malformed-json',
      'malformed-yaml',
      'unknown-user',
      'unknown-host',
      'unknown-reseller',
      'duplicate-hostnet',
      'hostnet-16',
      'duplicate-ip',
      'ip-outside-plan',
      'ip-in-gateway-range',
      'bad-container-name',
      'path-traversal-name',
      'user-id-duplicate',
      'missing-allocation',
      'duplicate-mapped-port',
      'user-subnet-full',
      'two-formats',
      'image-package-option',
    ]) {
      expect(cases).toContain(required);
    }
  });

  test.each(cases)('%s is rejected with its one mistake, located', async (name) => {
    const dir = join(root, name);
    const expected = readFileSync(join(dir, 'expect.txt'), 'utf8').trim();
    expect(expected).not.toBe('');
    const error = await rejection(dir);
    const errors = error.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map(formatDiagnostic)).toHaveLength(1);
    const [only] = errors as [Diagnostic];
    expect(formatDiagnostic(only)).toContain(expected);
    expect(only.file).toMatch(new RegExp(`^examples/invalid/${name}/(clusters|users|containers|settings)\\.(json|yaml)$`));
    expect(existsSync(only.file ?? '')).toBe(true);
    expect(only.line).toBeGreaterThanOrEqual(1);
    expect(only.column).toBeGreaterThanOrEqual(1);
    expect(formatDiagnostic(only)).toMatch(/^[^ ]+:\d+:\d+[ :]/);
    if (fileLevel.has(name)) return;
    expect(only.path).toMatch(/^\//);
    expectLineToShow(only);
  });
});

/** The diagnostic's line shows the key it names (or, for a list item, the item's value). */
function expectLineToShow(d: Diagnostic): void {
  const text = readFileSync(d.file ?? '', 'utf8');
  const line = text.split('\n')[(d.line ?? 0) - 1] ?? '';
  const path = parseJsonPointer(d.path ?? '');
  const last = path[path.length - 1] ?? '';
  if (!/^\d+$/.test(last)) {
    expect(line.slice((d.column ?? 1) - 1)).toMatch(new RegExp(`^"?${last.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?:`));
    return;
  }
  const value = parseDocument(text).getIn(path.map((s) => (/^\d+$/.test(s) ? Number(s) : s)));
  expect(line).toContain(String(value));
}
