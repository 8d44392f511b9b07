// The migration report of `sc import srvctl3`: what became of every host, reseller, user and
// container, which fields were dropped, which files were left behind, and the warnings. Its JSON
// form is described by schemas/srvctl3-migration.schema.json and stored in the new datastore,
// where `sc adopt` reads the old addresses from it; the text form is what an admin reviews.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorObject } from 'ajv';
import { migrationReport } from './migration-report-validator.generated.js';
import { UserError } from '../errors.js';

export const MIGRATION_REPORT_FILE = 'srvctl3-migration.json';
export const MIGRATION_REPORT_FORMAT = 'srvctl3-migration/1';

export interface HostMapping {
  name: string;
  cluster: string;
  old_hostnet: number;
  hostnet: number;
  containers: number;
}

export interface ResellerMapping {
  name: string;
  old_reseller_id: number;
  reseller_id: number;
  users: number;
  containers: number;
}

export interface UserMapping {
  name: string;
  reseller: string;
  old_user_id: number | null;
  user_id: number;
  uid: number | null;
  ssh_keys: number;
  note?: string;
}

export interface PortMapping {
  proto: 'tcp' | 'udp';
  host_port: number;
  container_port: number;
}

export interface ContainerMapping {
  name: string;
  user: string;
  host: string;
  type: string;
  old_ip: string | null;
  ip: string;
  bridge?: string;
  mapped_ports: PortMapping[];
}

export interface DroppedField {
  /** Relative to the srvctl 3 datastore (`containers.json`), so the report does not depend on the cwd. */
  file: string;
  entry: string;
  field: string;
  reason: string;
}

export type LeftBehindKind =
  'password' | 'password hash' | 'private key' | 'internal key' | 'symlink' | 'not a public key' | 'too large' | 'unknown user' | 'other';

export interface LeftBehind {
  /** Relative to the srvctl 3 datastore; the content is never read into the report. */
  path: string;
  what: LeftBehindKind;
}

export interface ReportWarning {
  file?: string;
  entry?: string;
  message: string;
}

export interface MigrationReport {
  format: typeof MIGRATION_REPORT_FORMAT;
  source: string;
  files: string[];
  summary: {
    clusters: number;
    hosts: number;
    resellers: number;
    users: number;
    containers: number;
    ssh_keys: number;
    dropped: number;
    left_behind: number;
    warnings: number;
  };
  hosts: HostMapping[];
  resellers: ResellerMapping[];
  users: UserMapping[];
  containers: ContainerMapping[];
  dropped: DroppedField[];
  left_behind: LeftBehind[];
  warnings: ReportWarning[];
}

/** The report's schema as a validation function, compiled at build time (scripts/generate-validators.mjs). */
const reportValidator = migrationReport as unknown as { (value: unknown): boolean; errors?: ErrorObject[] | null };

/** Schema errors of a report (`/containers/3/ip must match format "ipv4"`), none when it is valid. */
export function reportSchemaErrors(value: unknown): string[] {
  const validate = reportValidator;
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);
}

/** A report read back from a datastore (sc adopt): it must match the schema, else it is not used. */
export function parseMigrationReport(text: string, file: string): MigrationReport {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${file} is not valid JSON (${error instanceof Error ? error.message : String(error)}); import the srvctl 3 datastore again`);
  }
  const errors = reportSchemaErrors(value);
  if (errors.length > 0) {
    throw new UserError(
      `${file} is not a srvctl 3 migration report: ${errors.slice(0, 5).join('; ')}${errors.length > 5 ? ` (and ${errors.length - 5} more)` : ''}`,
    );
  }
  return value as MigrationReport;
}

/** The report an import left in a datastore (sc adopt): missing or broken is a clear error. */
export async function readMigrationReport(datastoreDir: string): Promise<MigrationReport> {
  const file = path.join(datastoreDir, MIGRATION_REPORT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new UserError(
      `the datastore ${datastoreDir} has no ${MIGRATION_REPORT_FILE}: sc adopt takes over the containers \`sc import srvctl3\` mapped, and reads their old addresses from its report; import first and keep the report in the datastore`,
    );
  }
  return parseMigrationReport(text, file);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd());
}

const portText = (p: PortMapping): string => `${p.proto}:${p.host_port}→${p.container_port}`;

/** The report as an admin reads it: summary, then each mapping, then what was dropped, left behind and warned about. */
export function renderMigrationReport(report: MigrationReport, out?: string): string {
  const s = report.summary;
  const lines: string[] = [
    `srvctl 3 datastore ${report.source} imported${out !== undefined ? ` into ${out}` : ''}:`,
    `  ${plural(s.clusters, 'cluster')}, ${plural(s.hosts, 'host')}, ${plural(s.resellers, 'reseller')}, ${plural(s.users, 'user')}, ` +
      `${plural(s.containers, 'container')}, ${plural(s.ssh_keys, 'SSH key')}; ${s.dropped} dropped, ${s.left_behind} left behind, ${plural(s.warnings, 'warning')}.`,
    '',
    'Hosts (old hostnet → sc hostnet):',
    ...table([
      ['HOST', 'CLUSTER', 'OLD', 'NEW', 'CONTAINERS'],
      ...report.hosts.map((h) => [h.name, h.cluster, String(h.old_hostnet), String(h.hostnet), String(h.containers)]),
    ]),
    '',
    'Resellers (old reseller_id → sc reseller_id):',
    ...(report.resellers.length
      ? table([
          ['RESELLER', 'OLD', 'NEW', 'USERS', 'CONTAINERS'],
          ...report.resellers.map((r) => [r.name, String(r.old_reseller_id), String(r.reseller_id), String(r.users), String(r.containers)]),
        ])
      : ['  (none: every user belongs to root)']),
    '',
    'Users (old user_id → user_id inside the reseller; uids kept):',
    ...table([
      ['USER', 'RESELLER', 'OLD', 'NEW', 'UID', 'KEYS', 'NOTE'],
      ...report.users.map((u) => [
        u.name,
        u.reseller,
        u.old_user_id === null ? '-' : String(u.old_user_id),
        String(u.user_id),
        u.uid === null ? '-' : String(u.uid),
        String(u.ssh_keys),
        u.note ?? '',
      ]),
    ]),
    '',
    'Containers (old address → new address):',
    ...table([
      ['CONTAINER', 'HOST', 'OWNER', 'OLD IP', 'NEW IP', 'PORTS'],
      ...report.containers.map((c) => [
        c.name,
        c.host,
        c.user,
        c.old_ip ?? '-',
        `${c.ip}${c.bridge !== undefined ? ` (bridge ${c.bridge})` : ''}`,
        c.mapped_ports.map(portText).join(' '),
      ]),
    ]),
  ];
  if (report.dropped.length) {
    lines.push('', 'Dropped fields (not carried into sc):');
    for (const d of report.dropped) lines.push(`  ${d.file} ${d.entry} ${d.field}: ${d.reason}`);
  }
  if (report.left_behind.length) {
    lines.push('', 'Left behind (never copied: passwords, hashes, private keys and other files under users/):');
    const byKind = new Map<string, string[]>();
    for (const l of report.left_behind) byKind.set(l.what, [...(byKind.get(l.what) ?? []), l.path]);
    // All paths are in the JSON report; the text names a few per kind.
    for (const [what, paths] of byKind) lines.push(`  ${what} (${paths.length}): ${paths.slice(0, 4).join(', ')}${paths.length > 4 ? ', …' : ''}`);
  }
  if (report.warnings.length) {
    lines.push('', 'Warnings:');
    for (const w of report.warnings)
      lines.push(`  ${[w.file, w.entry].filter(Boolean).join(' ')}${w.file !== undefined || w.entry !== undefined ? ': ' : ''}${w.message}`);
  }
  return `${lines.join('\n')}\n`;
}
