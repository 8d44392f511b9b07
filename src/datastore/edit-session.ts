// The one path every datastore edit takes: refuse a read-only datastore, lock, load (it must be
// valid before), change copies of the documents, validate the result in memory, and only then
// write the changed files atomically. Any problem → UserError and not a byte written.
import { dirname, join } from 'node:path';
import { formatDiagnostic, UserError, type Diagnostic } from '../errors.js';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import { withDatastoreLock } from './datastore-lock.js';
import { assertWritable, type DatastoreLocation } from './datastore-location.js';
import { EditableDocument } from './edit-document.js';
import { commitEdit, type EditCommit } from './git-commit-edit.js';
import { loadDatastore, sourceDocumentFromText, validateDocuments, type LoadedDatastore } from './load-datastore.js';
import { DATASTORE_KINDS, type DatastoreKind, type Model } from './model.js';
import { jsonPointer, type SourceDocument } from './source-document.js';
import { loadYaml } from './yaml-module.js';

export interface EditContext {
  location: DatastoreLocation;
  /** This host's FQDN: the default host of new containers. */
  thisHost: string;
  /** Who asked (shown in the lock holder), e.g. the invoking user. */
  actor?: string;
  /** How long to wait for another writer's lock (default 10 s). */
  lockTimeoutMs?: number;
  /** The git commit message when the datastore is a git work tree (default `sc <command>`). */
  commandLine?: string;
  /** Push the commit when the branch has an upstream (default: settings.source.push). */
  push?: boolean;
}

export interface EditChange {
  kind: DatastoreKind;
  /** The top-level key: a username, a container name. */
  key: string;
  action: 'add' | 'update' | 'remove';
  /** The new record (add), the changed fields (update); absent for remove. */
  value?: unknown;
}

export interface EditResult {
  message: string;
  changes: EditChange[];
  /** Absolute paths of the files written (none on a dry run or when nothing changed). */
  files: string[];
  /** Warnings the edit introduced (e.g. an unknown field); never a reason to refuse it. */
  warnings: Diagnostic[];
  dryRun: boolean;
  /** The commit made when the datastore is a git work tree of its own. */
  commit?: EditCommit;
}

export interface EditOptions {
  /** e.g. `add-user alice`: named in the lock file and in error messages. */
  command: string;
  /** Load a datastore that still lacks allocations (`sc allocate`). The result is always checked strictly. */
  loadUnallocated?: boolean;
  /** Compute and validate, but neither lock nor write. */
  dryRun?: boolean;
}

/** What a mutation sees: the loaded model and editable copies of the documents. */
export class DatastoreEdit {
  readonly changes: EditChange[] = [];
  private readonly editable = new Map<DatastoreKind, EditableDocument>();

  constructor(
    readonly loaded: LoadedDatastore,
    private readonly location: DatastoreLocation,
  ) {}

  get model(): Model {
    return this.loaded.model;
  }

  /** The editable copy of a kind's document, created (next to the others, same format) when the file does not exist. */
  document(kind: DatastoreKind): EditableDocument {
    let doc = this.editable.get(kind);
    if (!doc) {
      const source = this.loaded.documents[kind];
      doc = source ? EditableDocument.fromSource(source) : this.newDocument(kind);
      this.editable.set(kind, doc);
    }
    return doc;
  }

  /** Line and column of a key path in the document as loaded, for diagnostics. */
  where(kind: DatastoreKind, path: readonly (string | number)[]): Pick<Diagnostic, 'file' | 'line' | 'column' | 'path'> {
    const source = this.loaded.documents[kind];
    const pointer = jsonPointer(path);
    if (!source) return { path: pointer };
    return { file: source.displayPath, ...source.positionOf(path), path: pointer };
  }

  record(change: EditChange): void {
    this.changes.push(change);
  }

  changedDocuments(): EditableDocument[] {
    return DATASTORE_KINDS.map((k) => this.editable.get(k)).filter((d): d is EditableDocument => d?.changed === true);
  }

  private newDocument(kind: DatastoreKind): EditableDocument {
    // srvctl 3 datastores are JSON; a datastore that is already YAML gets YAML files.
    const siblings = Object.values(this.loaded.documents).filter((d): d is SourceDocument => d !== undefined);
    const sameDir = siblings.find((d) => dirname(d.path) === this.location.dir) ?? siblings[0];
    const format = sameDir?.format ?? 'json';
    return EditableDocument.create(kind, join(this.location.dir, `${kind}.${format}`), format);
  }
}

function lockCommand(ctx: EditContext, command: string): string {
  return `sc ${command}${ctx.actor ? ` (by ${ctx.actor})` : ''}`;
}

/** Validates the documents as they would be after the edit; returns the warnings the edit adds. */
function validateEdited(edit: DatastoreEdit, changed: EditableDocument[], texts: Map<EditableDocument, string>, command: string): Diagnostic[] {
  const candidate: Partial<Record<DatastoreKind, SourceDocument>> = { ...edit.loaded.documents };
  for (const doc of changed) candidate[doc.kind] = sourceDocumentFromText(doc.kind, doc.path, texts.get(doc) ?? '');
  const { diagnostics } = validateDocuments(candidate, { allowUnallocated: false });
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    throw new UserError(`${command}: refused, the datastore would be invalid afterwards; nothing was written`, errors);
  }
  const before = new Set(edit.loaded.warnings.map(formatDiagnostic));
  return diagnostics.filter((d) => d.severity === 'warning' && !before.has(formatDiagnostic(d)));
}

/**
 * Runs one datastore edit. `mutate` changes `edit.document(kind)` copies, records the changes
 * and returns the message for the operator; it throws UserError to refuse.
 */
export async function runDatastoreEdit(
  ctx: EditContext,
  options: EditOptions,
  mutate: (edit: DatastoreEdit) => string | Promise<string>,
): Promise<EditResult> {
  const dryRun = options.dryRun ?? false;
  const work = async (): Promise<EditResult> => {
    const loaded = await loadDatastore(ctx.location, { allowUnallocated: options.loadUnallocated ?? false });
    const edit = new DatastoreEdit(loaded, ctx.location);
    const message = await mutate(edit);
    const changed = edit.changedDocuments();
    if (changed.length === 0) return { message, changes: edit.changes, files: [], warnings: [], dryRun };
    const texts = new Map(changed.map((doc) => [doc, doc.render()] as const));
    if (changed.some((doc) => doc.format === 'yaml')) await loadYaml();
    const warnings = validateEdited(edit, changed, texts, options.command);
    const files: string[] = [];
    if (!dryRun) {
      // Kind order (users before containers): a crash between two files leaves ids without
      // addresses, which `sc allocate` completes, never addresses of unknown ids.
      for (const doc of changed) {
        const text = texts.get(doc) ?? '';
        if (text === doc.originalText) continue;
        await writeFileAtomic(doc.path, text);
        files.push(doc.path);
      }
      // Still under the lock: the next writer's commit cannot interleave with this one.
      const push = ctx.push ?? loaded.model.settings.source?.push ?? false;
      const commit = await commitEdit({ dir: ctx.location.dir, files, message: ctx.commandLine ?? `sc ${options.command}`, actor: ctx.actor, push });
      if (commit?.pushProblem) warnings.push({ severity: 'warning', message: commit.pushProblem });
      if (commit) return { message, changes: edit.changes, files, warnings, dryRun, commit };
    }
    return { message, changes: edit.changes, files, warnings, dryRun };
  };
  if (dryRun) return work();
  assertWritable(ctx.location);
  return withDatastoreLock(ctx.location.dir, lockCommand(ctx, options.command), work, { timeoutMs: ctx.lockTimeoutMs });
}
