// The sshd reload: through the unit on a systemd host (the first active of ssh/sshd), by SIGHUP to
// the pid file's sshd elsewhere — never to a pid that is not an sshd.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { createSshdDriver } from '../../../src/drivers/sshd.js';
import type { Exec, ExecOptions } from '../../../src/drivers/types.js';

function recordingExec(active: string[]): { exec: Exec; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    exec: {
      async run(command: string, args: readonly string[], _options?: ExecOptions) {
        calls.push([command, ...args].join(' '));
        const exitCode = args[0] === 'is-active' && !active.includes(args[2] as string) ? 3 : 0;
        return { command: [command, ...args], exitCode, stdout: '', stderr: '' };
      },
    },
  };
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'sc-sshd-'));
  await mkdir(path.join(root, 'run'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

test('systemd: reloads the active unit (Debian ssh.service, else sshd.service); none active = not running', async () => {
  const files = createFilesDriver(root);
  const fedora = recordingExec(['sshd.service']);
  expect(await createSshdDriver({ exec: fedora.exec, files, runtime: 'systemd', root }).reload()).toBe('reloaded');
  expect(fedora.calls).toEqual([
    'systemctl is-active --quiet ssh.service',
    'systemctl is-active --quiet sshd.service',
    'systemctl reload sshd.service',
  ]);
  const none = recordingExec([]);
  expect(await createSshdDriver({ exec: none.exec, files, runtime: 'systemd', root }).reload()).toBe('not running');
  expect(none.calls.some((c) => c.includes('reload'))).toBe(false);
});

test('direct: no pid file, or a pid that is not sshd, is "not running" and nothing is signalled', async () => {
  const files = createFilesDriver(root);
  const { exec } = recordingExec([]);
  const driver = createSshdDriver({ exec, files, runtime: 'direct', root });
  expect(await driver.reload()).toBe('not running');
  const sleeper = spawn('sleep', ['30']);
  try {
    await writeFile(path.join(root, 'run/sshd.pid'), `${sleeper.pid}\n`);
    expect(await driver.reload()).toBe('not running');
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
  } finally {
    sleeper.kill();
  }
});
