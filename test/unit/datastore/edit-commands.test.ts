// The datastore commands on temp copies of a small datastore: allocation of ids and addresses per
// SPEC §2, YAML comments kept, JSON re-serialized, refused edits write nothing.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { addContainer, addReseller, addUser, destroyContainer, mapPort, setRedirect } from '../../../src/datastore/datastore-edits.js';
import { runDatastoreEdit } from '../../../src/datastore/edit-session.js';
import { loadDatastore } from '../../../src/datastore/load-datastore.js';
import { UserError } from '../../../src/errors.js';
import { asJson, editContext, makeDatastore, snapshot, SMALL_YAML, writableLocation } from '../../fixtures/edit/small-datastore.js';

const dirs: string[] = [];
async function datastore(files = SMALL_YAML): Promise<string> {
  const dir = await makeDatastore(files);
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
});

async function readYaml(dir: string, file: string): Promise<Record<string, Record<string, unknown>>> {
  return parseYaml(await fs.readFile(join(dir, file), 'utf8')) as Record<string, Record<string, unknown>>;
}

describe('add-ve: container addresses', () => {
  test("worked example: alice's next container on hostnet 1 is 10.17.3.21, a hole is reused", async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    const second = await addContainer(ctx, 'blog.example.com', { user: 'alice' });
    expect(second.changes).toEqual([
      {
        kind: 'containers',
        key: 'blog.example.com',
        action: 'add',
        value: { user: 'alice', host: 'web1.example.net', type: 'debian', ip: '10.17.3.21' },
      },
    ]);
    expect(second.files).toEqual([join(dir, 'containers.yaml')]);
    await destroyContainer(ctx, 'shop.example.com');
    await addContainer(ctx, 'wiki.example.com', { user: 'alice', type: 'busybox', enabled: false });
    const containers = await readYaml(dir, 'containers.yaml');
    expect(Object.keys(containers)).toEqual(['blog.example.com', 'wiki.example.com']);
    expect(containers['wiki.example.com']).toEqual({ user: 'alice', host: 'web1.example.net', type: 'busybox', ip: '10.17.3.20', enabled: false });
  });

  test("root's user r on hostnet 2 gets 10.32.1.20; the datastore stays valid", async () => {
    const dir = await datastore();
    await addContainer(editContext(dir), 'r.example.org', { user: 'r', host: 'web2.example.net' });
    const loaded = await loadDatastore(writableLocation(dir));
    expect(loaded.model.containers['r.example.org']?.ip).toBe('10.32.1.20');
  });

  test('keeps the YAML comments and layout of the file', async () => {
    const dir = await datastore();
    await addContainer(editContext(dir), 'blog.example.com', { user: 'alice' });
    const text = await fs.readFile(join(dir, 'containers.yaml'), 'utf8');
    expect(text).toBe(
      `${SMALL_YAML['containers.yaml']}blog.example.com:\n  user: alice\n  host: web1.example.net\n  type: debian\n  ip: 10.17.3.21\n`,
    );
  });

  test('refuses an existing name, an unknown user and an unknown host with clear messages', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await expect(addContainer(ctx, 'shop.example.com', { user: 'alice' })).rejects.toThrow('container shop.example.com already exists');
    await expect(addContainer(ctx, 'x.example.com', { user: 'bob' })).rejects.toThrow(/unknown user "bob"/);
    await expect(addContainer(ctx, 'x.example.com', { user: 'alice', host: 'web9.example.net' })).rejects.toThrow(
      /unknown host "web9.example.net".*known hosts: web1.example.net, web2.example.net/,
    );
    expect(await snapshot(dir)).toEqual(SMALL_YAML);
  });
});

/** A real public key (ssh-keygen made it; its private half is gone): add-user checks keys with the key parser. */
const BOB_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICn+u2q00bz/YuCLbzy7tH6cNkFkqOhZGgGvyNZWzsiY bob@laptop';

describe('add-user and add-reseller: ids', () => {
  test('user_id is the lowest free within the reseller, uid is max + 1', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await addUser(ctx, 'bob', { reseller: 'alpha', displayName: 'Bob', sshKeys: [`  ${BOB_KEY}  `] });
    await addUser(ctx, 'carol', { reseller: 'alpha' });
    await addUser(ctx, 'dave', {});
    const users = await readYaml(dir, 'users.yaml');
    expect(users.bob).toEqual({ name: 'Bob', reseller: 'alpha', user_id: 1, uid: 1004, ssh_keys: [BOB_KEY] });
    expect(users.carol).toEqual({ reseller: 'alpha', user_id: 2, uid: 1005 });
    // root's users are r (1) and alpha (2): the next one is 3.
    expect(users.dave).toEqual({ reseller: 'root', user_id: 3, uid: 1006 });
    const text = await fs.readFile(join(dir, 'users.yaml'), 'utf8');
    expect(text.startsWith(SMALL_YAML['users.yaml'] as string)).toBe(true);
  });

  test("a reseller gets the lowest free reseller_id and a user_id among root's users", async () => {
    const dir = await datastore();
    const result = await addReseller(editContext(dir), 'bravo', { displayName: 'Bravo' });
    expect(result.changes[0]?.value).toEqual({ name: 'Bravo', reseller: 'root', reseller_id: 2, user_id: 3, uid: 1004 });
    expect(result.message).toContain('reseller_id 2');
    await addUser(editContext(dir), 'zed', { reseller: 'bravo' });
    const loaded = await loadDatastore(writableLocation(dir));
    expect(loaded.model.users.zed).toMatchObject({ reseller: 'bravo', user_id: 1 });
  });

  test('refuses existing users, root, unknown resellers and users that are not resellers', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await expect(addUser(ctx, 'alice', {})).rejects.toThrow('user alice already exists');
    await expect(addReseller(ctx, 'alpha')).rejects.toThrow('user alpha already exists');
    await expect(addUser(ctx, 'root', {})).rejects.toThrow(/built in/);
    await expect(addUser(ctx, 'bob', { reseller: 'nobody' })).rejects.toThrow(/unknown reseller "nobody"/);
    await expect(addUser(ctx, 'bob', { reseller: 'alice' })).rejects.toThrow(/"alice" is not a reseller/);
    await expect(addUser(ctx, 'bob', { sshKeys: ['ssh-rsa AAA\nssh-rsa BBB'] })).rejects.toThrow(/invalid ssh key #1: one key per line/);
    await expect(addUser(ctx, 'bob', { sshKeys: ['ssh-ed25519 AAAAC3Nza bob@laptop'] })).rejects.toThrow(
      /invalid ssh key #1: the ssh-ed25519 key data is not base64/,
    );
    expect(await snapshot(dir)).toEqual(SMALL_YAML);
  });
});

describe('names are checked before any lock or load', () => {
  // A location that does not exist: reaching the lock or the loader would fail differently.
  const nowhere = editContext('/nonexistent/sc-datastore');
  test.each([
    [
      'a container name with shell metacharacters',
      () => addContainer(nowhere, 'a;rm -rf x', { user: 'alice' }),
      /invalid container name "a;rm -rf x"/,
    ],
    ['a path as a user name', () => addUser(nowhere, '../../etc', {}), /invalid user name "..\/..\/etc"/],
    ['a path as a reseller name', () => addReseller(nowhere, '../x'), /invalid reseller name/],
    ['an uppercase container name', () => destroyContainer(nowhere, 'Shop.example.com'), /lowercase DNS name/],
    ['a bad owner', () => addContainer(nowhere, 'ok.example.com', { user: 'Bob' }), /invalid user name "Bob"/],
    ['a bad type', () => addContainer(nowhere, 'ok.example.com', { user: 'bob', type: '../img' }), /invalid container type/],
    ['a bad port', () => mapPort(nowhere, 'ok.example.com', { proto: 'tcp', containerPort: 70000 }), /invalid container port 70000/],
    ['a quote in a redirect URL', () => setRedirect(nowhere, 'ok.example.com', 'http-redirect', "https://x.example.com/'a"), /invalid http-redirect/],
    ['a name longer than a machine name', () => addContainer(nowhere, `${'a'.repeat(60)}.example.com`, { user: 'bob' }), /invalid container name/],
  ])('%s', async (_label, run, message) => {
    const attempt = run();
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    await expect(run()).rejects.toThrow(message);
  });
});

describe('refused edits write nothing', () => {
  test('an edit that would make the datastore invalid leaves every byte as it was', async () => {
    const dir = await datastore();
    const attempt = runDatastoreEdit(editContext(dir), { command: 'test-edit' }, (edit) => {
      edit.document('containers').set(['shop.example.com', 'user'], 'nobody');
      edit.document('users').set(['alice', 'uid'], 1001);
      return 'changed';
    });
    await expect(attempt).rejects.toThrow(/test-edit: refused.*nothing was written/);
    const error = await runDatastoreEdit(editContext(dir), { command: 'again' }, (edit) => {
      edit.document('containers').set(['shop.example.com', 'user'], 'nobody');
      return 'changed';
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).diagnostics.map((d) => d.message).join('\n')).toMatch(/unknown user "nobody"/);
    expect((error as UserError).diagnostics[0]).toMatchObject({ file: expect.stringMatching(/containers\.yaml$/), line: expect.any(Number) });
    expect(await snapshot(dir)).toEqual(SMALL_YAML);
  });

  test('the read-only fallback is refused before anything else', async () => {
    const dir = await datastore();
    const ctx = { ...editContext(dir), location: { dir, readOnly: true, origin: 'ro' as const } };
    await expect(addUser(ctx, 'bob', {})).rejects.toThrow(/read-only/);
    await expect(addContainer(ctx, 'x.example.com', { user: 'alice' })).rejects.toThrow(/read-only/);
    expect(await snapshot(dir)).toEqual(SMALL_YAML);
  });

  test('a datastore that is invalid before the edit is refused with its diagnostics', async () => {
    const broken = {
      ...SMALL_YAML,
      'containers.yaml': `${SMALL_YAML['containers.yaml']}bad.example.com:\n  user: ghost\n  host: web1.example.net\n  type: debian\n  ip: 10.17.3.30\n`,
    };
    const dir = await datastore(broken);
    const error = await addUser(editContext(dir), 'bob', {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).diagnostics.some((d) => /ghost/.test(d.message))).toBe(true);
    expect(await snapshot(dir)).toEqual(broken);
  });
});

describe('map-port', () => {
  test("srvctl 3's host ports: 22→2022, a second 22→2023, udp 1194→1194, 8080→6080", async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await addContainer(ctx, 'blog.example.com', { user: 'alice' });
    await addContainer(ctx, 'r.example.org', { user: 'r', host: 'web2.example.net' });
    const ports = async (c: string, proto: 'tcp' | 'udp', containerPort: number): Promise<unknown> =>
      (await mapPort(ctx, c, { proto, containerPort })).changes[0]?.value;
    await ports('shop.example.com', 'tcp', 22);
    await ports('blog.example.com', 'tcp', 22);
    await ports('shop.example.com', 'udp', 1194);
    await ports('shop.example.com', 'tcp', 8080);
    await ports('r.example.org', 'tcp', 22); // another host: 2022 is free there
    await mapPort(ctx, 'shop.example.com', { proto: 'udp', containerPort: 22, comment: 'mosh' });
    const containers = await readYaml(dir, 'containers.yaml');
    expect(containers['shop.example.com']?.mapped_ports).toEqual([
      { proto: 'tcp', host_port: 2022, container_port: 22 },
      { proto: 'udp', host_port: 1194, container_port: 1194 },
      { proto: 'tcp', host_port: 6080, container_port: 8080 },
      { proto: 'udp', host_port: 2022, container_port: 22, comment: 'mosh' },
    ]);
    expect(containers['blog.example.com']?.mapped_ports).toEqual([{ proto: 'tcp', host_port: 2023, container_port: 22 }]);
    expect(containers['r.example.org']?.mapped_ports).toEqual([{ proto: 'tcp', host_port: 2022, container_port: 22 }]);
  });

  test('an explicit host port already mapped on that host and protocol is refused', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await mapPort(ctx, 'shop.example.com', { proto: 'tcp', containerPort: 80, hostPort: 8081 });
    const before = await snapshot(dir);
    await expect(mapPort(ctx, 'shop.example.com', { proto: 'tcp', containerPort: 81, hostPort: 8081 })).rejects.toThrow(
      'host port 8081/tcp on web1.example.net is already mapped (to shop.example.com:80)',
    );
    expect(await snapshot(dir)).toEqual(before);
    await mapPort(ctx, 'shop.example.com', { proto: 'udp', containerPort: 81, hostPort: 8081 });
    await expect(mapPort(ctx, 'nope.example.com', { proto: 'tcp', containerPort: 80 })).rejects.toThrow(/unknown container "nope.example.com"/);
  });
});

describe('http-redirect / https-redirect', () => {
  test('sets keywords and URLs, refuses the wrong keyword', async () => {
    const dir = await datastore();
    const ctx = editContext(dir);
    await setRedirect(ctx, 'shop.example.com', 'http-redirect', 'none');
    await setRedirect(ctx, 'shop.example.com', 'https-redirect', 'https://www.example.com/shop?a=1');
    const c = (await readYaml(dir, 'containers.yaml'))['shop.example.com'];
    expect(c).toMatchObject({ 'http-redirect': 'none', 'https-redirect': 'https://www.example.com/shop?a=1' });
    await expect(setRedirect(ctx, 'shop.example.com', 'http-redirect', 'http')).rejects.toThrow(/must be "none", "https" or/);
    await expect(setRedirect(ctx, 'shop.example.com', 'https-redirect', 'ftp://x.example.com/')).rejects.toThrow(/invalid https-redirect/);
    const same = await setRedirect(ctx, 'shop.example.com', 'http-redirect', 'none');
    expect(same.files).toEqual([]);
  });
});

describe('JSON datastores', () => {
  test('are re-serialized with 2-space indent and a trailing newline, key order kept', async () => {
    const files = asJson(SMALL_YAML);
    const dir = await datastore(files);
    await addUser(editContext(dir), 'bob', { reseller: 'alpha' });
    await addContainer(editContext(dir), 'blog.example.com', { user: 'alice' });
    const users = JSON.parse(files['users.json'] as string) as Record<string, unknown>;
    users.bob = { reseller: 'alpha', user_id: 1, uid: 1004 };
    expect(await fs.readFile(join(dir, 'users.json'), 'utf8')).toBe(`${JSON.stringify(users, null, 2)}\n`);
    const containers = JSON.parse(await fs.readFile(join(dir, 'containers.json'), 'utf8')) as Record<string, { ip: string }>;
    expect(Object.keys(containers)).toEqual(['shop.example.com', 'blog.example.com']);
    expect(containers['blog.example.com']?.ip).toBe('10.17.3.21');
  });

  test('a missing containers file is created in the format of the others', async () => {
    const files = asJson(SMALL_YAML);
    delete files['containers.json'];
    const dir = await datastore(files);
    const result = await addContainer(editContext(dir), 'first.example.com', { user: 'alice' });
    expect(result.files).toEqual([join(dir, 'containers.json')]);
    expect(JSON.parse(await fs.readFile(join(dir, 'containers.json'), 'utf8'))).toEqual({
      'first.example.com': { user: 'alice', host: 'web1.example.net', type: 'debian', ip: '10.17.3.20' },
    });
  });
});
