// The haproxy driver under the systemd runtime: sc's unit srvctl-haproxy.service (text modelled on
// the distribution's haproxy.service), and the systemctl command lines of a start, a reload and a
// removal. systemctl is a recording fake that does what the unit would (start the master; on
// reload, the unit's check and the master's SIGUSR2), with a real HAProxy on a config that listens
// on nothing. The real unit under a real systemd is tested in test/integration/systemd-runtime.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { createHaproxyDriver, HAPROXY_CONFIG_PATH, HAPROXY_UNIT_PATH, haproxyRunFiles, renderHaproxyUnit } from '../../../src/drivers/haproxy.js';
import type { Exec, ExecOptions, FilesDriver } from '../../../src/drivers/types.js';

// Listens on nothing; the admin socket with expose-fd listeners, as sc's own config has it.
const config = (root: string, comment: string) =>
  `# ${comment}\nglobal\n    stats socket '${root}/run/srvctl/haproxy/admin.sock' mode 600 level admin expose-fd listeners\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 5s\n    timeout server 5s\n`;

/** systemctl as the unit would behave, recorded; `haproxy -c` and `ss` run as they are. */
function fakeSystemd(files: FilesDriver): { exec: Exec; calls: string[] } {
  const calls: string[] = [];
  let active = false;
  const exec: Exec = {
    async run(command: string, args: readonly string[], options?: ExecOptions) {
      if (command === 'haproxy' || command === 'ss') {
        const stdout = execFileSync(command, [...args], { encoding: 'utf8' });
        return { command: [command, ...args], exitCode: 0, stdout, stderr: '' };
      }
      calls.push([command, ...args, ...(options?.inNetns === false ? [] : ['(in netns)'])].join(' '));
      if (command !== 'systemctl') throw new Error(`unexpected command ${command}`);
      const configPath = files.hostPath(HAPROXY_CONFIG_PATH);
      if (args[0] === 'is-active') return { command: [command, ...args], exitCode: active ? 0 : 3, stdout: '', stderr: '' };
      if (args[0] === 'restart') active = true;
      if (args[0] === 'disable') active = false;
      if (args[0] === 'restart')
        execFileSync('haproxy', ['-W', '-D', '-p', files.hostPath(haproxyRunFiles.pid), '-f', configPath], { stdio: 'pipe' });
      if (args[0] === 'reload') {
        execFileSync('haproxy', ['-c', '-q', '-f', configPath]);
        process.kill(Number((await files.read(haproxyRunFiles.pid))?.trim()), 'SIGUSR2');
      }
      if (args[0] === 'disable') process.kill(Number((await files.read(haproxyRunFiles.pid))?.trim()), 'SIGTERM');
      return { command: [command, ...args], exitCode: 0, stdout: '', stderr: '' };
    },
  };
  return { exec, calls };
}

let root: string;
let files: FilesDriver;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sc-haproxy-'));
  files = createFilesDriver(root);
});
afterEach(async () => {
  const pid = Number((await files.read(haproxyRunFiles.pid).catch(() => undefined))?.trim());
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(root, { recursive: true, force: true });
});

describe('srvctl-haproxy.service', () => {
  it("is Type=notify on sc's config, its reload checks the file before the master's SIGUSR2, and it starts at boot", () => {
    const unit = renderHaproxyUnit();
    expect(unit).toContain('Type=notify\n');
    expect(unit).toContain('ExecStart=/usr/sbin/haproxy -Ws -f /etc/haproxy/srvctl.cfg -p /run/srvctl/haproxy/haproxy.pid\n');
    expect(unit).toMatch(/ExecReload=\/usr\/sbin\/haproxy -c -q -f \/etc\/haproxy\/srvctl\.cfg\nExecReload=\/bin\/kill -USR2 \$MAINPID\n/);
    expect(unit).toContain('RuntimeDirectory=srvctl/haproxy\n');
    expect(unit).toContain('WantedBy=multi-user.target\n');
  });
});

describe('the haproxy driver, systemd runtime', () => {
  it('start: writes the unit, daemon-reload, enable, restart (never through the netns); reload: systemctl reload, same master, a new worker', async () => {
    const { exec, calls } = fakeSystemd(files);
    const driver = createHaproxyDriver({ exec, files, runtime: 'systemd', readyTimeoutMs: 20_000 });
    await driver.check(config(root, 'one'));
    await driver.install(config(root, 'one'));
    expect(await driver.startOrReload('d1')).toBe('started');
    expect(calls).toEqual(['systemctl daemon-reload', `systemctl enable srvctl-haproxy.service`, 'systemctl restart srvctl-haproxy.service']);
    expect(await readFile(path.join(root, HAPROXY_UNIT_PATH), 'utf8')).toBe(renderHaproxyUnit((p) => path.join(root, p)));
    const first = await driver.observe();
    expect(first.masterPid).toBeGreaterThan(0);
    expect(first.workers).toHaveLength(1);
    expect(first.loaded).toBe('d1');

    calls.length = 0;
    await driver.install(config(root, 'two'));
    expect(await driver.startOrReload('d2')).toBe('reloaded');
    // The unit is as sc renders it: no daemon-reload, only the reload.
    expect(calls).toEqual(['systemctl is-active --quiet srvctl-haproxy.service', 'systemctl reload srvctl-haproxy.service']);
    const second = await driver.observe();
    expect(second.masterPid).toBe(first.masterPid);
    expect(second.workers.some((w) => !first.workers.includes(w))).toBe(true);
    expect(second.loaded).toBe('d2');

    // A hand-edited unit: the load counts as stale, and the next reload rewrites it first.
    await writeFile(path.join(root, HAPROXY_UNIT_PATH), 'edited\n');
    expect((await driver.observe()).loaded).toBeUndefined();
    calls.length = 0;
    expect(await driver.startOrReload('d3')).toBe('reloaded');
    expect(calls).toEqual([
      'systemctl daemon-reload',
      'systemctl is-active --quiet srvctl-haproxy.service',
      'systemctl reload srvctl-haproxy.service',
    ]);
    expect((await driver.observe()).loaded).toBe('d3');

    calls.length = 0;
    await driver.remove();
    expect(calls.slice(0, 2)).toEqual(['systemctl disable --now srvctl-haproxy.service', 'systemctl daemon-reload']);
    expect(await files.read(HAPROXY_UNIT_PATH)).toBeUndefined();
    expect(await files.read(HAPROXY_CONFIG_PATH)).toBeUndefined();
  }, 60_000);

  it('a master the unit does not run (started by the direct runtime) is handed over to the unit', async () => {
    await files.write(HAPROXY_CONFIG_PATH, config(root, 'one'));
    await files.mkdir('/run/srvctl/haproxy', { mode: 0o700 });
    execFileSync('haproxy', ['-W', '-D', '-p', path.join(root, haproxyRunFiles.pid), '-f', path.join(root, HAPROXY_CONFIG_PATH)], { stdio: 'pipe' });
    const before = Number((await files.read(haproxyRunFiles.pid))?.trim());
    const { exec, calls } = fakeSystemd(files);
    const driver = createHaproxyDriver({ exec, files, runtime: 'systemd', readyTimeoutMs: 20_000 });
    expect(await driver.startOrReload('d1')).toBe('started');
    expect(calls).toEqual([
      'systemctl daemon-reload',
      'systemctl is-active --quiet srvctl-haproxy.service',
      'systemctl enable srvctl-haproxy.service',
      'systemctl restart srvctl-haproxy.service',
    ]);
    const after = await driver.observe();
    expect(after.masterPid).not.toBe(before);
    expect(after.loaded).toBe('d1');
  }, 60_000);

  it('direct runtime: no systemctl at all, sc starts the master itself', async () => {
    const calls: string[] = [];
    const exec: Exec = {
      async run(command, args) {
        calls.push([command, ...args].join(' '));
        execFileSync(command, [...args], { stdio: 'pipe' });
        return { command: [command, ...args], exitCode: 0, stdout: '', stderr: '' };
      },
    };
    const driver = createHaproxyDriver({ exec, files, runtime: 'direct', readyTimeoutMs: 20_000 });
    await driver.install(config(root, 'one'));
    expect(await driver.startOrReload('d1')).toBe('started');
    expect(calls.filter((c) => !c.startsWith('ss '))).toEqual([
      `haproxy -W -D -p ${path.join(root, haproxyRunFiles.pid)} -f ${path.join(root, HAPROXY_CONFIG_PATH)}`,
    ]);
    expect(await files.read(HAPROXY_UNIT_PATH)).toBeUndefined();
    await driver.remove();
  }, 60_000);
});
