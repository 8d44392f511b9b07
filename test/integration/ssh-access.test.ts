// Users reach their own containers (issue 16), with real OpenSSH end to end.
//
// The host: the jump host of ssh-jump-host.ts (a real sshd reading the --root's /etc), with a
// foreign account carol sc must never touch.
// The containers: busybox cannot run sshd, so each container's "sshd" is the machine's sshd run in
// the container's network namespace (listening on the container's address, port 22), reading the
// container's own /root/.ssh/authorized_keys from its rootfs, and running the session inside the
// container (nsenter into its init): a login proves the key sc installed in that container.
// A client namespace on the uplink runs `ssh -J`. ssh-debian.test.ts does it with a Debian container's own sshd.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { SC_MAIN, createSandbox, type Sandbox } from './sandbox.js';
import { createJumpHost, destroyJumpHost, type JumpHost } from './ssh-jump-host.js';

const HOST = 'h1.test';
const HOST_IP = '192.0.2.11';
const CLIENT_IP = '192.0.2.99';
const SHOP = 'shop.test';
const BIKE = 'bike.test';
const SHOP_IP = '10.17.1.20';
const BIKE_IP = '10.16.2.20';
const CAROL_UID = 31050;

let sandbox: Sandbox;
let datastore: string;
let jumpHost: JumpHost;
let clientNs: string;
let keys: string;
let sshdDir: string;
let pub: Readonly<Record<string, string>> = {};

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 240_000 });

interface Docs {
  users: Record<string, Record<string, unknown>>;
  containers: Record<string, Record<string, unknown>>;
}

async function writeDatastore(docs: Docs): Promise<void> {
  await mkdir(datastore, { recursive: true });
  await writeFile(path.join(datastore, 'clusters.json'), JSON.stringify({ test: { [HOST]: { hostnet: 1, host_ip: HOST_IP, interface: 'eth0' } } }));
  await writeFile(path.join(datastore, 'users.json'), JSON.stringify(docs.users, null, 2));
  await writeFile(path.join(datastore, 'containers.json'), JSON.stringify(docs.containers, null, 2));
  await writeFile(path.join(datastore, 'settings.json'), JSON.stringify({ runtime: 'direct', images: { busybox: { builder: 'busybox' } } }));
}

const readDoc = async (name: string) =>
  JSON.parse(await readFile(path.join(datastore, `${name}.json`), 'utf8')) as Record<string, Record<string, unknown>>;

function baseDocs(): Docs {
  return {
    users: {
      root: { reseller_id: 0, user_id: 0, uid: 0, ssh_keys: [pub.admin] },
      alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 31000, ssh_keys: [pub.alpha] },
      alice: { reseller: 'alpha', user_id: 1, uid: 31001, ssh_keys: [pub.alice] },
      bob: { reseller: 'root', user_id: 2, uid: 31002, ssh_keys: [pub.bob] },
    },
    containers: {
      [SHOP]: { user: 'alice', host: HOST, type: 'busybox', ip: SHOP_IP },
      [BIKE]: { user: 'bob', host: HOST, type: 'busybox', ip: BIKE_IP },
    },
  };
}

async function initPidOf(name: string): Promise<number> {
  const state = JSON.parse(await readFile(path.join(sandbox.root, 'run/srvctl', `${name}.json`), 'utf8')) as { init_pid: number };
  return state.init_pid;
}

/** A container's sshd: in its network namespace, its own authorized_keys, sessions run inside it. */
async function startContainerSshd(name: string): Promise<void> {
  const pid = await initPidOf(name);
  const dir = path.join(sshdDir, name);
  await mkdir(dir, { recursive: true });
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(dir, 'hostkey')]);
  await writeFile(
    path.join(dir, 'sshd_config'),
    [
      'ListenAddress 0.0.0.0',
      `HostKey ${path.join(dir, 'hostkey')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'UsePAM no',
      'PasswordAuthentication no',
      'PermitRootLogin prohibit-password',
      `AuthorizedKeysFile ${path.join(sandbox.root, 'srv', name, 'rootfs/root/.ssh/authorized_keys')}`,
      // The key file lives under /tmp (world-writable): sshd's ownership walk would refuse it.
      'StrictModes no',
      `ForceCommand nsenter -t ${pid} -a hostname`,
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  jumpHost.startSshd(`--net=/proc/${pid}/ns/net`, 'true', [path.join(dir, 'sshd_config')], path.join(dir, 'sshd.log'));
}

const clientConfig = (user: string, extra = '') => jumpHost.clientConfig(user, extra);
const sshFrom = (ns: string, args: string[]) => jumpHost.sshFrom(ns, args);
const jump = (user: string, target: string, attempts = 1) => jumpHost.jump(user, target, attempts);

async function applyClean(): Promise<void> {
  const apply = await sc('apply');
  expect(apply.stderr).toBe('');
  expect(apply.exitCode).toBe(0);
  const diff = await sc('diff');
  expect(diff.stdout).toContain('No changes');
  expect(diff.exitCode).toBe(0);
}

const etc = (file: string) => readFile(path.join(sandbox.root, 'etc', file), 'utf8');
const shopKeysFile = () => path.join(sandbox.root, 'srv', SHOP, 'rootfs/root/.ssh/authorized_keys');

beforeAll(async () => {
  sandbox = await createSandbox();
  datastore = path.join(sandbox.root, 'datastore');
  jumpHost = await createJumpHost(sandbox, {
    hostName: HOST,
    hostIp: HOST_IP,
    clientIp: CLIENT_IP,
    keyNames: ['admin', 'alpha', 'alice', 'bob', 'own'],
    foreignAccounts: [{ name: 'carol', uid: CAROL_UID }],
  });
  ({ clientNs, keys, sshdDir, pub } = jumpHost);
  await writeDatastore(baseDocs());
  // sshd runs before sc writes its drop-in: sc's reload is what makes it take the Match block.
  jumpHost.startHostSshd();
}, 120_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(sandbox.root), 20_000);
  } finally {
    await destroyJumpHost(sandbox);
    await sandbox.destroy();
  }
}, 60_000);

describe('SSH access through jump accounts', () => {
  it('apply creates the accounts, keys, drop-in and hosts block; foreign accounts untouched; second diff clean', async () => {
    await applyClean();
    const passwd = await etc('passwd');
    const gid = /^srvctl-jump:x:(\d+):$/m.exec(await etc('group'))?.[1];
    expect(gid).toBeDefined();
    expect(passwd).toContain(`alice:x:31001:${gid}:srvctl jump account:/nonexistent:/usr/sbin/nologin`);
    expect(passwd).toContain(`alpha:x:31000:${gid}:srvctl jump account:/nonexistent:/usr/sbin/nologin`);
    expect(passwd).toContain(`bob:x:31002:${gid}:`);
    expect(passwd).not.toMatch(/^root:.*srvctl/m);
    expect(passwd).toContain(`carol:x:${CAROL_UID}:${CAROL_UID}:Carol,,,:/home/carol:/bin/bash`);
    expect(await etc('shadow')).toMatch(/^alice:\*:/m);
    expect(await etc('shadow')).toContain('carol:!:20000:0:99999:7:::');
    expect(await etc('ssh/srvctl-jump-keys/alice')).toContain(`restrict,port-forwarding,permitopen="${SHOP}:22" ${pub.alice}`);
    expect(await etc('ssh/srvctl-jump-keys/alpha')).toContain(`permitopen="${SHOP}:22" ${pub.alpha}`);
    expect(await etc('ssh/sshd_config.d/srvctl-jump.conf')).toContain('Match Group srvctl-jump');
    const hosts = await etc('hosts');
    expect(hosts.startsWith('127.0.0.1\tlocalhost\n')).toBe(true);
    expect(hosts).toContain(`${SHOP_IP}\t${SHOP}`);
    expect(hosts).toContain(`${BIKE_IP}\t${BIKE}`);
    const shopKeys = await readFile(shopKeysFile(), 'utf8');
    expect(shopKeys).toContain(pub.admin);
    expect(shopKeys).toContain(pub.alpha);
    expect(shopKeys).toContain(pub.alice);
    expect(shopKeys).not.toContain(pub.bob);
    await startContainerSshd(SHOP);
    await startContainerSshd(BIKE);
  }, 300_000);

  it('alice reaches her container with ssh -J alice@HOST; her reseller too; bob his own', async () => {
    const alice = await jump('alice', SHOP, 20);
    expect(alice.stderr).toBe('');
    expect(alice.stdout.trim()).toBe(SHOP);
    expect((await jump('alpha', SHOP, 5)).stdout.trim()).toBe(SHOP);
    expect((await jump('bob', BIKE, 5)).stdout.trim()).toBe(BIKE);
  }, 240_000);

  it('the client config from sc ssh-config works as it is', async () => {
    const out = await sc('ssh-config', 'alice');
    expect(out.exitCode).toBe(0);
    expect(`${out.stdout}\n`).toContain(`Host ${SHOP}\n    User root\n    ProxyJump alice@${HOST}\n`);
    expect(out.stdout).not.toContain(BIKE);
    const config = await clientConfig('alice', out.stdout);
    const r = await sshFrom(clientNs, ['-F', config, SHOP]);
    expect([r.exitCode, String(r.stdout).trim()]).toEqual([0, SHOP]);
  }, 120_000);

  it("alice cannot reach bob's container, other ports of the host, or a shell on the host", async () => {
    const toBike = await jump('alice', BIKE);
    expect(toBike.exitCode).not.toBe(0);
    expect(toBike.stderr).toMatch(/stdio forwarding failed|administratively prohibited|open failed/);
    expect(toBike.stdout).toBe('');
    // The jump host's own word: permitopen denied it (not a network failure).
    expect(await readFile(path.join(sshdDir, 'host-sshd.log'), 'utf8')).toMatch(
      new RegExp(`connect to host ${BIKE.replace('.', '\\.')} port 22, but the request was denied`),
    );
    const config = await clientConfig('alice');
    for (const target of [`${HOST_IP}:22`, '127.0.0.1:22', `${BIKE_IP}:22`, `${SHOP_IP}:22`]) {
      const w = await sshFrom(clientNs, ['-F', config, '-W', target, `alice@${HOST}`]);
      expect(`${target} ${w.exitCode}`).not.toBe(`${target} 0`);
      expect(String(w.stderr)).toMatch(/stdio forwarding failed|administratively prohibited|open failed/);
    }
    const shell = await sshFrom(clientNs, ['-F', config, `alice@${HOST}`, 'id']);
    expect(shell.exitCode).not.toBe(0);
    expect(String(shell.stdout)).not.toContain('uid=');
    const tty = await sshFrom(clientNs, ['-F', config, '-tt', `alice@${HOST}`]);
    expect(tty.exitCode).not.toBe(0);
    expect(String(tty.stdout)).not.toMatch(/[#$] $/);
    // Bob's key does not open alice's container, even from the host itself.
    const direct = await sshFrom(sandbox.netns, ['-F', await clientConfig('bob'), `root@${SHOP_IP}`]);
    expect(direct.exitCode).not.toBe(0);
    expect(String(direct.stderr)).toMatch(/Permission denied/);
  }, 180_000);

  it("drift is repaired: the block edited in the container, an account changed, a keys file deleted; the container's own lines stay", async () => {
    const own = pub.own as string;
    const text = await readFile(shopKeysFile(), 'utf8');
    await writeFile(shopKeysFile(), `${own}\n${text.replace('# END srvctl keys', `${pub.bob}\n# END srvctl keys`)}`);
    await writeFile(path.join(sandbox.root, 'etc/passwd'), (await etc('passwd')).replace(/^(alice:.*):\/usr\/sbin\/nologin$/m, '$1:/bin/bash'));
    await writeFile(path.join(sandbox.root, 'etc/ssh/srvctl-jump-keys/alpha'), `${pub.bob}\n`);
    const diff = await sc('-o', 'json', 'diff');
    expect(diff.exitCode).toBe(2);
    const changes = (JSON.parse(diff.stdout) as { changes: { kind: string; id: string; action: string }[] }).changes.map(
      (c) => `${c.action} ${c.kind}/${c.id}`,
    );
    expect(changes).toEqual(expect.arrayContaining([`update container-keys/${SHOP}`, 'update jump-account/alice', 'update jump-account/alpha']));
    await applyClean();
    const repaired = await readFile(shopKeysFile(), 'utf8');
    expect(repaired.startsWith(`${own}\n`)).toBe(true);
    expect(repaired.split(pub.bob as string).length).toBe(1);
    expect(await etc('passwd')).toMatch(/^alice:.*:\/usr\/sbin\/nologin$/m);
    expect(await etc('ssh/srvctl-jump-keys/alpha')).not.toContain(pub.bob);
  }, 240_000);

  it('a removed key stops working after one apply, on the jump host and in the container', async () => {
    const fingerprint = (await execa('ssh-keygen', ['-l', '-f', path.join(keys, 'alice.pub')])).stdout.split(' ')[1] as string;
    const removed = await sc('remove-publickey', 'alice', fingerprint);
    expect(removed.exitCode).toBe(0);
    expect((await readDoc('users')).alice?.ssh_keys).toBeUndefined();
    await applyClean();
    const denied = await jump('alice', SHOP);
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/Permission denied/);
    expect(await readFile(shopKeysFile(), 'utf8')).not.toContain(pub.alice);
    expect((await jump('alpha', SHOP, 3)).stdout.trim()).toBe(SHOP);
    // And back, from the .pub file.
    const added = await sc('add-publickey', 'alice', path.join(keys, 'alice.pub'));
    expect(added.exitCode).toBe(0);
    expect(added.stdout).toContain(fingerprint);
    await applyClean();
    expect((await jump('alice', SHOP, 5)).stdout.trim()).toBe(SHOP);
  }, 300_000);

  it('bad keys are refused with a clear error, a private key is never echoed, and nothing is written', async () => {
    const before = await readFile(path.join(datastore, 'users.json'), 'utf8');
    const privateKey = await readFile(path.join(keys, 'bob'), 'utf8');
    const secretLine = privateKey.split('\n')[1] as string;
    const refusedPrivate = await sc('add-publickey', 'alice', path.join(keys, 'bob'));
    expect(refusedPrivate.exitCode).toBe(1);
    expect(refusedPrivate.stderr).toMatch(/PRIVATE key/);
    expect(refusedPrivate.stderr + refusedPrivate.stdout).not.toContain(secretLine);
    const pasted = await sc('add-publickey', 'alice', privateKey);
    expect(pasted.exitCode).toBe(1);
    expect(pasted.stderr + pasted.stdout).not.toContain(secretLine);
    const withOptions = await sc('add-publickey', 'alice', `command="/bin/sh" ${pub.bob}`);
    expect(withOptions.stderr).toMatch(/options in front of the key/);
    await execa('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-N', '', '-f', path.join(keys, 'weak')]);
    const weak = await sc('add-publickey', 'alice', path.join(keys, 'weak.pub'));
    expect(weak.stderr).toMatch(/under 2048 bits/);
    const twoLines = await sc('add-publickey', 'alice', `${pub.bob}\n${pub.admin}`);
    expect(twoLines.stderr).toMatch(/line breaks/);
    for (const r of [withOptions, weak, twoLines]) expect(r.exitCode).toBe(1);
    expect(await readFile(path.join(datastore, 'users.json'), 'utf8')).toBe(before);
  }, 120_000);

  it('sc shell opens a login shell inside the container on a terminal', async () => {
    const args = [SC_MAIN, '--root', sandbox.root, '--netns', sandbox.netns, '--datastore', datastore, '--host', HOST, 'shell', SHOP];
    const command = ['node', ...args].map((a) => `'${a}'`).join(' ');
    const r = await execa('script', ['-qec', command, '/dev/null'], {
      input: 'echo "in-$(hostname)-$(id -u)"\nexit 7\n',
      reject: false,
      timeout: 60_000,
    });
    expect(r.stdout).toContain(`in-${SHOP}-0`);
    expect(r.exitCode).toBe(7);
    const noTty = await sc('shell', SHOP);
    expect(noTty.exitCode).toBe(1);
    expect(noTty.stderr).toMatch(/needs a terminal/);
  }, 120_000);

  it('a user removed from the datastore loses the account; a uid taken by a foreign account is a conflict', async () => {
    const docs = baseDocs();
    delete docs.users.bob;
    delete docs.containers[BIKE];
    docs.users.dave = { reseller: 'root', user_id: 3, uid: CAROL_UID, ssh_keys: [pub.bob] };
    docs.containers['dave.test'] = { user: 'dave', host: HOST, type: 'busybox', ip: '10.16.3.20', enabled: false };
    await writeDatastore(docs);
    // A disabled container gives no account: dave has none yet; bob's goes.
    await applyClean();
    expect(await etc('passwd')).not.toMatch(/^bob:/m);
    await expect(readFile(path.join(sandbox.root, 'etc/ssh/srvctl-jump-keys/bob'))).rejects.toThrow();
    docs.containers['dave.test'] = { ...docs.containers['dave.test'], enabled: true };
    await writeDatastore(docs);
    const diff = await sc('-o', 'json', 'diff');
    const plan = JSON.parse(diff.stdout) as { changes: { kind: string; id: string; action: string; message?: string }[] };
    const dave = plan.changes.find((c) => c.kind === 'jump-account' && c.id === 'dave');
    expect(dave?.action).toBe('conflict');
    expect(JSON.stringify(dave)).toContain(`uid ${CAROL_UID} of user dave is taken by account carol`);
    const passwdBefore = await etc('passwd');
    const apply = await sc('apply');
    expect(apply.exitCode).not.toBe(0);
    expect((await etc('passwd')).split('\n').filter((l) => l.startsWith('carol:'))).toEqual(
      passwdBefore.split('\n').filter((l) => l.startsWith('carol:')),
    );
    expect(await etc('passwd')).not.toMatch(/^dave:/m);
  }, 300_000);
});
