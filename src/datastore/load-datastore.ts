// Reads the datastore's files, validates them (schemas + cross-checks) and builds the frozen Model.
// Bad input never stops at the first problem: every diagnostic is collected and thrown once.
import { join } from 'node:path';
import { listNoFollow } from '../drivers/no-follow-fs.js';
import { boundDiagnostic, UserError, type Diagnostic } from '../errors.js';
import { crossCheckProblems } from './cross-checks.js';
import { LIMITS, longStrings } from './limits.js';
import type { DatastoreLocation } from './datastore-location.js';
import { DATASTORE_KINDS, type DatastoreKind, type Model } from './model.js';
import { frozenCopy, isRawObject } from './raw-data.js';
import { schemaProblems, unknownFieldProblems, type DocumentProblem } from './schema-validation.js';
import { displayPathOf, jsonPointer, readSourceDocument, type SourceDocument } from './source-document.js';

export { sourceDocumentFromText } from './source-document.js';

export interface LoadedDatastore {
  location: DatastoreLocation;
  documents: Partial<Record<DatastoreKind, SourceDocument>>;
  /** Deep-frozen; a missing file reads as {}. */
  model: Model;
  warnings: Diagnostic[];
}

export interface LoadOptions {
  /** True for `sc allocate` and the edit commands: missing user_id/uid/reseller_id/ip are not errors. */
  allowUnallocated?: boolean;
  /**
   * Checks of the valid model beyond the schemas (each kind's own validate(model), given by the
   * engine): run only when the schemas and cross-checks found no error; located like theirs.
   */
  modelChecks?: (model: Model) => readonly DocumentProblem[];
}

export type Documents = Partial<Record<DatastoreKind, SourceDocument>>;

const EXTENSIONS = ['.json', '.yaml', '.yml'] as const;

/**
 * Finds each kind's file (.json|.yaml|.yml; two formats of one kind in a dir, or the same kind in
 * both dir and staticDir, is an error), parses, validates. Throws a UserError whose diagnostics
 * list every problem found (and the warnings).
 */
export async function loadDatastore(location: DatastoreLocation, options: LoadOptions = {}): Promise<LoadedDatastore> {
  const diagnostics: Diagnostic[] = [];
  const documents: Documents = {};
  const fileRank = new Map<string, number>();
  let allRead = true;
  // What is left of the datastore size limit: each file may use at most that much.
  let budget: number = LIMITS.datastoreBytes;
  const dirs = [location.dir, ...(location.staticDir !== undefined ? [location.staticDir] : [])];
  const listings = await Promise.all(dirs.map((dir) => listDirectory(dir)));
  for (const [rank, kind] of DATASTORE_KINDS.entries()) {
    const candidates = dirs.flatMap((dir, i) =>
      EXTENSIONS.map((ext) => `${kind}${ext}`)
        .filter((file) => listings[i]?.has(file))
        .map((file) => join(dir, file)),
    );
    for (const file of candidates) fileRank.set(displayPathOf(file), rank);
    const [first, second] = candidates;
    if (first === undefined) continue;
    if (second !== undefined) {
      allRead = false;
      diagnostics.push(ambiguity(kind, candidates, location));
      continue;
    }
    try {
      const document = await readSourceDocument(first, kind, { maxBytes: budget });
      budget -= Buffer.byteLength(document.text);
      documents[kind] = document;
      diagnostics.push(...document.warnings);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      allRead = false;
      diagnostics.push(...error.diagnostics);
    }
  }
  // Cross-checks against a file that could not be read would only report its absence, many times over.
  const checked = checkDocuments(documents, {
    allowUnallocated: options.allowUnallocated ?? false,
    crossCheck: allRead,
    ...(allRead && options.modelChecks !== undefined ? { modelChecks: options.modelChecks } : {}),
  });
  const all = sortDiagnostics([...diagnostics, ...checked.diagnostics], fileRank);
  const errors = all.filter((d) => d.severity === 'error').length;
  if (errors) {
    throw new UserError(`the datastore ${displayPathOf(location.dir)} is invalid: ${errors} ${errors === 1 ? 'error' : 'errors'}`, all);
  }
  return { location, documents, model: checked.model, warnings: all };
}

/**
 * Validation of already-parsed documents (the edit commands validate a modified datastore in memory
 * before writing). Returns every diagnostic (errors and warnings) and the model.
 */
export function validateDocuments(documents: Documents, options: LoadOptions = {}): { model: Model; diagnostics: Diagnostic[] } {
  const checked = checkDocuments(documents, { allowUnallocated: options.allowUnallocated ?? false, crossCheck: true });
  const rank = new Map(DATASTORE_KINDS.flatMap((kind, i) => (documents[kind] ? [[documents[kind].displayPath, i] as const] : [])));
  return { model: checked.model, diagnostics: sortDiagnostics(checked.diagnostics, rank) };
}

function checkDocuments(
  documents: Documents,
  options: { allowUnallocated: boolean; crossCheck: boolean; modelChecks?: (model: Model) => readonly DocumentProblem[] },
): { model: Model; diagnostics: Diagnostic[] } {
  const problems: DocumentProblem[] = [];
  for (const kind of DATASTORE_KINDS) {
    const document = documents[kind];
    if (!document) continue;
    // A JSON document's text already says whether it can hold such a string: no search of its data.
    const tooLong = (document.longestString ?? Infinity) <= LIMITS.stringLength ? [] : longStrings(document.data, LIMITS.stringLength);
    if (tooLong.length) {
      // A 10 MB string is refused as such, before the schema quotes it or the cross-checks index it.
      problems.push(
        ...tooLong.map(({ path, length }) => ({
          severity: 'error' as const,
          kind,
          path,
          message: `a string of ${length} characters, over the limit of ${LIMITS.stringLength}`,
        })),
      );
      continue;
    }
    problems.push(...schemaProblems(kind, document.data), ...unknownFieldProblems(kind, document.data));
  }
  // A document that is not a mapping at all is like one that does not parse: cross-checking
  // against it would only report its records as missing.
  const allMappings = DATASTORE_KINDS.every((kind) => documents[kind] === undefined || isRawObject(documents[kind].data));
  if (options.crossCheck && allMappings) {
    problems.push(
      ...crossCheckProblems(
        {
          clusters: documents.clusters?.data,
          users: documents.users?.data,
          containers: documents.containers?.data,
          settings: documents.settings?.data,
        },
        { allowUnallocated: options.allowUnallocated },
      ),
    );
  }
  // The model is a frozen copy: the documents' data stays the caller's to change.
  const part = <K extends DatastoreKind>(kind: K): Model[K] => {
    const data = documents[kind]?.data;
    return frozenCopy((isRawObject(data) ? data : {}) as Model[K]);
  };
  const model: Model = Object.freeze({
    clusters: part('clusters'),
    users: part('users'),
    containers: part('containers'),
    settings: part('settings'),
  });
  // The kinds' own checks read a model the schemas vouched for, never a broken one.
  if (options.modelChecks !== undefined && allMappings && !problems.some((p) => p.severity === 'error')) {
    problems.push(...options.modelChecks(model));
  }
  const diagnostics = problems.map((problem) => locate(problem, documents[problem.kind]));
  return { model, diagnostics };
}

function locate(problem: DocumentProblem, document: SourceDocument | undefined): Diagnostic {
  const path = jsonPointer(problem.path);
  if (!document) return { severity: problem.severity, path, message: problem.message };
  const { line, column } = document.positionOf(problem.path);
  return { severity: problem.severity, file: document.displayPath, line, column, path, message: problem.message };
}

function ambiguity(kind: DatastoreKind, files: string[], location: DatastoreLocation): Diagnostic {
  const shown = files.map((f) => displayPathOf(f));
  const inStatic = location.staticDir !== undefined && files.some((f) => f.startsWith(`${location.staticDir}/`));
  const inDir = files.some((f) => f.startsWith(`${location.dir}/`));
  const message =
    inStatic && inDir
      ? `${kind} is in both the datastore and the static data dir (${shown.join(', ')}); keep one of them`
      : `two files for ${kind} (${shown.join(', ')}); keep one of them`;
  return { severity: 'error', file: shown[shown.length - 1], line: 1, column: 1, message };
}

async function listDirectory(dir: string): Promise<Set<string>> {
  try {
    const entries = await listNoFollow(dir, '');
    if (entries === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
    return new Set(entries.map((e) => e.name));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new UserError(`cannot read the datastore directory ${dir} (${reason}); point sc at another one with --datastore DIR`);
  }
}

/** Files in kind order (clusters, users, containers, settings), then by line and column. */
function sortDiagnostics(diagnostics: Diagnostic[], fileRank: ReadonlyMap<string, number>): Diagnostic[] {
  const rank = (d: Diagnostic): number => (d.file === undefined ? -1 : (fileRank.get(d.file) ?? DATASTORE_KINDS.length));
  // Every diagnostic leaves here bounded and escaped: a 10 MB key or a name with a newline in it
  // is shown cut and escaped, never in full.
  return diagnostics
    .map((d, i) => ({ d: boundDiagnostic(d), i }))
    .sort((a, b) => rank(a.d) - rank(b.d) || (a.d.line ?? 0) - (b.d.line ?? 0) || (a.d.column ?? 0) - (b.d.column ?? 0) || a.i - b.i)
    .map(({ d }) => d);
}
