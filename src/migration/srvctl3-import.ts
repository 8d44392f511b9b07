// `sc import srvctl3` as one pure function: a parsed srvctl 3.2 datastore in, an sc datastore
// (its documents as the bytes to write) and the migration report out — or every problem at once.
// Deterministic, no clock: importing the same input again gives byte-identical output.
import { crossCheckProblems } from '../datastore/cross-checks.js';
import { validateDocuments, type Documents } from '../datastore/load-datastore.js';
import { sourceDocumentFromText } from '../datastore/source-document.js';
import { formatDiagnostic, ScError, UserError } from '../errors.js';
import { ImportContext, type ImportOptions, type SourceKind } from './import-context.js';
import {
  MIGRATION_REPORT_FILE,
  MIGRATION_REPORT_FORMAT,
  reportSchemaErrors,
  type ContainerMapping,
  type MigrationReport,
  type PortMapping,
} from './migration-report.js';
import { mapContainers } from './srvctl3-containers.js';
import { dropSchemaViolations, type Record3 } from './srvctl3-fields.js';
import { mapHosts } from './srvctl3-hosts.js';
import type { Srvctl3Source } from './srvctl3-source.js';
import { mapUsers } from './srvctl3-users.js';

export type { ImportOptions } from './import-context.js';

export interface ImportResult {
  /** File name in the new datastore → its exact bytes (the report included). */
  readonly files: Readonly<Record<string, string>>;
  readonly report: MigrationReport;
}

/**
 * srvctl 3's images (dnf --installroot on its Fedora hosts, `srvctl regenerate rootfs`): sc builds
 * them the same way; the package lists are srvctl 3's per-type lists plus what its base gave.
 */
const SRVCTL3_IMAGES: Readonly<Record<string, { builder: 'dnf'; packages: string[] }>> = {
  fedora: { builder: 'dnf', packages: ['httpd', 'mod_ssl', 'openssh-server', 'postfix'] },
  mail: { builder: 'dnf', packages: ['dovecot', 'postfix', 'openssh-server'] },
  codepad: { builder: 'dnf', packages: ['git', 'nodejs', 'openssh-server'] },
};
/** Types sc builds without settings. */
const BUILT_IN_IMAGES = new Set(['busybox', 'debian']);

const isRecord = (value: unknown): value is Record3 => typeof value === 'object' && value !== null && !Array.isArray(value);

const jsonText = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

function imageSettings(ctx: ImportContext, containers: Record<string, Record3>): Record3 | undefined {
  const count = new Map<string, number>();
  for (const c of Object.values(containers)) if (typeof c.type === 'string') count.set(c.type, (count.get(c.type) ?? 0) + 1);
  const images: Record3 = {};
  for (const type of [...count.keys()].sort()) {
    const known = SRVCTL3_IMAGES[type];
    if (known) images[type] = { builder: known.builder, packages: [...known.packages] };
    else if (!BUILT_IN_IMAGES.has(type)) {
      ctx.warn(
        undefined,
        undefined,
        `type "${type}" (${count.get(type)} containers) has no image builder in sc: add settings.images.${type} (busybox, debootstrap or dnf) before applying on its hosts`,
      );
    }
  }
  if (Object.keys(images).length === 0) return undefined;
  ctx.warn(
    undefined,
    undefined,
    `settings.json: dnf image builders for ${Object.keys(images).join(', ')} like srvctl 3's; review their package lists`,
  );
  return { images };
}

/** sc's own cross-checks over the result, reported at the srvctl 3 entries they are about. */
function crossCheck(ctx: ImportContext, documents: { clusters: Record3; users: Record3; containers: Record3 }): void {
  for (const problem of crossCheckProblems(documents)) {
    const kind = problem.kind as SourceKind;
    if (problem.severity === 'error') ctx.error(kind, problem.path, problem.message);
    else
      ctx.warn(
        kind,
        problem.path.length ? String(problem.path[kind === 'clusters' ? Math.min(1, problem.path.length - 1) : 0]) : undefined,
        problem.message,
      );
  }
}

function portMappings(value: unknown): PortMapping[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter(isRecord)
    .map((p) => ({ proto: p.proto as PortMapping['proto'], host_port: p.host_port as number, container_port: p.container_port as number }));
}

/** Imports a parsed srvctl 3.2 datastore. Throws a UserError listing every problem; nothing is half done. */
export function importSrvctl3(source: Srvctl3Source, options: ImportOptions = {}): ImportResult {
  const ctx = new ImportContext(source, options);
  const containersOf = new Map<string, number>();
  for (const c of Object.values(source.containers.data as Record3)) {
    if (isRecord(c) && typeof c.user === 'string') containersOf.set(c.user, (containersOf.get(c.user) ?? 0) + 1);
  }
  const hosts = mapHosts(ctx);
  const users = mapUsers(ctx, containersOf);
  const containers = mapContainers(ctx, hosts, users.users);
  const settings = imageSettings(ctx, containers.containers);

  const documents = { clusters: hosts.clusters as Record3, users: users.users, containers: containers.containers };
  const clean = (['clusters', 'users', 'containers'] as const).map((kind) => dropSchemaViolations(ctx, kind, documents[kind]));
  // Cross-checks of a document with refused names would only repeat them.
  if (ctx.errors.length === 0 && clean.every(Boolean)) crossCheck(ctx, documents);
  if (ctx.errors.length > 0) {
    // Option errors first, then file by file (clusters, users, containers) in line order.
    const rank = (file: string | undefined): number =>
      file === undefined ? -1 : (['clusters', 'users', 'containers'] as const).findIndex((kind) => source[kind].displayPath === file);
    const errors = ctx.errors
      .map((d, i) => ({ d, i }))
      .sort((a, b) => rank(a.d.file) - rank(b.d.file) || (a.d.line ?? 0) - (b.d.line ?? 0) || (a.d.column ?? 0) - (b.d.column ?? 0) || a.i - b.i)
      .map(({ d }) => d);
    throw new UserError(
      `${source.dir} cannot be imported: ${errors.length} ${errors.length === 1 ? 'error' : 'errors'}; nothing was written`,
      errors,
    );
  }

  const files: Record<string, string> = {
    'clusters.json': jsonText(documents.clusters),
    'users.json': jsonText(documents.users),
    'containers.json': jsonText(documents.containers),
    ...(settings !== undefined ? { 'settings.json': jsonText(settings) } : {}),
  };
  const fileNames = [...Object.keys(files), MIGRATION_REPORT_FILE];

  const containerRows: ContainerMapping[] = Object.entries(documents.containers).map(([name, c]) => ({
    name,
    user: String(c.user),
    host: String(c.host),
    type: String(c.type),
    old_ip: containers.oldAddresses.get(name) ?? null,
    ip: String(c.ip),
    ...(typeof c.bridge === 'string' ? { bridge: c.bridge } : {}),
    mapped_ports: portMappings(c.mapped_ports),
  }));
  for (const host of hosts.mappings) host.containers = containerRows.filter((c) => c.host === host.name).length;
  const keptNames = new Set(Object.keys(documents.users));
  const userRows = users.mappings.filter((u) => keptNames.has(u.name));
  const leftBehind = [...ctx.leftBehind].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const report: MigrationReport = {
    format: MIGRATION_REPORT_FORMAT,
    source: source.dir,
    files: fileNames,
    summary: {
      clusters: Object.keys(documents.clusters).length,
      hosts: hosts.mappings.length,
      resellers: users.resellers.length,
      users: userRows.length,
      containers: containerRows.length,
      ssh_keys: userRows.reduce((n, u) => n + u.ssh_keys, 0),
      dropped: ctx.dropped.length,
      left_behind: leftBehind.length,
      warnings: ctx.warnings.length,
    },
    hosts: hosts.mappings,
    resellers: users.resellers,
    users: userRows,
    containers: containerRows,
    dropped: ctx.dropped,
    left_behind: leftBehind,
    warnings: ctx.warnings,
  };
  files[MIGRATION_REPORT_FILE] = jsonText(report);
  assertValidResult(files, report);
  return { files, report };
}

/** The import checks its own output with sc's validator and the report's schema: a failure here is a bug in the import. */
function assertValidResult(files: Readonly<Record<string, string>>, report: MigrationReport): void {
  const documents: Documents = {};
  for (const kind of ['clusters', 'users', 'containers', 'settings'] as const) {
    const text = files[`${kind}.json`];
    if (text !== undefined) documents[kind] = sourceDocumentFromText(kind, `/srvctl3-import/${kind}.json`, text);
  }
  const problems = [
    ...validateDocuments(documents)
      .diagnostics.filter((d) => d.severity === 'error')
      .map((d) => formatDiagnostic(d)),
    ...reportSchemaErrors(report).map((e) => `${MIGRATION_REPORT_FILE} ${e}`),
  ];
  if (problems.length > 0) throw new ScError(`the imported datastore does not validate (a bug in sc import): ${problems.slice(0, 10).join('; ')}`);
}
