// The command manifest against the real command definitions: `sc --help` built from the manifest's
// stand-ins must be what the real commands give, and only the command that runs is loaded.
import { Help, type Command } from 'commander';
import { COMMANDS, commandNames } from '../../../src/cli/command-manifest.js';
import { commandWord, createProgram } from '../../../src/cli/program.js';

const argv = (...args: string[]) => ['node', 'sc', ...args];
const realTerm = (cmd: Command) => new Help().subcommandTerm(cmd);

describe('command manifest', () => {
  let full: Command;
  beforeAll(async () => {
    full = await createProgram(argv(), { all: true });
  });

  test('every real command has its entry, in the same order, with the same usage line and summary', () => {
    const real = full.commands.map((c) => ({ usage: realTerm(c), summary: c.description() }));
    expect(COMMANDS.map((e) => ({ usage: e.usage, summary: e.summary }))).toEqual(real);
  });

  test('sc --help from the stand-ins is the help of the real commands', async () => {
    const light = await createProgram(argv('--help'));
    expect(light.helpInformation()).toBe(full.helpInformation());
    // Nothing was loaded for it: every command is a stand-in (no options, no arguments of its own).
    expect(light.commands.every((c) => c.options.length === 0 && c.registeredArguments.length === 0)).toBe(true);
  });

  test.each(COMMANDS.map((e) => [commandNames(e)[0] as string]))('sc %s loads its real definition', async (name) => {
    const program = await createProgram(argv('--root', '/tmp', name, '--help'));
    const cmd = program.commands.find((c) => c.name() === name);
    const reference = full.commands.find((c) => c.name() === name);
    expect(cmd?.helpInformation()).toBe(reference?.helpInformation());
  });

  test('the command word skips global options and their values, and follows `help`', () => {
    const program = full;
    expect(commandWord(program, [])).toBeUndefined();
    expect(commandWord(program, ['--version'])).toBeUndefined();
    expect(commandWord(program, ['diff', '--target', 'bridge'])).toBe('diff');
    expect(commandWord(program, ['--datastore', 'validate', '-o', 'json', 'status'])).toBe('status');
    expect(commandWord(program, ['--datastore=ds', '-ojson', 'plan'])).toBe('plan');
    expect(commandWord(program, ['--log-level', 'info', 'help', 'apply'])).toBe('apply');
    expect(commandWord(program, ['--', 'diff'])).toBeUndefined();
  });
});
