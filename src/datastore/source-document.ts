// One datastore file, parsed with source positions so that every problem can name file:line:col.
// JSON is parsed by JSON.parse; YAML by the yaml package, which is loaded only when a YAML file is read.
import { basename, dirname, extname, relative, resolve } from 'node:path';
import type { Document, LineCounter } from 'yaml';
import { FileTooLargeError, readTextNoFollow, UnsafePathError } from '../drivers/no-follow-fs.js';
import { boundText, UserError, type Diagnostic } from '../errors.js';
import { findJsonSyntaxProblem, jsonPathOffsets, jsonTextShape, memberCount } from './json-syntax.js';
import { dataDepth, fileLimitFor, LIMITS } from './limits.js';
import type { DatastoreKind } from './model.js';
import { loadYaml, yamlPackage } from './yaml-module.js';

export type DocumentPath = readonly (string | number)[];

export interface SourcePosition {
  line: number;
  column: number;
}

export interface SourceDocument {
  kind: DatastoreKind;
  /** Absolute path. */
  path: string;
  /** As shown in messages: relative to the working directory when that is shorter. */
  displayPath: string;
  format: 'json' | 'yaml';
  text: string;
  document: Document.Parsed;
  lineCounter: LineCounter;
  /** The plain data (an empty YAML file reads as `{}`). */
  data: unknown;
  /** Parser warnings (never fatal). */
  warnings: Diagnostic[];
  /**
   * No string or key in `data` is longer than this (JSON: the longest as written in the text, found
   * by the scan that counts its keys); undefined when not known (YAML: the data must be searched).
   */
  readonly longestString?: number;
  /** 1-based line/column of the node at `path`; a key path points at the key. Falls back to the nearest existing parent. */
  positionOf(path: DocumentPath): SourcePosition;
}

/**
 * Reads and parses one file; syntax errors → UserError whose diagnostics carry file:line:col. The
 * file is opened without following a link (a symlink, FIFO or device is refused, naming the file).
 */
export async function readSourceDocument(path: string, kind: DatastoreKind, options: { maxBytes?: number } = {}): Promise<SourceDocument> {
  const absolute = resolve(path);
  const file = displayPathOf(absolute);
  let text: string | undefined;
  try {
    text = await readTextNoFollow(dirname(absolute), basename(absolute), {
      maxBytes: Math.min(options.maxBytes ?? Infinity, fileLimitFor(absolute)),
    });
  } catch (error) {
    if (error instanceof FileTooLargeError) {
      const which =
        error.limit < fileLimitFor(absolute)
          ? 'the rest of the datastore size limit'
          : `the ${extname(absolute).slice(1).toUpperCase()} file size limit`;
      throw new UserError(`${file} is too large`, [
        { severity: 'error', file, message: `the file is ${error.size} bytes, over ${which} (${error.limit} bytes); sc refuses it` },
      ]);
    }
    if (error instanceof UnsafePathError) {
      const what = error.message.startsWith(`${absolute} `) ? `the file ${error.message.slice(absolute.length + 1)}` : error.message;
      throw new UserError(`${file}: refused`, [
        { severity: 'error', file, message: `refused: ${what} (sc never follows links or opens special files in a datastore)` },
      ]);
    }
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UserError(`cannot read ${file}`, [{ severity: 'error', file, message: `cannot read the file (${reason})` }]);
  }
  if (text === undefined) throw new UserError(`cannot read ${file}`, [{ severity: 'error', file, message: 'cannot read the file (ENOENT)' }]);
  if (!isJsonPath(absolute)) await loadYaml();
  return sourceDocumentFromText(kind, absolute, text);
}

/**
 * Parses in-memory text as if it were the file at `path` (format from the extension; YAML unless
 * `.json`). YAML text, and a JSON document's `document`/`lineCounter`, need loadYaml() first.
 */
export function sourceDocumentFromText(kind: DatastoreKind, path: string, text: string): SourceDocument {
  const absolute = resolve(path);
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return isJsonPath(absolute) ? parseJsonSource(kind, absolute, source) : parseYamlSource(kind, absolute, source);
}

function isJsonPath(path: string): boolean {
  return extname(path).toLowerCase() === '.json';
}

export function displayPathOf(absolute: string): string {
  const rel = relative(process.cwd(), absolute);
  return rel !== '' && rel.length < absolute.length ? rel : absolute;
}

/** RFC 6901 pointer for a path: `/shop.example.com/mapped_ports/0`. */
export function jsonPointer(path: DocumentPath): string {
  return path.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

class ParsedSource implements SourceDocument {
  readonly displayPath: string;
  readonly warnings: Diagnostic[] = [];
  longestString?: number;
  private parsed?: { document: Document.Parsed; lineCounter: LineCounter };

  constructor(
    readonly kind: DatastoreKind,
    readonly path: string,
    readonly format: 'json' | 'yaml',
    readonly text: string,
    readonly data: unknown,
    parsed?: { document: Document.Parsed; lineCounter: LineCounter },
  ) {
    this.displayPath = displayPathOf(path);
    this.parsed = parsed;
  }

  // JSON is parsed by JSON.parse, ~50× faster than the yaml parser on large files; the yaml
  // document (for positions and comment-keeping edits) is built only when someone asks for it.
  private ensureParsed(): { document: Document.Parsed; lineCounter: LineCounter } {
    this.parsed ??= parseWithPositions(this.text);
    return this.parsed;
  }

  get document(): Document.Parsed {
    return this.ensureParsed().document;
  }

  get lineCounter(): LineCounter {
    return this.ensureParsed().lineCounter;
  }

  positionOf(path: DocumentPath): SourcePosition {
    if (this.format === 'json' && this.parsed === undefined) return this.jsonPositionOf(path);
    const { document, lineCounter } = this.ensureParsed();
    const { line, col } = lineCounter.linePos(offsetOf(document, path));
    return { line, column: col };
  }

  // JSON positions from one scan of the text (jsonPathOffsets) and a table of line starts: no
  // YAML document is built just to say where a problem is.
  private jsonIndex?: { offsets: Map<string, number>; lineStarts: number[] };

  private jsonPositionOf(path: DocumentPath): SourcePosition {
    if (this.jsonIndex === undefined) {
      const lineStarts = [0];
      for (let i = this.text.indexOf('\n'); i !== -1; i = this.text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
      this.jsonIndex = { offsets: jsonPathOffsets(this.text), lineStarts };
    }
    const { offsets, lineStarts } = this.jsonIndex;
    let offset = 0;
    for (let k = path.length; k >= 0; k--) {
      const found = offsets.get(jsonPointer(path.slice(0, k)));
      if (found !== undefined) {
        offset = found;
        break;
      }
    }
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - (lineStarts[lo] as number) + 1 };
  }
}

function parseWithPositions(text: string): { document: Document.Parsed; lineCounter: LineCounter } {
  const { LineCounter, parseDocument } = yamlPackage();
  const lineCounter = new LineCounter();
  // logLevel 'error': the library would print its warnings to the process's stderr. uniqueKeys off:
  // the library's own check compares every key with every other key of its map (100,000 containers
  // take minutes); duplicateYamlKeys does it with a set per map.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, logLevel: 'error' });
  return { document, lineCounter };
}

/** Offsets of keys that repeat an earlier key of the same map (scalar keys compared by value, as the library would). */
function duplicateYamlKeys(document: Document.Parsed): number[] {
  const { isScalar, visit } = yamlPackage();
  const found: number[] = [];
  visit(document, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const value = pair.key.value;
        if (seen.has(value)) found.push(rangeStart(pair.key) ?? 0);
        else seen.add(value);
      }
    },
  });
  return found;
}

function parseYamlSource(kind: DatastoreKind, path: string, text: string): SourceDocument {
  const parsed = parseWithPositions(text);
  const { document, lineCounter } = parsed;
  const file = displayPathOf(path);
  const at = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  // The parser often reports one mistake several times at one spot; the first report per line is the useful one.
  const errors: Diagnostic[] = [];
  for (const e of document.errors) {
    const where = at(e.pos[0]);
    if (errors.some((d) => d.line === where.line)) continue;
    const message =
      e.code === 'MULTIPLE_DOCS'
        ? 'a datastore file holds one YAML document: remove the "---" line'
        : /call stack size/i.test(e.message)
          ? `nesting deeper than ${LIMITS.depth} levels; sc refuses it`
          : yamlMessage(e.message);
    errors.push({ severity: 'error', file, ...where, message: `YAML syntax: ${message}` });
  }
  if (!errors.length) {
    for (const offset of duplicateYamlKeys(document))
      errors.push({ severity: 'error', file, ...at(offset), message: 'YAML syntax: Map keys must be unique' });
  }
  let data: unknown = {};
  if (!errors.length && document.contents !== null) {
    try {
      // A small alias budget stops "billion laughs" expansion of a hostile file.
      data = document.toJS({ maxAliasCount: 1000 });
      if (dataDepth(data, LIMITS.depth) > LIMITS.depth) {
        errors.push({ severity: 'error', file, line: 1, column: 1, message: `YAML: nesting deeper than ${LIMITS.depth} levels; sc refuses it` });
      }
    } catch (error) {
      errors.push({ severity: 'error', file, line: 1, column: 1, message: `YAML: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  if (errors.length) throw new UserError(`${file} is not valid YAML`, errors);
  const source = new ParsedSource(kind, path, 'yaml', text, data, parsed);
  for (const w of document.warnings) {
    source.warnings.push({ severity: 'warning', file, ...at(w.pos[0]), message: `YAML: ${yamlMessage(w.message)}` });
  }
  return source;
}

function parseJsonSource(kind: DatastoreKind, path: string, text: string): SourceDocument {
  const file = displayPathOf(path);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UserError(`${file} is not valid JSON`, [jsonSyntaxDiagnostic(file, text)]);
  }
  const shape = jsonTextShape(text);
  if (shape.depth > LIMITS.depth) {
    const where = findJsonSyntaxProblem(text, LIMITS.depth)?.offset ?? 0;
    throw new UserError(`${file} nests too deep`, [
      { severity: 'error', file, ...positionAtOffset(text, where), message: `JSON: nesting deeper than ${LIMITS.depth} levels; sc refuses it` },
    ]);
  }
  // JSON.parse silently keeps the last of two equal keys; a datastore must not lose a record that
  // way. Only text whose parsed value has fewer members than the text has keys is searched.
  const duplicates = shape.members === memberCount(data) ? [] : duplicateJsonKeys(text);
  if (duplicates.length) {
    throw new UserError(
      `${file} is not valid JSON`,
      duplicates.map(({ key, path: keyPath, offset }) => ({
        severity: 'error',
        file,
        ...positionAtOffset(text, offset),
        path: jsonPointer(keyPath),
        message: `JSON: duplicate key ${JSON.stringify(key)} in one object (the first would be silently lost)`,
      })),
    );
  }
  const source = new ParsedSource(kind, path, 'json', text, data);
  source.longestString = shape.longestString;
  return source;
}

/** The parser's message without its source excerpt (first line only, bounded). */
function yamlMessage(message: string): string {
  const text =
    message
      .replace(/ at line \d+, column \d+.*$/s, '')
      .split('\n')[0]
      ?.trim() ?? '';
  return boundText(text, 160);
}

function jsonSyntaxDiagnostic(file: string, text: string): Diagnostic {
  if (text.trim() === '') {
    return { severity: 'error', file, line: 1, column: 1, message: 'JSON syntax: the file is empty (an empty datastore file holds {})' };
  }
  // JSON.parse's own message quotes the text around the mistake (and carries no position on Node
  // 20): the scanner finds the spot and names only the offending character.
  const problem = findJsonSyntaxProblem(text) ?? { offset: text.length, message: 'not valid JSON' };
  return { severity: 'error', file, ...positionAtOffset(text, problem.offset), message: `JSON syntax: ${problem.message}` };
}

function positionAtOffset(text: string, offset: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/** Keys that occur twice in one object of (already well-formed) JSON text, with their paths and offsets. */
function duplicateJsonKeys(text: string): { key: string; path: string[]; offset: number }[] {
  const found: { key: string; path: string[]; offset: number }[] = [];
  // One frame per open object (its keys so far, the current key) or array (the current index).
  const frames: { keys?: Set<string>; at: string | number }[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) break;
      i = end + 1;
      while (i < text.length && isJsonWhitespace(text.charCodeAt(i))) i += 1;
      const frame = frames[frames.length - 1];
      if (text[i] === ':' && frame?.keys) {
        const raw = text.slice(start, end + 1);
        const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (frame.keys.has(key)) found.push({ key, path: [...frames.slice(0, -1).map((f) => String(f.at)), key], offset: start });
        else frame.keys.add(key);
        frame.at = key;
      }
      continue;
    }
    if (ch === 0x7b /* { */) frames.push({ keys: new Set(), at: '' });
    else if (ch === 0x5b /* [ */) frames.push({ at: 0 });
    else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) frames.pop();
    else if (ch === 0x2c /* , */) {
      const frame = frames[frames.length - 1];
      if (frame && !frame.keys && typeof frame.at === 'number') frame.at += 1;
    }
    i += 1;
  }
  return found;
}

/** Whether the quote at `index` is escaped: preceded by an odd number of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let backslashes = 0;
  for (let j = index - 1; j >= 0 && text.charCodeAt(j) === 0x5c; j--) backslashes += 1;
  return backslashes % 2 === 1;
}

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Offset of the node at `path` (the key for a map entry), or of the nearest existing parent. */
function offsetOf(document: Document.Parsed, path: DocumentPath): number {
  const { isAlias, isMap, isScalar, isSeq } = yamlPackage();
  let node: unknown = document.contents;
  let offset = rangeStart(node) ?? 0;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(document);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      offset = rangeStart(pair.key) ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = typeof segment === 'number' ? segment : /^\d+$/.test(segment) ? Number(segment) : -1;
      const item: unknown = node.items[index];
      if (item === undefined) break;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: readonly number[] | null }).range;
    return range?.[0];
  }
  return undefined;
}
