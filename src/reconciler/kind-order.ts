// Which kinds rely on which (a container on its bridge): from the handlers' static
// `dependsOnKinds` and the kinds desired objects point at. Orders deletes, which per-object
// dependencies cannot (an observed object does not say what it relied on), and plan listings.
import type { DesiredObject, HandlerRegistry } from '../resources/contract.js';

export interface KindOrder {
  /** Every kind, those depended on first (bridge before container); ties alphabetical. */
  readonly kinds: readonly string[];
  /** Position of a kind in `kinds`. */
  rank(kind: string): number;
  /**
   * Kinds whose objects may rely, directly or through others, on objects of `kind`. Kinds on a
   * cycle with `kind` are left out: neither can wait for the other's deletes without deadlock.
   */
  dependentsOf(kind: string): readonly string[];
}

export function kindOrder(handlers: HandlerRegistry, desired: ReadonlyMap<string, readonly DesiredObject<unknown>[]>): KindOrder {
  const kinds = new Set<string>([...Object.keys(handlers), ...desired.keys()]);
  const direct = new Map<string, Set<string>>();
  for (const kind of kinds) direct.set(kind, new Set(handlers[kind]?.dependsOnKinds ?? []));
  for (const [kind, objects] of desired) {
    for (const obj of objects) for (const dep of obj.dependsOn ?? []) direct.get(kind)?.add(dep.kind);
  }
  for (const kind of kinds) direct.get(kind)?.delete(kind);

  // Transitive closure; the kind graph has a handful of nodes, so plain DFS per kind is fine.
  const reach = new Map<string, Set<string>>();
  for (const kind of kinds) {
    const seen = new Set<string>();
    const stack = [...(direct.get(kind) ?? [])];
    while (stack.length) {
      const next = stack.pop() as string;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(direct.get(next) ?? []));
    }
    reach.set(kind, seen);
  }
  const dependsOn = (a: string, b: string): boolean => a !== b && (reach.get(a)?.has(b) ?? false) && !(reach.get(b)?.has(a) ?? false);

  const depth = new Map<string, number>();
  const depthOf = (kind: string): number => {
    const known = depth.get(kind);
    if (known !== undefined) return known;
    let d = 0;
    for (const other of reach.get(kind) ?? []) if (dependsOn(kind, other)) d = Math.max(d, depthOf(other) + 1);
    depth.set(kind, d);
    return d;
  };
  const ordered = [...kinds].sort((a, b) => depthOf(a) - depthOf(b) || (a < b ? -1 : a > b ? 1 : 0));
  const ranks = new Map(ordered.map((kind, i) => [kind, i]));
  const dependents = new Map<string, string[]>();
  for (const kind of ordered)
    dependents.set(
      kind,
      ordered.filter((other) => dependsOn(other, kind)),
    );

  return {
    kinds: ordered,
    rank: (kind) => ranks.get(kind) ?? ordered.length,
    dependentsOf: (kind) => dependents.get(kind) ?? [],
  };
}
