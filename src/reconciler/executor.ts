// Runs a Plan: independent actions in parallel (p-queue, --concurrency), each only after what it
// waits for succeeded; failures skip their dependents while unrelated work goes on; transient
// errors are retried with backoff; ready actions of a batching kind go to the host in one call.
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { refString, type ActionType, type HandlerRegistry, type ObjectRef, type PlannedAction, type ResourceHandler } from '../resources/contract.js';
import type { Plan } from './planner.js';

export interface ApplyEvent {
  /** `skipped` is also sent for conflicts (`action.type === 'conflict'`), which never run. */
  readonly type: 'start' | 'done' | 'failed' | 'skipped' | 'retry';
  readonly action: PlannedAction;
  readonly error?: Error;
  /** For `retry`: the number of the attempt about to be made (2 for the first retry). */
  readonly attempt?: number;
  readonly durationMs?: number;
}

export interface ApplyOptions {
  readonly handlers: HandlerRegistry;
  readonly drivers: Drivers;
  readonly host: HostContext;
  /** At most this many host calls (single actions or batches) at once. */
  readonly concurrency: number;
  onEvent?(event: ApplyEvent): void;
  /** Attempts per action for errors marked `retryable` (default 3, backoff 250 ms doubling). */
  readonly retry?: { readonly attempts: number; readonly baseDelayMs: number };
  /** Aborting stops starting new actions; running ones finish. */
  readonly signal?: AbortSignal;
  /**
   * Called once, as soon as a batch that completes the plan returns with every one of its actions
   * done and nothing else left to run: nothing of this plan changes the host after it (the check
   * that follows an apply can start reading the host while thousands of outcomes are reported).
   * Not after a single action: its outcome is reported at once, and what it started (a machine)
   * may still be settling.
   */
  onLastHostCall?(): void;
}

export type ApplyStatus = 'ok' | 'failed' | 'skipped' | 'conflict';

export interface ApplyResult {
  readonly ref: ObjectRef;
  readonly type: ActionType;
  readonly status: ApplyStatus;
  readonly error?: string;
  readonly attempts: number;
  readonly durationMs: number;
}

export interface ApplyReport {
  /** One per plan action, in plan order. */
  readonly results: ApplyResult[];
  readonly ok: number;
  readonly failed: number;
  readonly skipped: number;
  readonly conflicts: number;
  /** Nothing failed, was skipped or is in conflict. */
  readonly converged: boolean;
  readonly durationMs: number;
}

const DEFAULT_RETRY = { attempts: 3, baseDelayMs: 250 };
const BATCHABLE: ReadonlySet<ActionType> = new Set(['create', 'update', 'delete']);

interface ActionNode {
  readonly action: PlannedAction;
  readonly key: string;
  readonly handler: ResourceHandler<unknown>;
  status?: ApplyStatus;
  error?: Error;
  attempts: number;
  startedAt?: number;
  durationMs: number;
  /** A replace whose delete half already succeeded retries only its create. */
  replaceDeleted: boolean;
  /** How many actions of the plan lie before this one on its longest chain of waits (0: waits for none). */
  depth: number;
}

/** Actions sharing one `after` list (all deletes of a kind) wait together. */
interface WaitGroup {
  remaining: number;
  released: boolean;
  readonly members: ActionNode[];
  readonly depth: number;
}

export async function executePlan(plan: Plan, options: ApplyOptions): Promise<ApplyReport> {
  const started = performance.now();
  const run = new PlanRun(plan, options);
  await run.finished;
  const results = run.nodes.map((n): ApplyResult => ({
    ref: n.action.ref,
    type: n.action.type,
    status: n.status ?? 'skipped',
    ...(n.error ? { error: n.error.message } : {}),
    attempts: n.attempts,
    durationMs: Math.round(n.durationMs),
  }));
  const count = (status: ApplyStatus): number => results.filter((r) => r.status === status).length;
  const report: ApplyReport = {
    results,
    ok: count('ok'),
    failed: count('failed'),
    skipped: count('skipped'),
    conflicts: count('conflict'),
    converged: results.every((r) => r.status === 'ok'),
    durationMs: Math.round(performance.now() - started),
  };
  if (run.listenerError) throw run.listenerError;
  return report;
}

class PlanRun {
  readonly nodes: ActionNode[];
  readonly finished: Promise<void>;
  listenerError: unknown;
  private readonly byKey = new Map<string, ActionNode>();
  private readonly dependents = new Map<string, WaitGroup[]>();
  private readonly groups: WaitGroup[] = [];
  private readonly queue: PQueue;
  private readonly pools = new Map<string, ActionNode[]>();
  private readonly retry: { attempts: number; baseDelayMs: number };
  private resolved = 0;
  private finish!: () => void;

  constructor(
    plan: Plan,
    private readonly options: ApplyOptions,
  ) {
    this.finished = new Promise((resolve) => (this.finish = resolve));
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.queue = new PQueue({ concurrency: Math.max(1, Math.floor(options.concurrency) || 1) });
    this.nodes = plan.actions.map((action) => {
      const handler = options.handlers[action.ref.kind];
      if (!handler) throw new ScError(`no resource handler for kind "${action.ref.kind}"`);
      const node: ActionNode = { action, key: refString(action.ref), handler, attempts: 0, durationMs: 0, replaceDeleted: false, depth: 0 };
      this.byKey.set(node.key, node);
      return node;
    });
    this.linkWaits();
    this.queue.on('idle', () => setImmediate(() => this.skipStalled()));

    for (const node of this.nodes) {
      if (node.action.type === 'conflict') this.settle(node, 'conflict', new ConflictError(node.action.message ?? 'a foreign object is in the way'));
    }
    for (const group of this.groups) if (!group.released && group.remaining === 0) this.release(group);
    if (this.resolved === this.nodes.length) this.finish();
    else setImmediate(() => this.skipStalled());
  }

  private linkWaits(): void {
    const byList = new Map<readonly ObjectRef[], WaitGroup>();
    // The plan lists what an action waits for before it, so the depth of a wait is known when needed.
    for (const node of this.nodes) {
      let group = byList.get(node.action.after);
      if (!group) {
        const deps = new Set(node.action.after.map(refString).filter((key) => this.byKey.has(key)));
        let depth = 0;
        for (const dep of deps) depth = Math.max(depth, (this.byKey.get(dep) as ActionNode).depth + 1);
        group = { remaining: deps.size, released: false, members: [], depth };
        for (const dep of deps) {
          const list = this.dependents.get(dep) ?? [];
          list.push(group);
          this.dependents.set(dep, list);
        }
        byList.set(node.action.after, group);
        this.groups.push(group);
      }
      node.depth = group.depth;
      group.members.push(node);
    }
  }

  private emit(event: ApplyEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      // A broken listener must not leave actions unsettled; report it once everything ended.
      this.listenerError ??= error;
    }
  }

  /** Records an outcome and wakes (or skips) whatever waited for it; iterative, chains can be long. */
  private settle(first: ActionNode, status: ApplyStatus, error?: Error): void {
    const work: [ActionNode, ApplyStatus, Error | undefined][] = [[first, status, error]];
    while (work.length) {
      const [node, outcome, cause] = work.pop() as [ActionNode, ApplyStatus, Error | undefined];
      if (node.status) continue;
      node.status = outcome;
      if (cause) node.error = cause;
      if (node.startedAt !== undefined) node.durationMs = performance.now() - node.startedAt;
      this.resolved++;
      const type = outcome === 'ok' ? 'done' : outcome === 'failed' ? 'failed' : 'skipped';
      this.emit({
        type,
        action: node.action,
        ...(cause ? { error: cause } : {}),
        ...(node.startedAt !== undefined ? { durationMs: node.durationMs } : {}),
      });

      for (const group of this.dependents.get(node.key) ?? []) {
        if (group.released) continue;
        group.remaining--;
        if (outcome !== 'ok') {
          group.released = true;
          const reason = new Error(
            `dependency ${node.key} ${outcome === 'conflict' ? 'is in conflict' : outcome === 'failed' ? 'failed' : 'was skipped'}`,
          );
          for (const member of group.members) work.push([member, 'skipped', reason]);
        } else if (group.remaining === 0) {
          this.release(group);
        }
      }
    }
    if (this.resolved === this.nodes.length) this.finish();
  }

  private release(group: WaitGroup): void {
    group.released = true;
    for (const node of group.members) if (!node.status) this.ready(node);
  }

  private ready(node: ActionNode): void {
    if (this.options.signal?.aborted) return this.settle(node, 'skipped', new Error('apply was interrupted before this action started'));
    const kind = node.action.ref.kind;
    if (node.handler.applyBatch && BATCHABLE.has(node.action.type)) {
      const pool = this.pools.get(kind);
      if (pool) return void pool.push(node);
      this.pools.set(kind, [node]);
      return this.enqueue(() => this.drainPool(kind), node.depth);
    }
    this.enqueue(() => this.runAlone(node), node.depth);
  }

  /**
   * Deeper actions first among those ready: the machine of a container whose files are written
   * starts before the files of the next container are copied, so the first containers come up
   * (and their waits overlap the remaining copies) instead of every start queueing behind every copy.
   */
  private enqueue(task: () => Promise<void>, depth: number): void {
    void this.queue.add(task, { priority: depth });
  }

  /** Everything of this kind that became ready in the same turn goes to the host as one batch. */
  private async drainPool(kind: string): Promise<void> {
    // p-queue may start this task synchronously, while the loop that readies more is still running.
    await Promise.resolve();
    const pool = this.pools.get(kind) ?? [];
    this.pools.delete(kind);
    if (pool.length === 1) return this.runAlone(pool[0] as ActionNode);
    const batch: ActionNode[] = [];
    for (const node of pool) {
      if (this.options.signal?.aborted) this.settle(node, 'skipped', new Error('apply was interrupted before this action started'));
      else if (this.begin(node)) batch.push(node);
    }
    if (batch.length === 0) return;
    const handler = (batch[0] as ActionNode).handler;

    let failed: ReadonlySet<string>;
    let batchError: Error | undefined;
    try {
      for (const node of batch) node.attempts++;
      const outcome = await (handler.applyBatch as NonNullable<typeof handler.applyBatch>)(
        this.options.drivers,
        this.options.host,
        batch.map((n) => n.action),
      );
      failed = outcome.failed;
    } catch (error) {
      batchError = asError(error);
      failed = new Set(batch.map((n) => n.key));
    }
    if (failed.size === 0) this.lastCallReturned(batch.length);
    const retryAlone: ActionNode[] = [];
    for (const node of batch) {
      if (failed.has(node.key)) retryAlone.push(node);
      else this.settle(node, 'ok');
    }
    for (const node of retryAlone) {
      const error = batchError ?? new Error(`${node.key} failed in a batch`);
      this.emit({ type: 'retry', action: node.action, error, attempt: node.attempts + 1 });
      this.enqueue(() => this.finishAlone(node), node.depth);
    }
  }

  private async runAlone(node: ActionNode): Promise<void> {
    if (this.options.signal?.aborted) return this.settle(node, 'skipped', new Error('apply was interrupted before this action started'));
    if (!this.begin(node)) return;
    await this.finishAlone(node);
  }

  /** Marks the start; refuses (fails) an action that would touch an object sc does not own. */
  private begin(node: ActionNode): boolean {
    node.startedAt = performance.now();
    this.emit({ type: 'start', action: node.action });
    const { type, have } = node.action;
    if ((type === 'update' || type === 'replace' || type === 'delete') && have?.owned !== true) {
      this.settle(node, 'failed', new ConflictError(`refusing to ${type} ${node.key}: it was not created by sc`));
      return false;
    }
    return true;
  }

  private async finishAlone(node: ActionNode): Promise<void> {
    for (let tries = 1; ; tries++) {
      node.attempts++;
      try {
        await this.perform(node);
        return this.settle(node, 'ok');
      } catch (raw) {
        const error = asError(raw);
        if (tries >= this.retry.attempts || !isRetryable(error) || this.options.signal?.aborted) return this.settle(node, 'failed', error);
        this.emit({ type: 'retry', action: node.action, error, attempt: node.attempts + 1 });
        try {
          await sleep(this.retry.baseDelayMs * 2 ** (tries - 1), undefined, { signal: this.options.signal });
        } catch {
          return this.settle(node, 'failed', error);
        }
      }
    }
  }

  private async perform(node: ActionNode): Promise<void> {
    const { drivers, host } = this.options;
    const { action, handler } = node;
    const { want, have } = action;
    switch (action.type) {
      case 'create':
        return handler.create(drivers, host, required(want, node));
      case 'update':
        if (!handler.update) throw new ScError(`the ${action.ref.kind} handler cannot update in place`);
        return handler.update(drivers, host, required(want, node), required(have, node), action.patch);
      case 'replace':
        if (!node.replaceDeleted) {
          await handler.delete(drivers, host, required(have, node));
          node.replaceDeleted = true;
        }
        return handler.create(drivers, host, required(want, node));
      case 'delete':
        return handler.delete(drivers, host, required(have, node));
      default:
        throw new ScError(`${node.key}: a ${action.type} action is never executed`);
    }
  }

  /** A batch of `succeeded` actions just succeeded: was it the plan's last host call? */
  private lastCallReturned(succeeded: number): void {
    if (this.resolved + succeeded !== this.nodes.length || !this.options.onLastHostCall) return;
    try {
      this.options.onLastHostCall();
    } catch (error) {
      this.listenerError ??= error;
    }
  }

  /** Safety net for a plan with a cycle the planner missed: whatever can never start is skipped. */
  private skipStalled(): void {
    if (this.resolved === this.nodes.length || this.queue.size > 0 || this.queue.pending > 0 || this.pools.size > 0) return;
    for (const node of this.nodes) {
      if (!node.status) this.settle(node, 'skipped', new Error('waits for an action that can never run (dependency cycle)'));
    }
  }
}

function required<T>(value: T | undefined, node: ActionNode): T {
  if (value === undefined) throw new ScError(`${node.key}: the ${node.action.type} action lacks its object`);
  return value;
}

function isRetryable(error: Error): boolean {
  return error instanceof ScError ? error.retryable : (error as { retryable?: unknown }).retryable === true;
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
