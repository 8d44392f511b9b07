// SSH access end to end with a container's own sshd (issue 16, container side): a `debian` image
// debootstrapped from the Debian mirror this machine's apt uses, with the extra package
// openssh-server (settings.images.debian.packages); a container of alice's from it boots with
// systemd, which starts the container's sshd; sc's container-keys kind writes the keys block into
// its /root/.ssh/authorized_keys. Through the jump host's real sshd (ssh-jump-host.ts),
// `ssh -J alice@HOST root@CONTAINER` logs in with alice's key and with her reseller's; bob's key is
// refused by the container's sshd, through the jump and from the host itself.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { detectCgroupLayout, killAndRemoveCgroup, machinesCgroupBase } from '../../src/drivers/cgroups.js';
import { configuredDebianMirror } from './debian-host.js';
import { createSandbox, type Sandbox } from './sandbox.js';
import { createJumpHost, destroyJumpHost, type JumpHost } from './ssh-jump-host.js';

const HOST = 'h1.test';
const HOST_IP = '192.0.2.11';
const SHOP = 'shop.test';
const SHOP_IP = '10.17.1.20';

let sandbox: Sandbox;
let jumpHost: JumpHost;
let datastore: string;

const sc = (...args: string[]) => sandbox.runSc(['--datastore', datastore, '--host', HOST, ...args], { timeoutMs: 25 * 60_000 });
const shopKeysFile = () => path.join(sandbox.root, 'srv', SHOP, 'rootfs/root/.ssh/authorized_keys');

/** What the session prints inside the container: its hostname, uid and PID 1 — proof of where it ran. */
const PROBE = ['cat /etc/hostname; id -u; cat /proc/1/comm'];
const probeOutput = `${SHOP}\n0\nsystemd`;

beforeAll(async () => {
  sandbox = await createSandbox();
  datastore = path.join(sandbox.root, 'datastore');
  jumpHost = await createJumpHost(sandbox, { hostName: HOST, hostIp: HOST_IP, clientIp: '192.0.2.99', keyNames: ['admin', 'alpha', 'alice', 'bob'] });
  const pub = jumpHost.pub;
  const docs = {
    clusters: { test: { [HOST]: { hostnet: 1, host_ip: HOST_IP, interface: 'eth0' } } },
    users: {
      root: { reseller_id: 0, user_id: 0, uid: 0, ssh_keys: [pub.admin] },
      alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 31000, ssh_keys: [pub.alpha] },
      alice: { reseller: 'alpha', user_id: 1, uid: 31001, ssh_keys: [pub.alice] },
      bob: { reseller: 'root', user_id: 2, uid: 31002, ssh_keys: [pub.bob] },
    },
    containers: { [SHOP]: { user: 'alice', host: HOST, type: 'debian', ip: SHOP_IP } },
    settings: {
      runtime: 'direct',
      images: { debian: { builder: 'debootstrap', mirror: await configuredDebianMirror(), packages: ['openssh-server'] } },
    },
  };
  await mkdir(datastore, { recursive: true });
  for (const [name, doc] of Object.entries(docs)) await writeFile(path.join(datastore, `${name}.json`), `${JSON.stringify(doc, null, 2)}\n`);
  jumpHost.startHostSshd();
}, 120_000);

afterAll(async () => {
  if (!sandbox) return;
  try {
    await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(sandbox.root), 60_000);
  } finally {
    await destroyJumpHost(sandbox);
    await sandbox.destroy();
  }
}, 120_000);

describe('SSH access to a Debian container with its own sshd', () => {
  it(
    'apply builds the image with openssh-server, boots the container and installs the keys; second diff clean',
    async () => {
      const apply = await sc('apply');
      expect({ exitCode: apply.exitCode, stderr: apply.stderr }).toEqual({ exitCode: 0, stderr: '' });
      const diff = await sc('diff');
      expect(diff.stdout).toContain('No changes');
      expect(diff.exitCode).toBe(0);
      const keys = await readFile(shopKeysFile(), 'utf8');
      for (const who of ['admin', 'alpha', 'alice']) expect(keys).toContain(jumpHost.pub[who]);
      expect(keys).not.toContain(jumpHost.pub.bob);
      // What sshd's StrictModes wants: root's, not writable by group or others (the tree is idmapped: 0 is root inside).
      for (const [p, mode] of [
        [path.dirname(shopKeysFile()), 0o700],
        [shopKeysFile(), 0o600],
      ] as const) {
        const st = await stat(p);
        expect([p, st.mode & 0o777, st.uid, st.gid]).toEqual([p, mode, 0, 0]);
      }
      // The image carries no host keys of its own: every container makes its own on first boot.
      const image = path.join(sandbox.root, 'var/srvctl3/rootfs/debian');
      expect(await readFile(path.join(image, 'usr/sbin/sshd')).then(() => true)).toBe(true);
      await expect(readFile(path.join(image, 'etc/ssh/ssh_host_ed25519_key'))).rejects.toThrow();
      // systemd in the container starts its sshd (after the host keys are made).
      const deadline = Date.now() + 180_000;
      let active = '';
      while (Date.now() < deadline) {
        active = (await sc('exec', SHOP, '--', 'systemctl', 'is-active', 'ssh')).stdout.trim();
        if (active === 'active' || active === 'failed') break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      expect(active).toBe('active');
      // The sshd on the container's address presents the key the container made for itself.
      const own = (await sc('exec', SHOP, '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ')[1];
      expect(own).toMatch(/^AAAA/);
      const scan = await execa('ip', ['netns', 'exec', sandbox.netns, 'ssh-keyscan', '-t', 'ed25519', SHOP_IP], { reject: false, timeout: 60_000 });
      // The key line (`ADDRESS ssh-ed25519 KEY`): OpenSSH 10 (Debian 13) prints its `# ADDRESS:22 SSH-2.0-…` comment on stdout too.
      const keyLine = scan.stdout.split('\n').find((line) => line.split(' ')[1] === 'ssh-ed25519');
      expect(keyLine?.split(' ')[2]).toBe(own);
    },
    30 * 60_000,
  );

  it("ssh -J alice@HOST root@CONTAINER logs in with alice's key, and with her reseller's", async () => {
    const alice = await jumpHost.jump('alice', SHOP, 20, PROBE);
    expect({ exitCode: alice.exitCode, stderr: alice.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(alice.stdout.trim()).toBe(probeOutput);
    const alpha = await jumpHost.jump('alpha', SHOP, 5, PROBE);
    expect({ exitCode: alpha.exitCode, stderr: alpha.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(alpha.stdout.trim()).toBe(probeOutput);
  }, 300_000);

  it("bob's key is refused by the container's sshd, through alice's jump and from the host itself", async () => {
    // The jump with alice's key, the container with bob's: only the container's sshd can say no.
    const config = await jumpHost.clientConfig(
      'bob',
      [`Host ${HOST}`, `    IdentityFile ${path.join(jumpHost.keys, 'alice')}`, '    IdentitiesOnly yes', ''].join('\n'),
    );
    const throughJump = await jumpHost.sshFrom(jumpHost.clientNs, ['-F', config, '-J', `alice@${HOST}`, `root@${SHOP}`, ...PROBE]);
    expect(throughJump.exitCode).not.toBe(0);
    expect(throughJump.stderr).toMatch(/root@shop\.test: Permission denied \(publickey/);
    expect(throughJump.stdout).toBe('');
    const direct = await jumpHost.sshFrom(sandbox.netns, ['-F', await jumpHost.clientConfig('bob'), `root@${SHOP_IP}`, ...PROBE]);
    expect(direct.exitCode).not.toBe(0);
    expect(direct.stderr).toMatch(/Permission denied \(publickey/);
    expect(direct.stdout).toBe('');
    // And the same path with alice's key works: the refusal was the key, not the route.
    const control = await jumpHost.sshFrom(sandbox.netns, ['-F', await jumpHost.clientConfig('alice'), `root@${SHOP_IP}`, ...PROBE]);
    expect(control.stdout.trim()).toBe(probeOutput);
    const diff = await sc('diff');
    expect(diff.exitCode).toBe(0);
  }, 180_000);
});
