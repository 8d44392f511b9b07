// `sc validate`: schema, cross-checks and the kinds' own checks of the datastore; exit 0 valid, 1 invalid.
import type { Command } from 'commander';
import { keyDiagnostics } from '../../access/key-diagnostics.js';
import { jsonPointer } from '../../datastore/source-document.js';
import { formatDiagnostic, UserError } from '../../errors.js';
import { loadDesired } from '../../reconciler/desired-state.js';
import { resourceHandlers } from '../../resources/registry.js';
import { runCommand } from '../command-runner.js';
import { openDatastoreLocation } from '../open-datastore.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      "check the datastore (JSON Schemas, cross-checks and each kind's own checks, e.g. image builder settings); exit 0 when valid, 1 when not",
    )
    .action((_opts, command: Command) =>
      runCommand(command, async (ctx) => {
        const location = await openDatastoreLocation(ctx);
        try {
          const { model, warnings: loadWarnings, documents } = await loadDesired(location, resourceHandlers);
          const users = documents.users;
          // Keys sc would not install (only here, not on every diff/apply): see `sc add-publickey`.
          const keys = keyDiagnostics(model, (path) =>
            users ? { file: users.displayPath, ...users.positionOf(path), path: jsonPointer(path) } : { path: jsonPointer(path) },
          );
          const keyErrors = keys.filter((d) => d.severity === 'error');
          if (keyErrors.length > 0) throw new UserError('', [...keys, ...loadWarnings]);
          const warnings = [...loadWarnings, ...keys];
          const hosts = Object.values(model.clusters).reduce((n, h) => n + Object.keys(h).length, 0);
          const counts = {
            clusters: Object.keys(model.clusters).length,
            hosts,
            users: Object.keys(model.users).length,
            containers: Object.keys(model.containers).length,
          };
          const lines = warnings.map((w) => formatDiagnostic(w));
          lines.push(
            `The datastore ${location.dir} is valid: ${counts.clusters} clusters, ${counts.hosts} hosts, ${counts.users} users, ${counts.containers} containers.`,
          );
          return { text: lines.join('\n'), json: { valid: true, datastore: location.dir, read_only: location.readOnly, counts, warnings } };
        } catch (error) {
          if (ctx.options.output === 'json' && error instanceof UserError && error.diagnostics.length) {
            return {
              exitCode: 1,
              json: {
                valid: false,
                datastore: location.dir,
                errors: error.diagnostics.filter((d) => d.severity === 'error'),
                warnings: error.diagnostics.filter((d) => d.severity === 'warning'),
              },
            };
          }
          throw error;
        }
      }),
    );
}
