// One datastore file being edited. YAML: changes go into a copy of the parsed document and only
// the lines they touch are rewritten, so comments and layout stay. JSON: edited as plain data and
// re-serialized (2-space indent, trailing newline, key order kept) — no yaml parse of big JSON.
import type { Document } from 'yaml';
import type { DatastoreKind } from './model.js';
import type { SourceDocument } from './source-document.js';
import { yamlPackage } from './yaml-module.js';
import { renderYamlEdit } from './yaml-text-merge.js';

export type DocumentPath = readonly (string | number)[];

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

function child(parent: Container, key: string | number): unknown {
  if (Array.isArray(parent)) return typeof key === 'number' ? parent[key] : undefined;
  return Object.hasOwn(parent, String(key)) ? parent[String(key)] : undefined;
}

/** Assignment that cannot reach a prototype, whatever the key. */
function assign(parent: Container, key: string | number, value: unknown): void {
  if (Array.isArray(parent) && typeof key === 'number') parent[key] = value;
  else Object.defineProperty(parent, String(key), { value, enumerable: true, writable: true, configurable: true });
}

/** Edits on plain JSON data. */
class PlainData {
  constructor(public root: unknown) {}

  get(path: DocumentPath): unknown {
    let node = this.root;
    for (const key of path) {
      if (!isContainer(node)) return undefined;
      node = child(node, key);
    }
    return node;
  }

  set(path: DocumentPath, value: unknown): void {
    if (path.length === 0) {
      this.root = value;
      return;
    }
    if (!isContainer(this.root)) this.root = {};
    let node = this.root as Container;
    path.slice(0, -1).forEach((key, i) => {
      let next = child(node, key);
      if (!isContainer(next)) {
        next = typeof path[i + 1] === 'number' ? [] : {};
        assign(node, key, next);
      }
      node = next as Container;
    });
    assign(node, path[path.length - 1] as string | number, value);
  }

  delete(path: DocumentPath): boolean {
    const parent = this.get(path.slice(0, -1));
    const key = path[path.length - 1];
    if (!isContainer(parent) || key === undefined || child(parent, key) === undefined) return false;
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[String(key)];
    return true;
  }
}

export class EditableDocument {
  private changedFlag = false;

  private constructor(
    readonly kind: DatastoreKind,
    /** Absolute path the edited text is written to. */
    readonly path: string,
    readonly format: 'json' | 'yaml',
    private readonly yaml: Document | undefined,
    private readonly json: PlainData | undefined,
    /** The file's text before the edit; undefined for a file the edit creates. */
    readonly originalText: string | undefined,
    /** The YAML document as loaded (not edited): the baseline that keeps untouched lines as written. */
    private readonly loadedYaml?: Document,
  ) {}

  /** An editable copy: the source document itself stays as loaded. */
  static fromSource(source: SourceDocument): EditableDocument {
    return source.format === 'json'
      ? new EditableDocument(source.kind, source.path, 'json', undefined, new PlainData(structuredClone(source.data ?? {})), source.text)
      : new EditableDocument(source.kind, source.path, 'yaml', source.document.clone(), undefined, source.text, source.document);
  }

  /** A file the datastore does not have yet (e.g. the first container of a new datastore). */
  static create(kind: DatastoreKind, path: string, format: 'json' | 'yaml'): EditableDocument {
    return format === 'json'
      ? new EditableDocument(kind, path, format, undefined, new PlainData({}), undefined)
      : new EditableDocument(kind, path, format, new (yamlPackage().Document)({}), undefined, undefined);
  }

  get changed(): boolean {
    return this.changedFlag;
  }

  /** Plain data at `path` (a copy for YAML), or undefined. */
  get(path: DocumentPath): unknown {
    if (this.json) return this.json.get(path);
    const yaml = this.yaml as Document;
    const node: unknown = yaml.getIn(path, true);
    return yamlPackage().isNode(node) ? node.toJS(yaml) : node;
  }

  has(path: DocumentPath): boolean {
    return this.get(path) !== undefined;
  }

  set(path: DocumentPath, value: unknown): void {
    if (this.json) {
      this.json.set(path, structuredClone(value));
    } else {
      const yaml = this.yaml as Document;
      this.unflowEmptyTopLevel(yaml);
      yaml.setIn(path, yaml.createNode(value));
    }
    this.changedFlag = true;
  }

  delete(path: DocumentPath): void {
    const removed = this.json ? this.json.delete(path) : (this.yaml as Document).deleteIn(path);
    if (removed) this.changedFlag = true;
  }

  /** Appends to the sequence at `path`, creating it when absent. */
  append(path: DocumentPath, value: unknown): void {
    if (this.json) {
      const list = this.json.get(path);
      if (Array.isArray(list)) list.push(structuredClone(value));
      else this.json.set(path, [structuredClone(value)]);
      this.changedFlag = true;
      return;
    }
    const yaml = this.yaml as Document;
    const { isMap, isSeq } = yamlPackage();
    const node: unknown = yaml.getIn(path, true);
    if (isSeq(node)) {
      const item = yaml.createNode(value);
      // A list written as one-line `{ … }` items gets one more of the same kind.
      if (isMap(item) && node.items.length > 0 && node.items.every((i) => isMap(i) && i.flow)) item.flow = true;
      node.add(item);
      this.changedFlag = true;
    } else {
      this.set(path, [value]);
    }
  }

  /** The whole document as plain data. */
  toData(): unknown {
    return this.json ? this.json.root : ((this.yaml as Document).toJS() ?? {});
  }

  /** The file text after the edit. */
  render(): string {
    if (this.json) return `${JSON.stringify(this.json.root ?? {}, null, 2)}\n`;
    const yaml = this.yaml as Document;
    if (this.loadedYaml && this.originalText !== undefined) return renderYamlEdit(this.originalText, this.loadedYaml, yaml);
    // lineWidth 0: never fold long scalars such as ssh keys.
    return yaml.toString({ lineWidth: 0 });
  }

  /**
   * An empty top-level `{}` stays flow style and would keep every new entry on one line;
   * a YAML datastore file that gets its first entry becomes a normal block mapping instead.
   */
  private unflowEmptyTopLevel(yaml: Document): void {
    const top = yaml.contents;
    if (yamlPackage().isMap(top) && top.items.length === 0 && top.flow) top.flow = false;
  }
}
