// `sc import srvctl3 SRC --out DIR`: read a srvctl 3.2 datastore, map it onto sc's plan (pure,
// src/migration/srvctl3-import.ts), write the new datastore and its migration report all at once.
import { Command, InvalidArgumentError } from 'commander';
import { writeImportedDatastore } from '../../migration/import-output.js';
import { renderMigrationReport } from '../../migration/migration-report.js';
import { importSrvctl3 } from '../../migration/srvctl3-import.js';
import { readSrvctl3Source } from '../../migration/srvctl3-source.js';
import { runCommand } from '../command-runner.js';

function hostnetPair(value: string, previous: [number, number][] = []): [number, number][] {
  const m = /^([0-9]{1,3})=([0-9]{1,2})$/.exec(value);
  const old = Number(m?.[1]);
  const next = Number(m?.[2]);
  if (!m || old > 255 || next < 1 || next > 15)
    throw new InvalidArgumentError('expected OLD=NEW: a srvctl 3 hostnet (0–255) = an sc hostnet (1–15), e.g. 78=1.');
  if (previous.some(([o]) => o === old)) throw new InvalidArgumentError(`hostnet ${old} is mapped twice.`);
  return [...previous, [old, next]];
}

function containerHostPair(value: string, previous: [string, string][] = []): [string, string][] {
  const m = /^([^=\s]+)=([^=\s]+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected NAME=HOST, e.g. lan.example.com=t1.example.com.');
  if (previous.some(([n]) => n === m[1])) throw new InvalidArgumentError(`container ${m[1]} is given twice.`);
  return [...previous, [m[1] as string, m[2] as string]];
}

interface ImportOptionsCli {
  out: string;
  force?: boolean;
  hostnet?: [number, number][];
  containerHost?: [string, string][];
  clusters?: string;
  cluster?: string;
}

export function registerImport(program: Command): void {
  const importCommand = program.command('import').description("make an sc datastore from another tool's (srvctl 3.2)");
  const srvctl3 = importCommand
    .command('srvctl3')
    .argument(
      '<src>',
      'the srvctl 3.2 datastore directory (/var/srvctl3/datastore: users.json, containers.json, users/, and hosts.json or clusters.json)',
    )
    .requiredOption('--out <dir>', 'the new sc datastore directory (made; an existing one must be empty unless --force)')
    .option('--force', 'write into a non-empty --out: replaces the files an import writes, keeps everything else (.git, …)')
    .option(
      '--hostnet <old=new>',
      'put the host with srvctl 3 hostnet OLD on sc hostnet NEW (1–15), repeatable; the others follow in order of their old hostnet',
      hostnetPair,
    )
    .option('--container-host <name=host>', 'the host of a container whose address does not tell (a bridge container), repeatable', containerHostPair)
    .option(
      '--clusters <file>',
      'read the hosts from this clusters.json (srvctl 3 kept it in /etc/srvctl/data) instead of SRC/clusters.json or SRC/hosts.json',
    )
    .option('--cluster <name>', 'the cluster name for hosts read from SRC/hosts.json', 'srvctl3')
    .description(
      'import a srvctl 3.2 datastore into a new sc datastore, with a migration report (text, or JSON with -o json; also written as srvctl3-migration.json)',
    )
    .addHelpText(
      'after',
      `
What it does:
  hosts       srvctl 3 hostnet (16–255) → sc hostnet 1–15, in order of the old hostnet (or --hostnet)
  resellers   the resellers that own users or containers → reseller_id 1–15 (more than 15: an error)
  users       user_id inside the reseller (the old one where it is free), uid kept,
              users/NAME/*.pub → ssh_keys; passwords, hashes, private keys are never copied
  containers  host from the old address 10.HOSTNET.USER_ID.N, a new address from .20 in the
              owner's /24 on that host; bridge containers keep their bridge; every field sc or
              srvctl 3 knows is carried, the rest is listed as dropped

Bad input (duplicate addresses, an address of no host, srvctl 3.2's NaN addresses and uids, an
unknown reseller, malformed JSON) is reported with file, line and entry; nothing is written.
The same input gives byte-identical output. Then: sc validate --datastore DIR, commit it, and
run sc adopt and sc apply host by host (README: "Moving from srvctl 3").

Example:
  sc import srvctl3 /var/srvctl3/datastore --clusters /etc/srvctl/data/clusters.json --out ./farm`,
    )
    .action((src: string, opts: ImportOptionsCli, command: Command) =>
      runCommand(command, async () => {
        const source = await readSrvctl3Source(src, {
          ...(opts.clusters !== undefined ? { clustersFile: opts.clusters } : {}),
          ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
        });
        const { files, report } = importSrvctl3(source, {
          hostnets: new Map(opts.hostnet ?? []),
          containerHosts: new Map(opts.containerHost ?? []),
        });
        const written = await writeImportedDatastore(opts.out, files, { force: opts.force === true });
        const removed = written.removed.length ? `; removed ${written.removed.join(', ')} of the earlier import` : '';
        return {
          text: `${renderMigrationReport(report, written.dir)}\nWrote ${written.files.join(', ')} to ${written.dir}${removed}.\nNext: sc validate --datastore ${written.dir}`,
          json: report,
        };
      }),
    );
  srvctl3.exitOverride();
}
