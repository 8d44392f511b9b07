// The exec layer's --netns handling against a real namespace: each program family is run the way
// it must be (ip -n, ip netns exec, nsenter), and sees the namespace, not the machine's.
import { readFile } from 'node:fs/promises';
import { createExec } from '../../src/drivers/exec.js';
import { HostCommandError } from '../../src/errors.js';
import { withSandbox } from './sandbox.js';

/** Interface names in a /proc/net/dev listing. */
const interfaces = (procNetDev: string) =>
  procNetDev
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]?.trim())
    .filter((name): name is string => Boolean(name))
    .sort();

describe('exec in a network namespace', () => {
  it('runs ip with -n, other programs through ip netns exec, and lets a command opt out', () =>
    withSandbox(async (sandbox) => {
      await sandbox.ip('link', 'add', 'name', 'scx0', 'type', 'bridge');
      const exec = createExec({ netns: sandbox.netns });

      const links = await exec.run('ip', ['-json', 'link', 'show']);
      expect(links.command.slice(0, 3)).toEqual(['ip', '-n', sandbox.netns]);
      expect((JSON.parse(links.stdout) as { ifname: string }[]).map((l) => l.ifname).sort()).toEqual(['lo', 'scx0']);

      const inside = await exec.run('cat', ['/proc/self/net/dev']);
      expect(inside.command.slice(0, 4)).toEqual(['ip', 'netns', 'exec', sandbox.netns]);
      expect(interfaces(inside.stdout)).toEqual(['lo', 'scx0']);

      const outside = await exec.run('cat', ['/proc/self/net/dev'], { inNetns: false });
      expect(interfaces(outside.stdout)).toEqual(interfaces(await readFile('/proc/self/net/dev', 'utf8')));
    }));

  it('runs systemd-nspawn through nsenter --net', () =>
    withSandbox(async (sandbox) => {
      const result = await createExec({ netns: sandbox.netns }).run('systemd-nspawn', ['--version']);
      expect(result.command.slice(0, 3)).toEqual(['nsenter', `--net=/run/netns/${sandbox.netns}`, 'systemd-nspawn']);
      expect(result.stdout).toMatch(/^systemd \d+/);
    }));

  it('names a program missing behind ip netns exec', () =>
    withSandbox(async (sandbox) => {
      const error = await createExec({ netns: sandbox.netns })
        .run('sc-no-such-program', [])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HostCommandError);
      expect((error as Error).message).toContain('sc-no-such-program: command not found');
    }));
});
