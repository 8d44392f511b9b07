// The `sc` command tree: global options plus one registration per command module.
import { Command } from 'commander';
import { registerAccess } from './commands/access.js';
import { registerAdopt } from './commands/adopt.js';
import { registerDatastoreEdits } from './commands/datastore-edits.js';
import { registerExec } from './commands/exec.js';
import { registerHostCommands } from './commands/host-commands.js';
import { registerImport } from './commands/import-srvctl3.js';
import { registerInstallUnits } from './commands/install-units.js';
import { registerQueryVerbs } from './commands/query-verbs.js';
import { registerReconcile } from './commands/reconcile.js';
import { registerValidate } from './commands/validate.js';
import { addGlobalOptions } from './global-options.js';
import { version } from './version.js';

export function createProgram(): Command {
  const program = new Command('sc')
    .description('srvctl 4: declarative reconciler for a farm of systemd-nspawn containers.\nsc diff shows what differs on this host; sc apply converges it.')
    .version(version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureOutput({ outputError: (str, write) => write(str) });
  addGlobalOptions(program);
  // commander exits 1 for usage errors; keep --help / --version at 0.
  program.exitOverride();
  registerValidate(program);
  registerHostCommands(program);
  registerDatastoreEdits(program);
  registerQueryVerbs(program);
  registerReconcile(program);
  registerInstallUnits(program);
  registerExec(program);
  registerImport(program);
  registerAdopt(program);
  registerAccess(program);
  for (const sub of program.commands) sub.exitOverride();
  return program;
}
