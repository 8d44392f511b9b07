// The ip driver over a scripted fake Exec: which commands it runs and how it reads their results.
import { readFileSync } from 'node:fs';
import { IpBatchError } from '../../../src/drivers/ip-batch.js';
import { createIpDriver, withoutKindData } from '../../../src/drivers/ip.js';
import type { Exec, ExecOptions, ExecResult } from '../../../src/drivers/types.js';
import { HostCommandError } from '../../../src/errors.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/ip/${name}`, import.meta.url), 'utf8');

interface Call {
  command: string;
  args: readonly string[];
  options: ExecOptions | undefined;
}

/** Answers each call with the next scripted result and records what was run. */
function scriptedExec(results: Partial<ExecResult>[]): Exec & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    async run(command, args, options) {
      calls.push({ command, args, options });
      const r = results.shift() ?? {};
      const result = { command: [command, ...args], exitCode: 0, stdout: '', stderr: '', ...r };
      if (result.exitCode !== 0 && !options?.allowFailure) throw new HostCommandError(result.command, result.exitCode, result.stderr);
      return result;
    },
  };
}

describe('createIpDriver', () => {
  it('lists links with ONE `ip -json -details link show` and parses real output', async () => {
    const exec = scriptedExec([{ stdout: fixture('link-show-details.json') }]);
    const links = await createIpDriver(exec).listLinks();
    expect(exec.calls).toHaveLength(1);
    expect(exec.calls[0]?.args).toEqual(['-json', '-details', 'link', 'show']);
    const bridge = links.find((l) => l.ifname === 'sc-17-3');
    expect(bridge?.linkinfo?.info_kind).toBe('bridge');
    expect(bridge?.ifalias).toBe('srvctl:bridge user=alice');
  });

  it("parses the link dump without the kinds' settings (info_data, info_slave_data) and nothing else lost", async () => {
    const text = fixture('link-show-details.json');
    const links = await createIpDriver(scriptedExec([{ stdout: text }])).listLinks();
    const full = JSON.parse(text) as { linkinfo?: Record<string, unknown> }[];
    for (const link of full) {
      delete link.linkinfo?.info_data;
      delete link.linkinfo?.info_slave_data;
    }
    expect(links).toEqual(full);
    expect(text).toContain('"info_data":{');
    expect(JSON.stringify(links)).not.toContain('info_data');
  });

  it('cuts only flat kind data, whatever its strings hold, and keeps text that merely looks like it', () => {
    const link = (info: string, alias = 'srvctl:bridge user=a') =>
      `{"ifindex":3,"ifname":"x","flags":[],"linkinfo":{"info_kind":"bridge"${info}},"ifalias":${JSON.stringify(alias)}}`;
    const tricky = link(',"info_data":{"a":"} {\\"","b":1},"info_slave_kind":"bridge","info_slave_data":{"c":"x"}');
    expect(JSON.parse(withoutKindData(`[${tricky}]`))).toEqual([
      { ifindex: 3, ifname: 'x', flags: [], linkinfo: { info_kind: 'bridge', info_slave_kind: 'bridge' }, ifalias: 'srvctl:bridge user=a' },
    ]);
    // Nested data stays (parsed, not read); an alias quoting the member's text is not touched.
    const nested = link(',"info_data":{"ad_info":{"aggregator":1}}');
    expect(withoutKindData(nested)).toBe(nested);
    const alias = link('', ',"info_data":{"a":1}');
    expect(withoutKindData(alias)).toBe(alias);
  });

  it('lists IPv4 addresses with ONE `ip -4 -json addr show`', async () => {
    const exec = scriptedExec([{ stdout: fixture('addr-show.json') }]);
    const entries = await createIpDriver(exec).listAddresses();
    expect(exec.calls.map((c) => c.args)).toEqual([['-4', '-json', 'addr', 'show']]);
    expect(entries.find((e) => e.ifname === 'sc-17-3')?.addr_info.map((a) => a.local)).toContain('10.17.3.1');
  });

  it('shares one dump per kind among the calls of a share, and reads afresh after it ends', async () => {
    const exec = scriptedExec(Array.from({ length: 4 }, () => ({ stdout: '[]' })));
    const ip = createIpDriver(exec);
    const end = (ip.shareReads as () => () => void)();
    await Promise.all([ip.listLinks(), ip.listLinks(), ip.listAddresses(), ip.listLinks()]);
    expect(exec.calls).toHaveLength(2);
    end();
    await ip.listLinks();
    await ip.listLinks();
    expect(exec.calls).toHaveLength(4);
  });

  it('uses a prefetched dump once: in the next share only', async () => {
    const exec = scriptedExec([{ stdout: '[{"ifindex":1,"ifname":"lo","flags":[]}]' }, { stdout: '[]' }, { stdout: '[]' }]);
    const ip = createIpDriver(exec);
    (ip.prefetch as () => void)();
    expect(exec.calls.map((c) => c.args[0])).toEqual(['-json', '-4']);
    const end = (ip.shareReads as () => () => void)();
    expect((await ip.listLinks()).map((l) => l.ifname)).toEqual(['lo']);
    await ip.listAddresses();
    expect(exec.calls).toHaveLength(2);
    end();
    expect(await ip.listLinks()).toEqual([]);
    expect(exec.calls).toHaveLength(3);
  });

  it('reads afresh after a batch, even inside a share', async () => {
    const exec = scriptedExec(Array.from({ length: 4 }, () => ({ stdout: '[]' })));
    const ip = createIpDriver(exec);
    const end = (ip.shareReads as () => () => void)();
    await ip.listLinks();
    await ip.batch([['link', 'del', 'dev', 'x']]);
    await ip.listLinks();
    expect(exec.calls.map((c) => c.args[0])).toEqual(['-json', 'link', '-json']);
    end();
  });

  it('keeps a failed prefetch quiet until a pass asks for it', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: 'Cannot open network namespace' }, { stdout: '[]' }]);
    const ip = createIpDriver(exec);
    (ip.prefetch as () => void)();
    await new Promise((resolve) => setImmediate(resolve));
    const end = (ip.shareReads as () => () => void)();
    await expect(ip.listLinks()).rejects.toThrow(HostCommandError);
    end();
  });

  it('retries a dump the kernel reports as interrupted', async () => {
    const exec = scriptedExec([
      { exitCode: 1, stdout: '[', stderr: 'Dump was interrupted and may be inconsistent.\n' },
      { stdout: fixture('addr-show.json') },
    ]);
    const entries = await createIpDriver(exec).listAddresses();
    expect(exec.calls).toHaveLength(2);
    expect(entries.length).toBeGreaterThan(0);
  });

  it('gives up on a dump that stays interrupted, with a retryable error', async () => {
    const exec = scriptedExec(Array.from({ length: 10 }, () => ({ exitCode: 1, stderr: 'Dump was interrupted and may be inconsistent.\n' })));
    const error = await createIpDriver(exec)
      .listAddresses()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostCommandError);
    expect((error as HostCommandError).retryable).toBe(true);
    expect(exec.calls).toHaveLength(5);
  });

  it('reports unparsable output as a HostCommandError', async () => {
    const exec = scriptedExec([{ stdout: 'not json' }]);
    await expect(createIpDriver(exec).listLinks()).rejects.toThrow(/could not parse its JSON output/);
  });

  it('runs a lone command as plain `ip …` and nothing at all for none', async () => {
    const exec = scriptedExec([{}]);
    const ip = createIpDriver(exec);
    await ip.batch([]);
    await ip.batch([['link', 'del', 'dev', 'sc-17-3']]);
    expect(exec.calls.map((c) => [c.command, ...c.args])).toEqual([['ip', 'link', 'del', 'dev', 'sc-17-3']]);
    expect(exec.calls[0]?.options?.input).toBeUndefined();
  });

  it('runs several commands as ONE `ip -force -batch -` fed on stdin', async () => {
    const exec = scriptedExec([{}]);
    await createIpDriver(exec).batch([
      ['link', 'add', 'name', 'b1', 'type', 'bridge'],
      ['link', 'set', 'dev', 'b1', 'alias', 'srvctl:bridge user=alice'],
    ]);
    expect(exec.calls).toHaveLength(1);
    expect(exec.calls[0]?.args).toEqual(['-force', '-batch', '-']);
    expect(exec.calls[0]?.options?.input).toBe('link add name b1 type bridge\nlink set dev b1 alias "srvctl:bridge user=alice"\n');
  });

  it('throws an IpBatchError naming exactly the failed lines', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: fixture('batch-failed.stderr') }]);
    const commands = [['a'], ['b'], ['c'], ['d']];
    const error = await createIpDriver(exec)
      .batch(commands)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpBatchError);
    expect([...(error as IpBatchError).failedIndices]).toEqual([0, 1, 2]);
  });

  it('counts every line failed when ip stops without naming one', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: 'Unterminated quoted string\n' }]);
    const error = await createIpDriver(exec)
      .batch([['a'], ['b']])
      .catch((e: unknown) => e);
    expect([...(error as IpBatchError).failedIndices]).toEqual([0, 1]);
  });

  it('a lone failed command keeps its own message', async () => {
    const exec = scriptedExec([{ exitCode: 2, stderr: 'RTNETLINK answers: File exists\n' }]);
    const error = await createIpDriver(exec)
      .batch([['link', 'add', 'name', 'b1', 'type', 'bridge']])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpBatchError);
    expect((error as IpBatchError).message).toMatch(/ip link add name b1 type bridge failed \(exit 2\): RTNETLINK answers: File exists$/);
  });
});
