// What every step of the srvctl 3 import shares: the parsed source, and the collection of errors
// (located at file:line:col and JSON path in the srvctl 3 files), warnings, dropped fields and
// files left behind. Errors are collected, never thrown one by one: the admin sees them all.
import path from 'node:path';
import type { Diagnostic } from '../errors.js';
import { jsonPointer, type DocumentPath, type SourceDocument } from '../datastore/source-document.js';
import type { DroppedField, LeftBehind, ReportWarning } from './migration-report.js';
import type { Srvctl3Source } from './srvctl3-source.js';

export type SourceKind = 'clusters' | 'users' | 'containers';

export interface ImportOptions {
  /** --hostnet OLD=NEW: old hostnet → sc hostnet (the others follow in order of old hostnet). */
  readonly hostnets?: ReadonlyMap<number, number>;
  /** --container-host NAME=HOST: the host of a container whose address does not tell (bridge containers). */
  readonly containerHosts?: ReadonlyMap<string, string>;
}

export class ImportContext {
  readonly errors: Diagnostic[] = [];
  readonly warnings: ReportWarning[] = [];
  readonly dropped: DroppedField[] = [];
  readonly leftBehind: LeftBehind[] = [];

  constructor(
    readonly source: Srvctl3Source,
    readonly options: ImportOptions,
  ) {}

  document(kind: SourceKind): SourceDocument {
    return this.source[kind];
  }

  /** A path in sc's shape ([cluster, host, …] for hosts) as a path into the srvctl 3 file. */
  sourcePath(kind: SourceKind, outPath: DocumentPath): DocumentPath {
    return kind === 'clusters' && this.source.hostsCluster !== undefined ? outPath.slice(1) : outPath;
  }

  /** The file as the report names it: relative to the srvctl 3 datastore, so the report does not depend on the cwd. */
  reportFile(kind: SourceKind): string {
    const file = this.source[kind].path;
    const relative = path.relative(this.source.dir, file);
    return relative.startsWith('..') ? file : relative;
  }

  /** An error at a path (sc's shape) of one of the srvctl 3 files. */
  error(kind: SourceKind, outPath: DocumentPath, message: string): void {
    const document = this.document(kind);
    const at = this.sourcePath(kind, outPath);
    const { line, column } = document.positionOf(at);
    this.errors.push({ severity: 'error', file: document.displayPath, line, column, ...(at.length ? { path: jsonPointer(at) } : {}), message });
  }

  /** An error that is about the command line, not a file. */
  optionError(message: string): void {
    this.errors.push({ severity: 'error', message });
  }

  warn(kind: SourceKind | undefined, entry: string | undefined, message: string): void {
    this.warnings.push({ ...(kind !== undefined ? { file: this.reportFile(kind) } : {}), ...(entry !== undefined ? { entry } : {}), message });
  }

  drop(kind: SourceKind, entry: string, field: string, reason: string): void {
    this.dropped.push({ file: this.reportFile(kind), entry, field, reason });
  }

  leaveBehind(entry: LeftBehind): void {
    this.leftBehind.push(entry);
  }
}
