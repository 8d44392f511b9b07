// The `sc` command tree: global options, the command that runs (its module loaded on demand), and
// a light stand-in for every other command so `sc --help` and commander's suggestions list them all.
import { Command, Help } from 'commander';
import { COMMANDS, commandNames } from './command-manifest.js';
import { addGlobalOptions } from './global-options.js';
import { version } from './version.js';

/** The usage line of each stand-in, for `sc --help` (commander derives it from the real command). */
const standInUsage = new WeakMap<Command, string>();

function baseProgram(): Command {
  const program = new Command('sc')
    .description(
      'srvctl 4: declarative reconciler for a farm of systemd-nspawn containers.\nsc diff shows what differs on this host; sc apply converges it.',
    )
    .version(version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureOutput({ outputError: (str, write) => write(str) })
    .configureHelp({
      subcommandTerm(this: Help, cmd: Command): string {
        return standInUsage.get(cmd) ?? Help.prototype.subcommandTerm.call(this, cmd);
      },
    });
  addGlobalOptions(program);
  // commander exits 1 for usage errors; keep --help / --version at 0.
  program.exitOverride();
  return program;
}

/**
 * The command word of ARGS (what follows `node sc`): the first operand after the global options,
 * or the one after `help`. Undefined for `sc`, `sc --help`, `sc --version`.
 */
export function commandWord(program: Command, args: readonly string[]): string | undefined {
  const takesValue = new Set(
    program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)),
  );
  let afterHelp = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return undefined;
    if (arg.startsWith('-') && arg !== '-') {
      if (takesValue.has(arg)) i++;
      continue;
    }
    if (arg === 'help' && !afterHelp) {
      afterHelp = true;
      continue;
    }
    return arg;
  }
  return undefined;
}

/**
 * The program for ARGV (process.argv form): the command ARGV names is defined by its module; the
 * others are stand-ins with their name, aliases, usage line and summary. `all` loads every module
 * (tests compare the two).
 */
export async function createProgram(argv: readonly string[] = process.argv, options: { all?: boolean } = {}): Promise<Command> {
  const program = baseProgram();
  const word = commandWord(program, argv.slice(2));
  const wanted = COMMANDS.filter((entry) => options.all || (word !== undefined && commandNames(entry).includes(word)));
  const registers = new Set<(program: Command) => void>();
  for (const entry of wanted) registers.add(await entry.load()); // one after another: jest's ESM loader trips over parallel imports
  for (const register of registers) register(program);
  for (const entry of COMMANDS) {
    const [name, ...aliases] = commandNames(entry);
    if (name === undefined || program.commands.some((c) => c.name() === name)) continue;
    const standIn = program.command(name).description(entry.summary).helpOption(false).allowUnknownOption().allowExcessArguments();
    for (const alias of aliases) standIn.alias(alias);
    standInUsage.set(standIn, entry.usage);
  }
  // In the manifest's order, as `sc --help` lists them.
  const rank = (c: Command) => COMMANDS.findIndex((e) => commandNames(e)[0] === c.name()) >>> 0;
  (program.commands as Command[]).sort((a, b) => rank(a) - rank(b));
  for (const sub of program.commands) sub.exitOverride();
  return program;
}
