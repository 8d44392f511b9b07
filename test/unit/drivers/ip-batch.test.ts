// ip -batch encoding (ip's own tokenizer, no shell) and failed-line attribution from real stderr.
import { readFileSync } from 'node:fs';
import { encodeBatchArg, encodeBatchScript, IpBatchError, parseBatchFailures, prepareBatchScript } from '../../../src/drivers/ip-batch.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/ip/${name}`, import.meta.url), 'utf8');

describe('encodeBatchArg', () => {
  it('leaves plain words alone', () => {
    expect(encodeBatchArg('sc-17-3')).toBe('sc-17-3');
    expect(encodeBatchArg('10.17.3.1/24')).toBe('10.17.3.1/24');
  });
  it('quotes words with blanks, empty words and words starting with a quote', () => {
    expect(encodeBatchArg('srvctl:bridge user=alice')).toBe('"srvctl:bridge user=alice"');
    expect(encodeBatchArg('')).toBe('""');
    expect(encodeBatchArg('say "hi"')).toBe(`'say "hi"'`);
    expect(encodeBatchArg("'x")).toBe(`"'x"`);
  });
  it.each(['a\nlink del lo', 'a#b', 'a\\', 'a\0b', `both ' and "`])('refuses %j', (arg) => {
    expect(() => encodeBatchArg(arg)).toThrow(TypeError);
  });
  it('writes one line per command', () => {
    expect(
      encodeBatchScript([
        ['link', 'add', 'name', 'b1', 'type', 'bridge'],
        ['link', 'set', 'dev', 'b1', 'alias', 'a b'],
      ]),
    ).toBe('link add name b1 type bridge\nlink set dev b1 alias "a b"\n');
  });
});

describe('prepareBatchScript', () => {
  it('encodes ahead, freezes the list so it cannot change, and the run sends the same script', () => {
    const commands = [
      ['link', 'add', 'name', 'b1', 'type', 'bridge'],
      ['link', 'set', 'dev', 'b1', 'alias', 'a b'],
    ];
    const expected = encodeBatchScript(commands);
    const ready = prepareBatchScript(commands);
    expect(Object.isFrozen(ready)).toBe(true);
    expect(Object.isFrozen(ready[1])).toBe(true);
    expect(() => (ready as string[][]).push(['link', 'del', 'dev', 'b1'])).toThrow(TypeError);
    expect(encodeBatchScript(ready)).toBe(expected);
    // An unprepared list with the same lines is encoded afresh, with the same result.
    expect(encodeBatchScript(commands.map((c) => [...c]))).toBe(expected);
  });
  it('refuses what cannot be encoded when preparing, not later', () => {
    expect(() => prepareBatchScript([['link', 'set', 'dev', 'b1', 'alias', 'a#b']])).toThrow(TypeError);
  });
});

describe('parseBatchFailures', () => {
  const commands = [
    ['link', 'add', 'name', 'sc-17-3', 'group', '23636', 'type', 'bridge'],
    ['link', 'set', 'dev', 'sc-17-6', 'alias', 'srvctl:bridge user=carol'],
    ['addr', 'add', '10.17.6.1/24', 'broadcast', '+', 'dev', 'sc-17-6'],
    ['link', 'set', 'dev', 'sc-17-4', 'up'],
  ];

  it('maps the real `Command failed -:N` lines back to commands with their messages', () => {
    const failures = parseBatchFailures(fixture('batch-failed.stderr'), commands);
    expect(failures.map((f) => f.index)).toEqual([0, 1, 2]);
    expect(failures[0]?.message).toBe('RTNETLINK answers: File exists');
    expect(failures[1]?.message).toBe('Cannot find device "sc-17-6"');
    expect(failures[2]?.command).toBe(commands[2]);
  });

  it('finds nothing in a clean run', () => {
    expect(parseBatchFailures('', commands)).toEqual([]);
  });

  it('an IpBatchError lists the failed lines and exposes their indices', () => {
    const stderr = fixture('batch-failed.stderr');
    const error = new IpBatchError(['ip', '-force', '-batch', '-'], 1, parseBatchFailures(stderr, commands), stderr, commands.length);
    expect([...error.failedIndices]).toEqual([0, 1, 2]);
    expect(error.message).toContain('3 of 4 batched ip commands failed');
    expect(error.message).toContain('line 2 (ip link set dev sc-17-6 alias srvctl:bridge user=carol): Cannot find device "sc-17-6"');
  });
});
