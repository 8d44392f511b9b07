// `sc out` / `sc get`: srvctl 3's shell-quoted key='value' lines (checked by eval in sh) and
// raw or derived fields of containers, users and hosts.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import type { Model } from '../../../src/datastore/model.js';
import { getField, outRecord, shellQuote } from '../../../src/datastore/query-verbs.js';
import { UserError } from '../../../src/errors.js';
import { CLUSTERS_YAML, CONTAINERS_YAML, makeDatastore, USERS_YAML, writableLocation } from '../../fixtures/edit/small-datastore.js';

let dir: string;
let model: Model;
beforeAll(async () => {
  dir = await makeDatastore(
    {
      'clusters.yaml': CLUSTERS_YAML,
      'users.yaml': USERS_YAML.replace('Alpha Hosting', `"Alpha's $(Hosting) \`x\`"`),
      'containers.yaml': `${CONTAINERS_YAML}  http-redirect: none\n  mapped_ports:\n    - { proto: tcp, host_port: 2022, container_port: 22 }\n`,
    },
    'sc-query-',
  );
  model = (await loadDatastore(writableLocation(dir))).model;
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** What a srvctl 3 script sees after `eval "$(sc out …)"`. */
function evalInShell(lines: string[], variables: string[]): Record<string, string> {
  const script = `eval "$SC_LINES"; for v in ${variables.join(' ')}; do eval "printf '%s\\0' \\"\\$$v\\""; done`;
  const out = execFileSync('sh', ['-c', script], { env: { PATH: process.env.PATH, SC_LINES: lines.join('\n') }, encoding: 'utf8' });
  const values = out.split('\0');
  return Object.fromEntries(variables.map((v, i) => [v, values[i] ?? '']));
}

test('out container: C= then the fields, derived bridge/gateway/reseller, shell-quoted', () => {
  const { lines, record } = outRecord(model, 'container', 'shop.example.com');
  expect(lines).toEqual([
    "C='shop.example.com'",
    "user='alice'",
    "host='web1.example.net'",
    "type='debian'",
    "ip='10.17.3.20'",
    "http_redirect='none'",
    `mapped_ports='[{"proto":"tcp","host_port":2022,"container_port":22}]'`,
    "reseller='alpha'",
    "bridge='sc-17-3'",
    "gateway='10.17.3.1'",
    "hostnet='1'",
    "cluster='eu'",
  ]);
  expect(record).toMatchObject({ container: 'shop.example.com', 'http-redirect': 'none', bridge: 'sc-17-3', mapped_ports: [{ host_port: 2022 }] });
  expect(evalInShell(lines, ['C', 'ip', 'http_redirect', 'bridge'])).toEqual({
    C: 'shop.example.com',
    ip: '10.17.3.20',
    http_redirect: 'none',
    bridge: 'sc-17-3',
  });
});

test('out user: quotes, $() and backticks in values stay literal under eval', () => {
  const { lines } = outRecord(model, 'user', 'alpha');
  expect(lines[0]).toBe("U='alpha'");
  expect(lines[1]).toBe(`name='Alpha'\\''s $(Hosting) \`x\`'`);
  expect(evalInShell(lines, ['U', 'name', 'reseller_id'])).toEqual({ U: 'alpha', name: "Alpha's $(Hosting) `x`", reseller_id: '1' });
  expect(outRecord(model, 'user', 'root').lines).toEqual(["U='root'", "reseller_id='0'", "user_id='0'"]);
});

test('out host: SC_HOSTNAME and SC_<FIELD> lines with SC_CLUSTERNAME', () => {
  expect(outRecord(model, 'host', 'web2.example.net').lines).toEqual([
    "SC_HOSTNAME='web2.example.net'",
    "SC_HOSTNET='2'",
    "SC_HOST_IP='192.0.2.12'",
    "SC_CLUSTERNAME='eu'",
  ]);
});

test('get: raw and derived fields, dash or underscore spelling', () => {
  expect(getField(model, 'container', 'shop.example.com', 'ip')).toBe('10.17.3.20');
  expect(getField(model, 'container', 'shop.example.com', 'bridge')).toBe('sc-17-3');
  expect(getField(model, 'container', 'shop.example.com', 'gateway')).toBe('10.17.3.1');
  expect(getField(model, 'container', 'shop.example.com', 'reseller')).toBe('alpha');
  expect(getField(model, 'container', 'shop.example.com', 'http_redirect')).toBe('none');
  expect(getField(model, 'container', 'shop.example.com', 'mapped_ports')).toEqual([{ proto: 'tcp', host_port: 2022, container_port: 22 }]);
  expect(getField(model, 'user', 'alice', 'uid')).toBe(1003);
  expect(getField(model, 'user', 'r', 'reseller')).toBe('root');
  expect(getField(model, 'host', 'web1.example.net', 'SC_HOST_IP')).toBe('192.0.2.11');
});

test('unknown names and missing fields are UserErrors with clear messages', () => {
  expect(() => getField(model, 'container', 'shop.example.com', 'enabled')).toThrow('container shop.example.com has no field enabled');
  expect(() => getField(model, 'container', 'nope.example.com', 'ip')).toThrow(UserError);
  expect(() => outRecord(model, 'container', 'nope.example.com')).toThrow('unknown container "nope.example.com"');
  expect(() => outRecord(model, 'user', 'constructor')).toThrow('unknown user "constructor"');
  expect(() => outRecord(model, 'host', 'web9.example.net')).toThrow(/unknown host "web9.example.net"/);
});

test('shellQuote survives any string through sh', () => {
  const nasty = `a'b"c$d\`e\\f\ng'' ;rm -rf /`;
  expect(evalInShell([`x=${shellQuote(nasty)}`], ['x'])).toEqual({ x: nasty });
});
