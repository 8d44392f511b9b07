// `sc exec NAME -- CMD…` and `sc exec-all -- CMD…`: run a command inside one or every running
// container of this host. The command is an argument array passed straight through, never a shell.
import type { Command } from 'commander';
import { createDrivers } from '../../drivers/create-drivers.js';
import type { MachineRecord } from '../../drivers/runtime.js';
import type { ExecResult } from '../../drivers/types.js';
import { ScError, UserError } from '../../errors.js';
import { runCommand, type CommandContext } from '../command-runner.js';
import { hostContext, openDatastore } from '../open-datastore.js';

async function runningMachines(ctx: CommandContext) {
  const loaded = await openDatastore(ctx);
  const host = hostContext(ctx, loaded);
  const drivers = createDrivers(host, ctx.logger);
  if (!drivers.nspawn) throw new ScError('no container runtime available');
  const nspawn = drivers.nspawn;
  const mine = new Set(
    Object.entries(loaded.model.containers)
      .filter(([, c]) => c.host === host.name)
      .map(([name]) => name),
  );
  const machines = (await nspawn.runtime(host.runtime).list()).filter((m) => m.state === 'running' && m.initPid !== undefined);
  return { nspawn, mine, machines, hostName: host.name };
}

function requireArgv(argv: readonly string[]): void {
  if (argv.length === 0) throw new UserError('no command given: sc exec NAME -- CMD [ARGS…]');
}

const prefixed = (name: string, text: string): string =>
  text === ''
    ? ''
    : text
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => `${name}: ${line}\n`)
        .join('');

export function registerExec(program: Command): void {
  program
    .command('exec')
    .argument('<name>', 'a container of this host')
    .argument('<command...>', 'the command and its arguments (after --)')
    .description('run a command inside a running container of this host; exits with its exit code')
    .action((name: string, argv: string[], _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        requireArgv(argv);
        const { nspawn, mine, machines, hostName } = await runningMachines(ctx);
        if (!mine.has(name)) throw new UserError(`container ${name} is not a container of host ${hostName} in the datastore`);
        const machine = machines.find((m) => m.name === name);
        if (!machine) throw new UserError(`container ${name} is not running (sc status shows its state; sc apply starts it)`);
        const result = await nspawn.enter(machine, argv);
        process.stderr.write(result.stderr);
        return { exitCode: result.exitCode, text: result.stdout.replace(/\n$/, ''), json: execJson(machine, result) };
      }),
    );

  program
    .command('exec-all')
    .argument('<command...>', 'the command and its arguments (after --)')
    .description('run a command in every running container of this host; output prefixed per container, exit 1 if any failed')
    .action((argv: string[], _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        requireArgv(argv);
        const { nspawn, mine, machines } = await runningMachines(ctx);
        const targets = machines.filter((m) => mine.has(m.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
        const results = await Promise.all(targets.map(async (m) => ({ machine: m, result: await nspawn.enter(m, argv) })));
        for (const { machine, result } of results) process.stderr.write(prefixed(machine.name, result.stderr));
        const failed = results.filter(({ result }) => result.exitCode !== 0);
        const text = results.map(({ machine, result }) => prefixed(machine.name, result.stdout)).join('');
        const summary = failed.length
          ? `\n${failed.length} of ${results.length} failed: ${failed.map((f) => `${f.machine.name} (exit ${f.result.exitCode})`).join(', ')}`
          : '';
        return {
          exitCode: failed.length > 0 ? 1 : 0,
          text: `${text.replace(/\n$/, '')}${summary}`,
          json: { results: results.map(({ machine, result }) => execJson(machine, result)) },
        };
      }),
    );
}

function execJson(machine: MachineRecord, result: ExecResult) {
  return { container: machine.name, exit_code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}
