// The systemd runtime for real (issue 11): a debootstrapped Debian 13 booted with systemd as PID 1
// in the test's network namespace, sc installed in it. Inside: `sc install-units`, the timer firing
// `sc reconcile --once`, which starts a busybox container as `srvctl-nspawn@NAME.service` through
// systemctl (nested nspawn, machined, PrivateUsers=pick); bridges and nft land in that host's own
// network namespace (the test's), seen from outside; `sc apply` stops and starts the unit again.
// The reverse proxy (issue 14) runs as sc's srvctl-haproxy.service, reloaded with systemctl.
// The first run builds and caches the Debian tree (minutes); later runs copy the cache.
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { IpLink } from '../../src/drivers/types.js';
import { bootDebianHost, debianHostBase, type DebianHost } from './debian-host.js';
import { createSandbox, type Sandbox } from './sandbox.js';

const HOST = 'h1.example.net';
const NAME = 'c1.example.com';
const IP = '10.16.1.20';
const UNIT = `srvctl-nspawn@${NAME}.service`;
const PROXY_UNIT = 'srvctl-haproxy.service';
const DATASTORE = '/root/datastore';

describe('the systemd runtime inside a booted Debian 13', () => {
  let sandbox: Sandbox;
  let host: DebianHost;
  const sc = (...args: string[]) => host.run(['node', host.scPath, '--datastore', DATASTORE, '--host', HOST, ...args]);
  const writeDatastore = async (enabled: boolean, aliases: string[] = []) => {
    const dir = path.join(host.tree, DATASTORE);
    await mkdir(dir, { recursive: true });
    const docs = {
      clusters: { test: { [HOST]: { hostnet: 1, host_ip: '192.0.2.11' } } },
      users: { anna: { reseller: 'root', user_id: 1, uid: 20001 } },
      containers: {
        [NAME]: {
          user: 'anna',
          host: HOST,
          type: 'busybox',
          ip: IP,
          enabled,
          ...(aliases.length > 0 ? { aliases } : {}),
          mapped_ports: [{ proto: 'tcp', host_port: 8080, container_port: 80 }],
        },
      },
    };
    for (const [name, doc] of Object.entries(docs)) await writeFile(path.join(dir, `${name}.json`), JSON.stringify(doc));
  };
  /** From the test's side of the namespace: the host's namespace is the test's. */
  const answers = async () =>
    (await execa('ip', ['netns', 'exec', sandbox.netns, 'ping', '-n', '-q', '-c', '1', '-W', '1', IP], { reject: false })).exitCode === 0;
  const unitState = async (unit = UNIT) => (await host.run(['systemctl', 'is-active', unit])).stdout.trim();
  /** A request through the proxy, from the test's side of the namespace (the host's). */
  const viaProxy = async (name: string): Promise<{ code: string; location: string; body: string }> => {
    const out = await execa(
      'ip',
      [
        'netns',
        'exec',
        sandbox.netns,
        'curl',
        '-s',
        '--max-time',
        '10',
        '--resolve',
        `${name}:80:127.0.0.1`,
        '-w',
        '\n%{http_code} %{redirect_url}',
        `http://${name}/`,
      ],
      { reject: false },
    );
    const lines = out.stdout.split('\n');
    const [code = '', location = ''] = (lines.pop() ?? '').split(' ');
    return { code, location, body: lines.join('\n').trim() };
  };

  beforeAll(async () => {
    const base = await debianHostBase();
    sandbox = await createSandbox();
    host = await bootDebianHost(sandbox, base);
    await writeDatastore(true);
  }, 40 * 60_000);
  afterAll(async () => {
    await host?.stop().catch(() => undefined);
    await sandbox?.destroy();
  }, 120_000);

  it('boots systemd 257 as PID 1 with its own view of the test namespace', async () => {
    expect((await host.run(['cat', '/proc/1/comm'])).stdout).toBe('systemd');
    expect((await host.run(['systemctl', '--version'])).stdout).toMatch(/^systemd 25[7-9]/);
    expect((await host.run(['node', host.scPath, '--version'])).exitCode).toBe(0);
  });

  it(
    'sc install-units writes units systemd-analyze accepts; the enabled timer fires sc reconcile --once, which converges',
    async () => {
      const installed = await sc('install-units', '--interval', '30', '--jitter', '1');
      expect(installed).toMatchObject({ exitCode: 0 });
      expect(installed.stdout).toContain('written   /etc/systemd/system/srvctl-reconcile.timer');
      const verify = await host.run([
        'systemd-analyze',
        'verify',
        '--man=no',
        '/etc/systemd/system/srvctl-reconcile.service',
        '/etc/systemd/system/srvctl-reconcile.timer',
      ]);
      expect({ exitCode: verify.exitCode, stderr: verify.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect((await host.run(['systemctl', 'daemon-reload'])).exitCode).toBe(0);
      expect((await host.run(['systemctl', 'enable', '--now', 'srvctl-reconcile.timer'])).exitCode).toBe(0);

      // The timer's first pass (OnBootSec has passed, so it fires at once): wait for its record.
      const deadline = Date.now() + 240_000;
      let record: { result?: string; counts?: { ok: number; failed: number } } = {};
      while (Date.now() < deadline) {
        const status = await host.run(['cat', '/var/lib/srvctl/reconcile-status.json']);
        if (status.exitCode === 0) record = JSON.parse(status.stdout) as typeof record;
        if (record.result !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      expect(record).toMatchObject({ result: 'ok', counts: { failed: 0 } });
      const service = await host.run(['systemctl', 'show', '--property=Result,ExecMainStatus', 'srvctl-reconcile.service']);
      expect(service.stdout).toContain('Result=success');
      expect(service.stdout).toContain('ExecMainStatus=0');
    },
    10 * 60_000,
  );

  it(
    'the pass started the container as a systemd unit: bridge and nft in the host namespace, it answers, a second diff is clean',
    async () => {
      // The timer keeps firing; the assertions below hold between passes too, as a converged host should.
      expect(await unitState()).toBe('active');
      expect((await host.run(['machinectl', 'show', NAME, '--property=State'])).stdout).toBe('State=running');
      const bridges = await sandbox.ipJson<IpLink[]>('link', 'show', 'type', 'bridge');
      expect(bridges.map((l) => l.ifname)).toEqual(['sc-16-1']);
      // Read with the Debian host's own nft (1.1): this machine's nft 1.0.6 crashes (SIGSEGV) listing
      // a table that nft 1.1 loaded. Same namespace either way: the host's is the test's.
      const table = await host.run(['nft', 'list', 'table', 'ip', 'srvctl']);
      expect(table.stdout).toContain(`8080 : ${IP} . 80`);
      const netnsOfHost = await host.run(['readlink', '/proc/self/ns/net']);
      expect(netnsOfHost.stdout).toBe((await execa('ip', ['netns', 'exec', sandbox.netns, 'readlink', '/proc/self/ns/net'])).stdout);
      const deadline = Date.now() + 30_000;
      while (!(await answers()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await answers()).toBe(true);
      const page = await execa('ip', ['netns', 'exec', sandbox.netns, 'curl', '-s', '--max-time', '5', `http://${IP}/`], { reject: false });
      expect(page.stdout).toBe(`hello from ${NAME}`);
      const diff = await sc('diff');
      expect({ exitCode: diff.exitCode, stdout: diff.stdout }).toEqual({ exitCode: 0, stdout: expect.stringContaining('No changes.') });
    },
    5 * 60_000,
  );

  it(
    'sc apply stops the unit through systemctl when the container is disabled, and starts it again',
    async () => {
      expect((await host.run(['systemctl', 'stop', 'srvctl-reconcile.timer'])).exitCode).toBe(0);
      await host.run(['systemctl', 'stop', 'srvctl-reconcile.service']); // a pass in flight finishes first
      await writeDatastore(false);
      const stopped = await sc('apply');
      expect({ exitCode: stopped.exitCode, stderr: stopped.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect(await unitState()).toBe('inactive');
      expect(await answers()).toBe(false);
      // No site left on the cluster: no proxy, its unit disabled and gone.
      expect(await unitState(PROXY_UNIT)).not.toBe('active');
      expect((await host.run(['test', '-e', `/etc/systemd/system/${PROXY_UNIT}`])).exitCode).not.toBe(0);
      expect((await sc('diff')).exitCode).toBe(0);

      await writeDatastore(true);
      const started = await sc('apply');
      expect({ exitCode: started.exitCode, stderr: started.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect(await unitState()).toBe('active');
      expect(await unitState(PROXY_UNIT)).toBe('active');
      expect((await sc('diff')).exitCode).toBe(0);
    },
    5 * 60_000,
  );

  it(
    "the reverse proxy is sc's srvctl-haproxy.service: systemd-analyze accepts it, enabled, serving the site; a datastore change is a systemctl reload (same master, new worker); a hand-edited unit is repaired",
    async () => {
      const unitFile = `/etc/systemd/system/${PROXY_UNIT}`;
      const verify = await host.run(['systemd-analyze', 'verify', '--man=no', unitFile]);
      expect({ exitCode: verify.exitCode, stderr: verify.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect((await host.run(['systemctl', 'is-enabled', PROXY_UNIT])).stdout.trim()).toBe('enabled');
      const mainPid = async () => (await host.run(['systemctl', 'show', '--property=MainPID', '--value', PROXY_UNIT])).stdout.trim();
      const master = await mainPid();
      expect(Number(master)).toBeGreaterThan(0);
      expect((await host.run(['cat', '/run/srvctl/haproxy/haproxy.pid'])).stdout.trim()).toBe(master);
      const workers = async () => (await host.run(['cat', `/proc/${master}/task/${master}/children`])).stdout.trim().split(/\s+/);
      const before = await workers();
      // The container answers through the proxy (busybox init respawns httpd a moment after a start).
      const deadline = Date.now() + 60_000;
      while ((await viaProxy(NAME)).code !== '200' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await viaProxy(NAME)).toEqual({ code: '200', location: '', body: `hello from ${NAME}` });

      await writeDatastore(true, ['alias.example.org']);
      const applied = await sc('apply');
      expect({ exitCode: applied.exitCode, stderr: applied.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect(await viaProxy('alias.example.org')).toMatchObject({ code: '301', location: `http://${NAME}/` });
      expect(await mainPid()).toBe(master);
      expect((await workers()).some((w) => !before.includes(w))).toBe(true);
      // systemd ran the unit's ExecReload (the check, then the SIGUSR2): its journal says so.
      const journal = await host.run(['journalctl', '--no-pager', '-q', '-u', PROXY_UNIT]);
      expect(journal.stdout).toMatch(/Reloaded .*srvctl reverse proxy|Reloaded srvctl-haproxy\.service/);
      expect((await sc('diff')).exitCode).toBe(0);

      // A hand edit of the unit shows in diff and is repaired by the next apply, the master kept.
      const unit = (await host.run(['cat', unitFile])).stdout;
      expect((await host.run(['sh', '-c', `sed -i 's/^Restart=always/Restart=no/' ${unitFile}`])).exitCode).toBe(0);
      expect((await sc('diff')).exitCode).toBe(2);
      const repaired = await sc('apply');
      expect({ exitCode: repaired.exitCode, stderr: repaired.stderr }).toEqual({ exitCode: 0, stderr: '' });
      expect((await host.run(['cat', unitFile])).stdout).toBe(unit);
      expect((await host.run(['systemctl', 'show', '--property=Restart', '--value', PROXY_UNIT])).stdout.trim()).toBe('always');
      expect(await mainPid()).toBe(master);
      expect((await sc('diff')).exitCode).toBe(0);
    },
    5 * 60_000,
  );

  it('sc shell opens a login shell on a terminal inside the container the systemd unit runs', async () => {
    // `script` gives sc a real terminal; the typed lines reach the container's shell through it.
    const command = ['node', host.scPath, '--datastore', DATASTORE, '--host', HOST, 'shell', NAME].join(' ');
    const shell = await host.run(['sh', '-c', `printf 'echo "in-$(hostname)-$(id -u)"\\nexit 7\\n' | script -qec '${command}' /dev/null`]);
    expect(shell.stdout).toContain(`in-${NAME}-0`);
    expect(shell.exitCode).toBe(7);
  }, 120_000);
});
