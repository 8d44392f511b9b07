// `sc install-units`: writes srvctl-reconcile.service/.timer and the containers' template unit
// under <root>/etc/systemd/system, rewriting a file only when its content differs.
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFileAtomic } from '../../drivers/atomic-file.js';
import { hasCredentials, redactUrl, urlWithoutCredentials } from '../../drivers/url-credentials.js';
import { renderUnits, UNIT_DIR } from '../../resources/systemd-units.js';
import { runCommand, type CommandContext } from '../command-runner.js';
import { openDatastore } from '../open-datastore.js';

interface InstallFlags {
  interval?: number;
  jitter?: number;
  scPath?: string;
}

/** The global options the operator gave (command line or environment): the timer's pass must see the same desired state. */
const BAKED_OPTIONS = [
  ['source', '--source'],
  ['datastore', '--datastore'],
  ['host', '--host'],
  ['netns', '--netns'],
  ['logLevel', '--log-level'],
] as const;

function bakedGlobalArgs(command: Command, ctx: CommandContext): string[] {
  const values = command.optsWithGlobals<Record<string, string | undefined>>();
  const args: string[] = [];
  for (const [key, flag] of BAKED_OPTIONS) {
    const origin = command.getOptionValueSourceWithGlobals(key);
    let value = values[key];
    // The unit file is world-readable: a source URL goes in without its credentials, which git then
    // takes from its credential helper or an SSH key (README "Security model").
    if (key === 'source' && value !== undefined && hasCredentials(value)) {
      value = urlWithoutCredentials(value);
      ctx.notice(
        `the unit gets the source URL without its credentials (${redactUrl(values[key] ?? '')}); ` +
          'give them to git on this host instead: a credential helper (git config --system credential.helper store, root-only file) or an SSH key',
      );
    }
    if (value !== undefined && value !== '' && (origin === 'cli' || origin === 'env')) args.push(flag, value);
  }
  return args;
}

/** How to start this very sc: `node …/main.js`, or the path given with --sc-path. */
async function scCommand(flags: InstallFlags): Promise<string[]> {
  if (flags.scPath !== undefined) return [flags.scPath];
  const script = process.argv[1];
  return script ? [process.execPath, await realpath(script)] : [process.execPath];
}

async function timing(ctx: CommandContext, flags: InstallFlags): Promise<{ interval: number; jitter: number }> {
  if (flags.interval !== undefined && flags.jitter !== undefined) return { interval: flags.interval, jitter: flags.jitter };
  let settings;
  try {
    settings = (await openDatastore(ctx)).model.settings;
  } catch (error) {
    ctx.notice(`could not read the settings for the timer (${error instanceof Error ? error.message : String(error)}); using the defaults`);
  }
  return {
    interval: flags.interval ?? settings?.reconcile?.interval_seconds ?? 300,
    jitter: flags.jitter ?? settings?.reconcile?.jitter_seconds ?? 30,
  };
}

export function registerInstallUnits(program: Command): void {
  program
    .command('install-units')
    .addOption(new Option('--interval <seconds>', 'timer interval (default: settings reconcile.interval_seconds, else 300)').argParser(seconds))
    .addOption(new Option('--jitter <seconds>', 'RandomizedDelaySec (default: settings reconcile.jitter_seconds, else 30)').argParser(seconds))
    .option('--sc-path <path>', 'the sc executable for ExecStart (default: this node and script)')
    .description('write srvctl-reconcile.service/.timer and srvctl-nspawn@.service under --root/etc/systemd/system (only what changed)')
    .action((flags: InstallFlags, command: Command) =>
      runCommand(command, async (ctx) => {
        const { interval, jitter } = await timing(ctx, flags);
        if (interval <= 0) throw new InvalidArgumentError('--interval must be more than 0');
        const units = renderUnits({
          command: await scCommand(flags),
          globalArgs: bakedGlobalArgs(command, ctx),
          intervalSeconds: interval,
          jitterSeconds: jitter,
        });
        const dir = join(ctx.options.root, UNIT_DIR);
        await mkdir(dir, { recursive: true });
        const results: { unit: string; path: string; state: 'written' | 'unchanged' }[] = [];
        for (const [unit, text] of units) {
          const path = join(dir, unit);
          const current = await readFile(path, 'utf8').catch(() => undefined);
          if (current === text) {
            results.push({ unit, path, state: 'unchanged' });
            continue;
          }
          await writeFileAtomic(path, text, { mode: 0o644 });
          results.push({ unit, path, state: 'written' });
        }
        const written = results.filter((r) => r.state === 'written').length;
        const lines = results.map((r) => `${r.state.padEnd(9)} ${r.path}`);
        if (written > 0 && ctx.options.root === '/') lines.push('Run: systemctl daemon-reload && systemctl enable --now srvctl-reconcile.timer');
        return { text: lines.join('\n'), json: { units: results } };
      }),
    );
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds (0 or more).');
  return n;
}
