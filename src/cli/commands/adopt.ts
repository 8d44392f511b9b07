// `sc adopt`: mark the srvctl 3 containers of this host that `sc import srvctl3` mapped as sc's,
// so the next `sc apply` moves them to their new addresses (src/migration/adopt.ts does the work).
import type { Command } from 'commander';
import { createDrivers } from '../../drivers/create-drivers.js';
import { adoptSrvctl3Containers, renderAdoptResult } from '../../migration/adopt.js';
import { readMigrationReport } from '../../migration/migration-report.js';
import { acquireHostLock } from '../../reconciler/host-lock.js';
import { runCommand } from '../command-runner.js';
import { hostContext, openDatastore } from '../open-datastore.js';

export function registerAdopt(program: Command): void {
  program
    .command('adopt')
    .option('--dry-run', 'check and list, change nothing')
    .description("take over this host's srvctl 3 containers that `sc import srvctl3` mapped: the next `sc apply` moves them to their new addresses")
    .addHelpText(
      'after',
      `
For every container the datastore's srvctl3-migration.json places on this host (--host), sc adopt
looks for srvctl 3's layout under --root: /srv/NAME/rootfs and its settings (/srv/NAME/NAME.nspawn,
where srvctl 3.2 kept them, or /etc/systemd/nspawn/NAME.nspawn). It must match the imported record
(veth or bridge of the old address, mapped ports, type); then sc adopt writes sc's marks — a state
record of the machine under /run/srvctl and sc's header on /etc/systemd/nspawn/NAME.nspawn (with
the srvctl 3 settings kept below it until then). Nothing in /srv/NAME is changed.

Containers that do not match are listed and left alone. Before adoption \`sc diff\` shows the
containers as conflicts (!); after it as updates (~): the next \`sc apply\` rewrites their network
configuration for the new address and restarts them, keeping their data.

Example:
  sc adopt --datastore ./farm --host t2.example.com && sc diff --datastore ./farm --host t2.example.com`,
    )
    .action((opts: { dryRun?: boolean }, command: Command) =>
      runCommand(command, async (ctx) => {
        const loaded = await openDatastore(ctx);
        const host = hostContext(ctx, loaded);
        const report = await readMigrationReport(loaded.location.dir);
        const drivers = createDrivers(host, ctx.logger);
        // Apply reads and writes the same state records and settings files: not at the same time.
        const lock = opts.dryRun ? undefined : await acquireHostLock(host.root, { command: 'sc adopt' });
        try {
          const result = await adoptSrvctl3Containers({ drivers, host, model: loaded.model, report, dryRun: opts.dryRun === true });
          return { text: renderAdoptResult(result, host.root), json: result };
        } finally {
          await lock?.release();
        }
      }),
    );
}
