// Size limits on desired-state input (issue 13): defaults a hosting admin never hits (a farm of
// 100,000 containers is a ~30 MB JSON file), far below what would exhaust a host. Fixed, not read
// from the datastore: a hostile commit must not be able to raise the limits it is checked against.
// README "Security model" lists them.

const MiB = 1024 * 1024;

export const LIMITS = {
  /** One JSON datastore file (clusters, users, containers, settings). */
  jsonFileBytes: 64 * MiB,
  /** One YAML datastore file: the YAML parser needs ~20× the text in memory, JSON.parse far less. */
  yamlFileBytes: 16 * MiB,
  /** All datastore files of one load together. */
  datastoreBytes: 128 * MiB,
  /** Nesting of objects/arrays in one file (the datastore's own shape is 4 deep). */
  depth: 64,
  /** One string (a value or a key): the longest real one is an SSH key or a certificate, a few KiB. */
  stringLength: 64 * 1024,
  /** A git source's revision: total size of the files of its tree (`git ls-tree -r -l`). */
  sourceTreeBytes: 256 * MiB,
  /** A git source's revision: number of entries in its tree. */
  sourceTreeEntries: 100_000,
  /** The source cache's object store after a fetch (`git count-objects -v`: size + size-pack). */
  sourceRepositoryBytes: 1024 * MiB,
} as const;

export const fileLimitFor = (path: string): number => (/\.json$/i.test(path) ? LIMITS.jsonFileBytes : LIMITS.yamlFileBytes);

/** Deepest nesting of plain data (objects, arrays), counted without recursion; stops past `stopAt`. */
export function dataDepth(value: unknown, stopAt = Number.MAX_SAFE_INTEGER): number {
  let max = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length) {
    const top = stack.pop() as { value: unknown; depth: number };
    if (top.value === null || typeof top.value !== 'object') continue;
    const depth = top.depth + 1;
    if (depth > max) max = depth;
    if (max > stopAt) return max;
    for (const child of Array.isArray(top.value) ? top.value : Object.values(top.value)) {
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth });
    }
  }
  return max;
}

/** Paths (and lengths) of strings and keys longer than `limit`, at most `max` of them; no recursion. */
export function longStrings(value: unknown, limit: number, max = 20): { path: (string | number)[]; length: number }[] {
  // Paths are built only for a value that has such a string: building one for every value made
  // most of the garbage of loading a big datastore.
  if (!hasLongString(value, limit)) return [];
  const found: { path: (string | number)[]; length: number }[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length && found.length < max) {
    const top = stack.pop() as { value: unknown; path: (string | number)[] };
    if (typeof top.value === 'string') {
      if (top.value.length > limit) found.push({ path: top.path, length: top.value.length });
    } else if (Array.isArray(top.value)) {
      top.value.forEach((v, i) => stack.push({ value: v, path: [...top.path, i] }));
    } else if (top.value !== null && typeof top.value === 'object') {
      for (const [k, v] of Object.entries(top.value)) {
        if (k.length > limit) found.push({ path: [...top.path, k], length: k.length });
        else stack.push({ value: v, path: [...top.path, k] });
      }
    }
  }
  return found;
}

/** Whether any string or key in `value` is longer than `limit`; no recursion, no paths. */
function hasLongString(value: unknown, limit: number): boolean {
  const stack: unknown[] = [value];
  while (stack.length) {
    const top = stack.pop();
    if (typeof top === 'string') {
      if (top.length > limit) return true;
    } else if (Array.isArray(top)) {
      for (const v of top as unknown[]) if (typeof v === 'object' || typeof v === 'string') stack.push(v);
    } else if (top !== null && typeof top === 'object') {
      const record = top as Record<string, unknown>;
      for (const k of Object.keys(record)) {
        if (k.length > limit) return true;
        const v = record[k];
        if (typeof v === 'object' || typeof v === 'string') stack.push(v);
      }
    }
  }
  return false;
}
