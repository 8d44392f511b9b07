// The nft driver over a scripted fake Exec: the exact commands, a missing table read as absent,
// other failures surfaced, and the JSON shape of real `nft -j list table` output.
import { readFileSync } from 'node:fs';
import { createNftDriver, parseNftJson } from '../../../src/drivers/nft.js';
import type { Exec, ExecOptions, ExecResult } from '../../../src/drivers/types.js';
import { HostCommandError } from '../../../src/errors.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/nft/${name}`, import.meta.url), 'utf8');

interface Call {
  command: string;
  args: readonly string[];
  options: ExecOptions | undefined;
}

function scriptedExec(results: Partial<ExecResult>[]): Exec & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    async run(command, args, options) {
      calls.push({ command, args, options });
      const result = { command: [command, ...args], exitCode: 0, stdout: '', stderr: '', ...(results.shift() ?? {}) };
      if (result.exitCode !== 0 && !options?.allowFailure) throw new HostCommandError(result.command, result.exitCode, result.stderr);
      return result;
    },
  };
}

describe('createNftDriver', () => {
  it('reads one table with ONE `nft -j list table FAMILY NAME` and drops metainfo', async () => {
    const exec = scriptedExec([{ stdout: fixture('list-table-srvctl.json') }]);
    const objects = await createNftDriver(exec).listTable('ip', 'srvctl');
    expect(exec.calls.map((c) => [c.command, ...c.args])).toEqual([['nft', '-j', 'list', 'table', 'ip', 'srvctl']]);
    expect(objects?.some((o) => 'metainfo' in o)).toBe(false);
    expect(objects?.[0]).toEqual({ table: { family: 'ip', name: 'srvctl', handle: expect.any(Number) } });
    expect(objects?.filter((o) => 'rule' in o)).toHaveLength(5);
  });

  it('reads a table that does not exist as undefined, not as an error', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: fixture('no-such-table.stderr') }]);
    await expect(createNftDriver(exec).listTable('ip', 'srvctl')).resolves.toBeUndefined();
  });

  it('surfaces any other failure with nft’s message', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: 'Error: Operation not permitted' }]);
    await expect(createNftDriver(exec).listTable('ip', 'srvctl')).rejects.toThrow(/Operation not permitted/);
  });

  it('loads a ruleset through stdin of `nft -f -` (one atomic transaction)', async () => {
    const exec = scriptedExec([{}]);
    await createNftDriver(exec).load('table ip srvctl\ndelete table ip srvctl\n');
    expect(exec.calls).toHaveLength(1);
    expect([exec.calls[0]?.command, ...(exec.calls[0]?.args ?? [])]).toEqual(['nft', '-f', '-']);
    expect(exec.calls[0]?.options?.input).toBe('table ip srvctl\ndelete table ip srvctl\n');
  });

  it('fails a load loudly with nft’s error', async () => {
    const exec = scriptedExec([{ exitCode: 1, stderr: 'Error: syntax error, unexpected junk' }]);
    await expect(createNftDriver(exec).load('junk')).rejects.toBeInstanceOf(HostCommandError);
  });
});

describe('parseNftJson', () => {
  it('rejects output that is not nft JSON', () => {
    expect(() => parseNftJson(['nft'], 'not json')).toThrow(HostCommandError);
    expect(() => parseNftJson(['nft'], '[1,2]')).toThrow(/expected \{"nftables"/);
  });
});
