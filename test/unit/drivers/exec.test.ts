// The exec choke point against real, harmless programs (node itself): errors, stdin, timeouts,
// logging, and how --netns rewrites a command line.
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { commandInNetns, createExec } from '../../../src/drivers/exec.js';
import { HostCommandError, UserError } from '../../../src/errors.js';

const node = process.execPath;

describe('createExec', () => {
  const exec = createExec();

  it('runs an argument array without a shell', async () => {
    const result = await exec.run(node, ['-e', 'process.stdout.write(process.argv[1])', '$(echo no) ; |&']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('$(echo no) ; |&');
  });

  it('feeds `input` on stdin', async () => {
    const result = await exec.run(node, ['-e', 'process.stdin.pipe(process.stdout)'], { input: 'line 1\nline 2\n' });
    expect(result.stdout).toBe('line 1\nline 2\n');
  });

  it('collects bulk output through a file: all of it, multibyte text intact, stderr still apart, no file left', async () => {
    const before = readdirSync(tmpdir()).filter((n) => n.startsWith('sc-out-')).length;
    // 3 MiB: far more than a pipe holds, written while nobody reads.
    const script = 'process.stdout.write("é".repeat(3 << 19) + "end"); console.error("note"); process.exitCode = 2';
    const result = await exec.run(node, ['-e', script], { bulkOutput: true, allowFailure: true });
    expect(result.exitCode).toBe(2);
    expect(result.stdout.length).toBe((3 << 19) + 3);
    expect(result.stdout.endsWith('éend')).toBe(true);
    expect(result.stderr).toBe('note\n');
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith('sc-out-')).length).toBe(before);
  });

  it('turns a non-zero exit into a HostCommandError with the command, code and stderr', async () => {
    const error = await exec.run(node, ['-e', 'console.error("boom"); process.exit(3)']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostCommandError);
    const e = error as HostCommandError;
    expect(e.code).toBe(3);
    expect(e.stderr).toContain('boom');
    expect(e.command[0]).toBe(node);
  });

  it('returns a non-zero exit when allowFailure is set', async () => {
    const result = await exec.run(node, ['-e', 'process.exit(4)'], { allowFailure: true });
    expect(result.exitCode).toBe(4);
  });

  it('names a missing program and the package that provides it', async () => {
    const noPath = createExec();
    await expect(noPath.run('sc-no-such-program-x', [])).rejects.toThrow(/sc-no-such-program-x: command not found/);
    const error = await noPath.run('nft', ['list', 'ruleset'], { env: { PATH: '/nonexistent' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostCommandError);
    expect((error as Error).message).toContain('install the nftables package');
  });

  it('kills a command that exceeds its timeout', async () => {
    const error = await exec.run(node, ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostCommandError);
    expect((error as Error).message).toContain('timed out after 200 ms');
    expect((error as HostCommandError).retryable).toBe(true);
  });

  it('logs every command at debug with its duration', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logged = createExec({ logger: pino({ level: 'debug' }, sink) });
    await logged.run(node, ['-e', '0']);
    const entry = JSON.parse(lines[0] ?? '{}') as { level: number; command: string[]; durationMs: number; exitCode: number };
    expect(entry.level).toBe(20);
    expect(entry.command).toEqual([node, '-e', '0']);
    expect(typeof entry.durationMs).toBe('number');
    expect(entry.exitCode).toBe(0);
  });

  it("keeps its caller's NOTIFY_SOCKET from the programs it starts, and passes the rest (its own and `env`)", async () => {
    // In a container (systemd-nspawn sets it) or a Type=notify unit, openvpn --daemon inheriting
    // NOTIFY_SOCKET does not fork (sd_notify succeeds), and sc waited for it until the timeout.
    const saved = { notify: process.env.NOTIFY_SOCKET, other: process.env.SC_TEST_KEPT };
    process.env.NOTIFY_SOCKET = '/run/host/notify';
    process.env.SC_TEST_KEPT = 'kept';
    try {
      const show = 'process.stdout.write(JSON.stringify([process.env.NOTIFY_SOCKET ?? null, process.env.SC_TEST_KEPT, process.env.SC_TEST_EXTRA]))';
      const result = await exec.run(node, ['-e', show], { env: { SC_TEST_EXTRA: 'extra' } });
      expect(JSON.parse(result.stdout)).toEqual([null, 'kept', 'extra']);
    } finally {
      for (const [name, value] of [
        ['NOTIFY_SOCKET', saved.notify],
        ['SC_TEST_KEPT', saved.other],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('refuses a network namespace that does not exist, with a clear UserError', async () => {
    const inMissing = createExec({ netns: `sc-missing-${process.pid}` });
    const error = await inMissing.run('ip', ['link', 'show']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(`network namespace "sc-missing-${process.pid}" does not exist`);
    // Commands that opt out of the namespace still run.
    await expect(inMissing.run(node, ['-e', '0'], { inNetns: false })).resolves.toMatchObject({ exitCode: 0 });
  });

  it('refuses a namespace name that is not one path component', async () => {
    await expect(createExec({ netns: '../etc' }).run('ip', ['link'])).rejects.toThrow(/not a valid network namespace name/);
  });
});

describe('commandInNetns', () => {
  it('uses ip -n for ip', () => {
    expect(commandInNetns('t1', 'ip', ['-json', 'link', 'show'])).toEqual(['ip', ['-n', 't1', '-json', 'link', 'show']]);
  });
  it('uses nsenter --net for systemd-nspawn (ip netns exec breaks its cgroup detection)', () => {
    expect(commandInNetns('t1', 'systemd-nspawn', ['-D', '/x'])).toEqual(['nsenter', ['--net=/run/netns/t1', 'systemd-nspawn', '-D', '/x']]);
  });
  it('uses ip netns exec for anything else', () => {
    expect(commandInNetns('t1', 'nft', ['-f', '-'])).toEqual(['ip', ['netns', 'exec', 't1', 'nft', '-f', '-']]);
  });
});

describe('a failed command never shows its stdout', () => {
  test('stderr empty, a key on stdout: the error names the command and exit code only', async () => {
    const exec = createExec();
    // The key comes from the environment, so the command line itself holds no secret.
    const env = { KEY: '-----BEGIN PRIVATE KEY-----\nSECRETKEYBYTES\n' };
    const error = await exec
      .run(process.execPath, ['-e', 'process.stdout.write(process.env.KEY); process.exit(3)'], { env })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostCommandError);
    expect((error as Error).message).toMatch(/failed \(exit 3\): no message on stderr$/);
    const everything = `${(error as Error).message} ${JSON.stringify(error)} ${String((error as Error).stack)}`;
    expect(everything).not.toContain('SECRETKEYBYTES');
    expect(everything).not.toContain('PRIVATE KEY');
  });
});
