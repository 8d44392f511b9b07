// sc add-vpn-client / remove-vpn-client on temp copies of a small datastore: host parts allocated
// lowest-free in .201–.250, public material only (a private key is refused and never shown), a full
// range refused, refusals write nothing, cross-checks catch hand-edited duplicates.
import { promises as fs, readFileSync } from 'node:fs';
import path, { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify } from 'yaml';
import { UserError } from '../../../src/errors.js';
import { addVpnClient, csrCommonName, parseVpnMaterial, removeVpnClient } from '../../../src/datastore/vpn-client-edits.js';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import { editContext, makeDatastore, snapshot, SMALL_YAML, writableLocation } from '../../fixtures/edit/small-datastore.js';

const CSR = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/vpn/alice-laptop.csr'), 'utf8');
const SECRET = 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRET';
const PRIVATE = `-----BEGIN PRIVATE KEY-----\n${SECRET}\n-----END PRIVATE KEY-----\n`;

const dirs: string[] = [];
async function datastore(): Promise<string> {
  const dir = await makeDatastore(SMALL_YAML);
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});
type Client = { device: string; host_part: number; csr?: string; certificate?: string };
const clients = async (dir: string, user = 'alice') =>
  (parseYaml(await fs.readFile(join(dir, 'users.yaml'), 'utf8')) as Record<string, { vpn_clients?: Client[] }>)[user]?.vpn_clients;

describe('parseVpnMaterial', () => {
  test('a CSR or certificate PEM is kept (normalized); anything else is refused', () => {
    expect(parseVpnMaterial(CSR, 'laptop.csr')).toEqual({ csr: CSR });
    expect(parseVpnMaterial(`\n${CSR.replace(/\n/g, '\r\n')}\n`, 'laptop.csr')).toEqual({ csr: CSR });
    expect(() => parseVpnMaterial('hello', 'x.csr')).toThrow(/^x\.csr: not one PEM certificate request/);
    expect(() => parseVpnMaterial(`${CSR}${CSR}`, 'two.csr')).toThrow(/not one PEM/);
    expect(() => parseVpnMaterial('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'short.csr')).toThrow(
      /does not hold DER data/,
    );
  });
  test('a private key is refused and never shown', () => {
    let message = '';
    try {
      parseVpnMaterial(`${CSR}${PRIVATE}`, 'bundle.pem');
    } catch (error) {
      expect(error).toBeInstanceOf(UserError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^bundle\.pem: this is a PRIVATE key/);
    expect(message).not.toContain(SECRET);
  });
});

describe('add-vpn-client / remove-vpn-client', () => {
  test('allocates .201, .202 …, reuses a freed host part, stores only the CSR given', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    const first = await addVpnClient(ctx, 'alice', 'laptop', parseVpnMaterial(CSR, 'laptop.csr'));
    expect(first.message).toMatch(/alice@laptop.*\.201/);
    await addVpnClient(ctx, 'alice', 'phone');
    await addVpnClient(ctx, 'alice', 'tablet');
    expect(await clients(dir)).toEqual([
      { device: 'laptop', host_part: 201, csr: CSR },
      { device: 'phone', host_part: 202 },
      { device: 'tablet', host_part: 203 },
    ]);
    await removeVpnClient(ctx, 'alice', 'phone');
    await addVpnClient(ctx, 'alice', 'desktop');
    expect((await clients(dir))?.map((c) => [c.device, c.host_part])).toEqual([
      ['laptop', 201],
      ['tablet', 203],
      ['desktop', 202],
    ]);
    // Another user's devices are numbered on their own.
    await addVpnClient(ctx, 'r', 'laptop');
    expect(await clients(dir, 'r')).toEqual([{ device: 'laptop', host_part: 201 }]);
    for (const device of ['laptop', 'tablet', 'desktop']) await removeVpnClient(ctx, 'alice', device);
    expect(await clients(dir)).toBeUndefined();
    expect((await loadDatastore(writableLocation(dir))).model.users.alice?.vpn_clients).toBeUndefined();
  });

  test('refusals write nothing: unknown user, root, bad names, duplicate device, unknown device', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await addVpnClient(ctx, 'alice', 'laptop');
    const before = await snapshot(dir);
    await expect(addVpnClient(ctx, 'bob', 'laptop')).rejects.toThrow(/unknown user "bob"/);
    await expect(addVpnClient(ctx, 'root', 'laptop')).rejects.toThrow(/root has no VPN clients/);
    await expect(addVpnClient(ctx, 'alice', 'Laptop;rm')).rejects.toThrow(/invalid device name/);
    await expect(addVpnClient(ctx, 'alice', 'laptop')).rejects.toThrow(/already has a VPN client "laptop"/);
    await expect(removeVpnClient(ctx, 'alice', 'phone')).rejects.toThrow(/alice has no VPN client "phone" \(alice's devices: laptop\)/);
    expect(await snapshot(dir)).toEqual(before);
  });

  test('a full .201–.250 range is a clear error and writes nothing', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    const doc = parseYaml(await fs.readFile(join(dir, 'users.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    (doc.alice as Record<string, unknown>).vpn_clients = Array.from({ length: 50 }, (_, i) => ({ device: `d${i}`, host_part: 201 + i }));
    await fs.writeFile(join(dir, 'users.yaml'), stringify(doc));
    const before = await snapshot(dir);
    await expect(addVpnClient(ctx, 'alice', 'one-more')).rejects.toThrow(
      /alice has no free VPN client address: all 50 addresses \.201–\.250.*nothing was written/,
    );
    expect(await snapshot(dir)).toEqual(before);
  });

  test('hand edits are checked: duplicate device or host part, a key field, a host part outside .201–.250', async () => {
    const dir = await datastore();
    const doc = parseYaml(await fs.readFile(join(dir, 'users.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    (doc.alice as Record<string, unknown>).vpn_clients = [
      { device: 'laptop', host_part: 201 },
      { device: 'laptop', host_part: 201 },
      { device: 'phone', host_part: 200 },
      { device: 'tablet', host_part: 205, key: PRIVATE },
    ];
    await fs.writeFile(join(dir, 'users.yaml'), stringify(doc));
    const error = await loadDatastore(writableLocation(dir)).then(
      () => undefined,
      (e: unknown) => e as UserError,
    );
    expect(error).toBeInstanceOf(UserError);
    const text = [error?.message, ...(error?.diagnostics ?? []).map((d) => `${d.path ?? ''} ${d.message}`)].join('\n');
    expect(text).toMatch(/\/alice\/vpn_clients\/1\/device .*"laptop" is listed twice/);
    expect(text).toMatch(/\/alice\/vpn_clients\/1\/host_part .*host part 201 is also/);
    expect(text).toMatch(/\/alice\/vpn_clients\/2\/host_part/);
    expect(text).toMatch(/\/alice\/vpn_clients\/3/);
    expect(text).not.toContain(SECRET);
  });
});

describe('add-vpn-client --csr on an existing device', () => {
  test("stores the device's request later, keeping its address; the same request again changes nothing", async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await addVpnClient(ctx, 'alice', 'laptop');
    await addVpnClient(ctx, 'alice', 'phone');
    const stored = await addVpnClient(ctx, 'alice', 'laptop', parseVpnMaterial(CSR, 'laptop.csr'));
    expect(stored.message).toMatch(/stored the certificate request of alice's VPN client laptop .*\.201/);
    expect(await clients(dir)).toEqual([
      { device: 'laptop', host_part: 201, csr: CSR },
      { device: 'phone', host_part: 202 },
    ]);
    const again = await addVpnClient(ctx, 'alice', 'laptop', parseVpnMaterial(CSR, 'laptop.csr'));
    expect(again.files).toEqual([]);
    expect(again.message).toMatch(/nothing to change/);
  });
});

describe('the request names the device', () => {
  test('its CN must be USER@DEVICE; another CN is refused and nothing is written', async () => {
    expect(csrCommonName(CSR)).toBe('alice@laptop');
    const dir = await datastore();
    const before = await snapshot(dir);
    await expect(addVpnClient(editContext(dir), 'alice', 'phone', parseVpnMaterial(CSR, 'laptop.csr'))).rejects.toThrow(
      /the certificate request is for "alice@laptop", not alice@phone: .*-subj \/CN=alice@phone/,
    );
    await expect(addVpnClient(editContext(dir), 'r', 'laptop', parseVpnMaterial(CSR, 'laptop.csr'))).rejects.toThrow(/not r@laptop/);
    expect(await snapshot(dir)).toEqual(before);
  });
});
