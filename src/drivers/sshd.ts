// The host's OpenSSH server: sc tells it to re-read its configuration after changing its drop-in
// (keys files and accounts are read per connection; the configuration only at start and reload).
// On a systemd host through the unit; elsewhere (runtime `direct`, tests) by SIGHUP to the pid in
// <root>/run/sshd.pid — only when that pid really is an sshd.
import { readFile } from 'node:fs/promises';
import type { Exec, FilesDriver } from './types.js';

export const SSHD_PID_FILE = '/run/sshd.pid';

export type SshdReload = 'reloaded' | 'not running';

export interface SshdDriver {
  reload(): Promise<SshdReload>;
}

export function createSshdDriver(options: { exec: Exec; files: FilesDriver; runtime: 'systemd' | 'direct'; root: string }): SshdDriver {
  return {
    async reload() {
      if (options.runtime === 'systemd') {
        // Debian names the unit ssh.service (sshd.service is its alias), Fedora sshd.service.
        for (const unit of ['ssh.service', 'sshd.service']) {
          const active = await options.exec.run('systemctl', ['is-active', '--quiet', unit], { inNetns: false, allowFailure: true });
          if (active.exitCode !== 0) continue;
          await options.exec.run('systemctl', ['reload', unit], { inNetns: false });
          return 'reloaded';
        }
        return 'not running';
      }
      const pid = Number((await options.files.read(SSHD_PID_FILE).catch(() => undefined))?.trim());
      if (!Number.isInteger(pid) || pid <= 1) return 'not running';
      const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
      if (comm !== 'sshd') return 'not running';
      // An sshd that re-reads a broken configuration exits: check it first, as Debian's unit does
      // (ExecReload=sshd -t). Only on the real root — under a test --root, /etc/ssh is not the machine's.
      if (options.root === '/') await options.exec.run('sshd', ['-t'], { inNetns: false });
      process.kill(pid, 'SIGHUP');
      return 'reloaded';
    },
  };
}
