// srvctl 3's query verbs: `sc out host|user|container NAME` and `sc get container|user|host NAME FIELD`.
import { Command, Argument } from 'commander';
import { getField, outRecord } from '../../datastore/query-verbs.js';
import { runCommand } from '../command-runner.js';
import { openDatastore } from '../open-datastore.js';

const kinds = ['host', 'user', 'container'] as const;

export function registerQueryVerbs(program: Command): void {
  program
    .command('out')
    .addArgument(new Argument('<what>', 'what to print').choices(kinds))
    .argument('<name>', 'its name')
    .description("print a record as srvctl 3 style key='value' lines (shell-quoted)")
    .action((what: (typeof kinds)[number], name: string, _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        const { model } = await openDatastore(ctx);
        const { lines, record } = outRecord(model, what, name);
        return { text: lines.join('\n'), json: record };
      }),
    );

  program
    .command('get')
    .addArgument(new Argument('<what>', 'what to query').choices(kinds))
    .argument('<name>', 'its name')
    .argument('<field>', 'the field (raw, or derived: bridge, gateway, reseller, …)')
    .description('print one field of a record')
    .action((what: (typeof kinds)[number], name: string, field: string, _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        const { model } = await openDatastore(ctx);
        const value = getField(model, what, name, field);
        const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
        return { text, json: { [field]: value } };
      }),
    );
}
