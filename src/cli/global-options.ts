// The global options of SPEC §4, each with its environment variable, resolved once per run.
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { UserError } from '../errors.js';

export type OutputFormat = 'text' | 'json';

export interface GlobalOptions {
  datastore?: string;
  /** Where --datastore came from: the command line or SC_DATASTORE. */
  datastoreOrigin?: 'option' | 'env';
  source?: string;
  host: string;
  root: string;
  netns?: string;
  output: OutputFormat;
  logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function addGlobalOptions(program: Command): Command {
  return program
    .addOption(
      new Option(
        '--datastore <dir>',
        "desired-state directory (default: the git source named by source.url in this host's settings, else /var/srvctl3/datastore/rw, falling back to …/ro)",
      ).env('SC_DATASTORE'),
    )
    .addOption(new Option('--source <url[#ref]>', 'a git repository (URL or path) as the desired state, at branch/tag/commit REF').env('SC_SOURCE'))
    .addOption(new Option('--host <fqdn>', 'which host of the cluster this is (default: the hostname)').env('SC_HOST'))
    .addOption(new Option('--root <dir>', 'prefix for every host path sc reads or writes').env('SC_ROOT').default('/'))
    .addOption(new Option('--netns <name>', 'do all network work inside this existing network namespace').env('SC_NETNS'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--log-level <level>', 'structured logs (pino) on stderr').choices(LOG_LEVELS).env('SC_LOG_LEVEL').default('warn'));
}

/** Reads the merged global options from any (sub)command. */
export function globalOptions(command: Command): GlobalOptions {
  const o = command.optsWithGlobals<Record<string, string | undefined>>();
  const root = resolve(o.root || '/');
  const host = o.host || hostname();
  if (o.netns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(o.netns)) {
    throw new UserError(`--netns: invalid namespace name ${JSON.stringify(o.netns)}`);
  }
  return {
    datastore: o.datastore ? resolve(o.datastore) : undefined,
    datastoreOrigin: o.datastore ? (command.getOptionValueSourceWithGlobals('datastore') === 'env' ? 'env' : 'option') : undefined,
    source: o.source || undefined,
    host,
    root,
    netns: o.netns || undefined,
    output: (o.output as OutputFormat) ?? 'text',
    logLevel: o.logLevel ?? 'warn',
  };
}
