// The resource-handler contract: what every kind (bridge, container, port-map, …) implements.
// Handlers derive desired objects (pure), observe real ones in one bulk pass, and act; the
// generic planner and executor in src/reconciler/ do the rest. Handlers never print or parse CLI.
//
// How to add a kind (the reverse proxy, SSH access and certificates were added this way):
//   1. One file src/resources/KIND.ts exporting `KINDHandler = { kind: 'KIND', … } satisfies
//      ResourceHandler<Spec>`: `desired(model, host)` pure; `observe(drivers, host, { model,
//      desired })` reads everything of the kind in one bulk pass (owned and foreign, with `owned`
//      telling them apart); `normalize` keeps only the fields sc owns; `create`/`update`/`delete`
//      act. Pure logic (renderers, route models) goes in its own small module with unit tests.
//      Input of the kind that can be wrong beyond what the JSON Schema says (an image package
//      that would read as an option, a mapped port that is one of sc's tunnel ports) is found by
//      the optional pure `validate(model)`, not at apply time: its problems (datastore file +
//      JSON path) are shown with file:line by `sc validate`, and diff/apply/reconcile refuse the
//      datastore (exit 1, nothing changed) like the schema's own; warnings only inform.
//   2. One line in src/resources/registry.ts (`dependsOnKinds` orders it after what it needs).
//   3. Its host effects in a driver under src/drivers/ (added to `Drivers` in types.ts and built in
//      create-drivers.ts). A handler never imports node:fs, child_process, execa or git, never
//      builds a driver and never writes the datastore (the PKI publishes through `host.pki`);
//      `npm run lint` (dependency-cruiser, .dependency-cruiser.cjs) fails the build otherwise.
//   4. An integration test that applies it for real in a test namespace and --root, and asserts a
//      second `sc diff` reports no changes.
import type { Operation } from 'fast-json-patch';
import type { DatastoreKind, Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import type { HostContext } from '../host-context.js';

/** `bridge/sc-17-3`: a kind and an id unique within that kind on this host. */
export interface ObjectRef {
  readonly kind: string;
  readonly id: string;
}

export const refString = (r: ObjectRef): string => `${r.kind}/${r.id}`;

export interface DesiredObject<Spec> {
  readonly ref: ObjectRef;
  readonly spec: Spec;
  /** Objects that must exist (and be converged) before this one; deletes run in reverse. */
  readonly dependsOn?: readonly ObjectRef[];
  /** Human context shown by diff/status (e.g. `user alice (reseller alpha)`). */
  readonly description?: string;
}

export interface ObservedObject<Spec> {
  readonly ref: ObjectRef;
  readonly spec: Spec;
  /** Carries sc's mark: only owned objects may be updated or deleted. */
  readonly owned: boolean;
  readonly description?: string;
}

/** One field-level difference, for humans (`~ address: 10.17.3.9/24 → 10.17.3.1/24`). */
export interface FieldChange {
  readonly path: string;
  readonly op: 'add' | 'remove' | 'replace';
  readonly old?: unknown;
  readonly new?: unknown;
}

export type ActionType = 'create' | 'update' | 'replace' | 'delete' | 'conflict' | 'noop';

export interface PlannedAction<Spec = unknown> {
  readonly type: ActionType;
  readonly ref: ObjectRef;
  readonly want?: DesiredObject<Spec>;
  readonly have?: ObservedObject<Spec>;
  /** The JSON patch from observed to desired (normalised views). */
  readonly patch: readonly Operation[];
  /** Field-level reasons (update/replace), or one explanatory line (create/delete/conflict). */
  readonly reasons: readonly FieldChange[];
  readonly message?: string;
  /** Refs this action waits for (creates/updates: dependencies; deletes: dependents). */
  readonly after: readonly ObjectRef[];
}

/** What observe() knows of the pass: the model and the desired objects of the handler's kind. */
export interface ObserveContext<Spec> {
  readonly model: Model;
  readonly desired: readonly DesiredObject<Spec>[];
}

/** A problem a kind finds in the model: where (the datastore file of `document`, the JSON path in it) and what. */
export interface ModelProblem {
  readonly severity: 'error' | 'warning';
  readonly document: DatastoreKind;
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export interface ResourceHandler<Spec> {
  readonly kind: string;
  /**
   * Optional: the kind's own checks of a model the schemas and cross-checks accepted (pure, for
   * every host at once). Errors make the datastore invalid: `sc validate` lists them with
   * file:line, and diff/apply/reconcile stop before anything changes.
   */
  validate?(model: Model): ModelProblem[];
  /**
   * Kinds whose objects this kind's objects may rely on (a container on its bridge). The planner
   * orders deletes by it even when nothing of this kind is desired any more, which per-object
   * `dependsOn` cannot tell it.
   */
  readonly dependsOnKinds?: readonly string[];
  /** Desired objects of this kind for this host. Pure: no I/O. */
  desired(model: Model, host: HostContext): DesiredObject<Spec>[];
  /**
   * Every real object of this kind on the host (owned or foreign), in one bulk pass. `context`
   * says what the pass wants (the model and this kind's desired objects), so a handler never
   * keeps state between desired() and observe().
   */
  observe(drivers: Drivers, host: HostContext, context: ObserveContext<Spec>): Promise<ObservedObject<Spec>[]>;
  /** The comparable view of a spec: only the fields sc owns, in canonical form. */
  normalize?(spec: Spec): unknown;
  /**
   * A foreign object that is in the way of `want` (same name, or e.g. the same address on
   * another link). Returns a message when there is a conflict.
   */
  conflict?(want: DesiredObject<Spec>, observed: readonly ObservedObject<Spec>[]): string | undefined;
  /** Whether `update` can apply this patch in place; otherwise the planner plans a replace. */
  canUpdate?(patch: readonly Operation[], want: Spec, have: Spec): boolean;
  create(drivers: Drivers, host: HostContext, want: DesiredObject<Spec>): Promise<void>;
  update?(drivers: Drivers, host: HostContext, want: DesiredObject<Spec>, have: ObservedObject<Spec>, patch: readonly Operation[]): Promise<void>;
  delete(drivers: Drivers, host: HostContext, have: ObservedObject<Spec>): Promise<void>;
  /**
   * Optional: apply several ready actions of this kind in one host call (e.g. one `ip -batch`).
   * Returns the refs that failed with their errors; the executor falls back to the single-object
   * methods for those so each gets its own error.
   */
  applyBatch?(drivers: Drivers, host: HostContext, actions: readonly PlannedAction<Spec>[]): Promise<BatchOutcome>;
}

export interface BatchOutcome {
  /** Refs (refString) that did not apply; the executor retries them one by one. */
  readonly failed: ReadonlySet<string>;
}

/** The registry type: a plain map from kind to handler (no import side effects). */
export type HandlerRegistry = Readonly<Record<string, ResourceHandler<unknown>>>;
