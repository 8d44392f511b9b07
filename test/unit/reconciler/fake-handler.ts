// Test doubles for the reconciler: drivers that record every host call (and can fail or hold
// them), and a kind-agnostic in-memory handler whose "host" is a Map the drivers act on.
import type { Model } from '../../../src/datastore/model.js';
import type { Drivers, ExecResult } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import {
  refString,
  type DesiredObject,
  type ObjectRef,
  type ObservedObject,
  type PlannedAction,
  type ResourceHandler,
} from '../../../src/resources/contract.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';

export type FakeSpec = Record<string, unknown>;

/** Decides whether the n-th call of one command line fails (return the error) or not. */
export type FailureRule = (line: string, attempt: number) => Error | undefined;

export class RecordingDrivers implements Drivers {
  /** Every command line, in call order: `create bridge/a`, `batch bridge/a bridge/b`. */
  readonly log: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly rules: FailureRule[] = [];
  private readonly attempts = new Map<string, number>();
  private hold: Promise<void> | undefined;
  private releaseHold: (() => void) | undefined;

  readonly exec = {
    run: async (command: string, args: readonly string[]): Promise<ExecResult> => {
      const line = [command, ...args].join(' ');
      this.log.push(line);
      const attempt = (this.attempts.get(line) ?? 0) + 1;
      this.attempts.set(line, attempt);
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      try {
        await Promise.resolve();
        if (this.hold) await this.hold;
        const error = this.failure(line, attempt);
        if (error) throw error;
        return { command: [command, ...args], exitCode: 0, stdout: '', stderr: '' };
      } finally {
        this.inFlight--;
      }
    },
  };
  readonly ip = {
    listLinks: async () => [],
    listAddresses: async () => [],
    batch: async () => undefined,
  };
  readonly files = createFilesDriver('/');
  readonly nft = baseDrivers(this.exec, this.files).nft;
  readonly rootfs = baseDrivers(this.exec, this.files).rootfs;
  readonly sysctl = baseDrivers(this.exec, this.files).sysctl;
  readonly openssl = baseDrivers(this.exec, this.files).openssl;

  failWhen(rule: FailureRule): this {
    this.rules.push(rule);
    return this;
  }

  failure(line: string, attempt: number): Error | undefined {
    for (const rule of this.rules) {
      const error = rule(line, attempt);
      if (error) return error;
    }
    return undefined;
  }

  /** Every later host call waits until `release()`. */
  holdCalls(): void {
    this.hold = new Promise((resolve) => (this.releaseHold = resolve));
  }

  release(): void {
    this.releaseHold?.();
    this.hold = undefined;
  }
}

export interface FakeHandlerOptions {
  desired?: DesiredObject<FakeSpec>[];
  /** Whether the handler has `update` (default true). */
  update?: boolean;
  canUpdate?: ResourceHandler<FakeSpec>['canUpdate'];
  normalize?: ResourceHandler<FakeSpec>['normalize'];
  conflict?: ResourceHandler<FakeSpec>['conflict'];
  dependsOnKinds?: string[];
  /** Give the handler `applyBatch`; items whose `batch-item KIND/ID` line fails are reported. */
  batch?: boolean;
}

/** The host state all fake handlers of one test share: refString → observed object. */
export type FakeWorld = Map<string, ObservedObject<FakeSpec>>;

export function fakeHandler(kind: string, world: FakeWorld, options: FakeHandlerOptions = {}): ResourceHandler<FakeSpec> {
  const put = (want: DesiredObject<FakeSpec>): void => {
    world.set(refString(want.ref), { ref: want.ref, spec: want.spec, owned: true, ...(want.description ? { description: want.description } : {}) });
  };
  const handler: ResourceHandler<FakeSpec> = {
    kind,
    desired: () => options.desired ?? [],
    observe: async () => [...world.values()].filter((o) => o.ref.kind === kind),
    create: async (drivers, _host, want) => {
      await drivers.exec.run('create', [refString(want.ref)]);
      put(want);
    },
    delete: async (drivers, _host, have) => {
      await drivers.exec.run('delete', [refString(have.ref)]);
      world.delete(refString(have.ref));
    },
    ...(options.dependsOnKinds ? { dependsOnKinds: options.dependsOnKinds } : {}),
    ...(options.canUpdate ? { canUpdate: options.canUpdate } : {}),
    ...(options.normalize ? { normalize: options.normalize } : {}),
    ...(options.conflict ? { conflict: options.conflict } : {}),
  };
  if (options.update !== false) {
    handler.update = async (drivers, _host, want) => {
      await drivers.exec.run('update', [refString(want.ref)]);
      put(want);
    };
  }
  if (options.batch) {
    handler.applyBatch = async (drivers, _host, actions: readonly PlannedAction<FakeSpec>[]) => {
      const keys = actions.map((a) => refString(a.ref));
      await drivers.exec.run('batch', keys);
      const failed = new Set<string>();
      const recorder = drivers as RecordingDrivers;
      for (const action of actions) {
        const key = refString(action.ref);
        if (recorder.failure(`batch-item ${key}`, 1)) failed.add(key);
        else if (action.type === 'delete') world.delete(key);
        else if (action.want) put(action.want);
      }
      return { failed };
    };
  }
  return handler;
}

export const ref = (kind: string, id: string): ObjectRef => ({ kind, id });

export function want(
  kind: string,
  id: string,
  spec: FakeSpec,
  extra: { dependsOn?: ObjectRef[]; description?: string } = {},
): DesiredObject<FakeSpec> {
  return { ref: ref(kind, id), spec, ...extra };
}

export function seen(kind: string, id: string, spec: FakeSpec, owned = true, description?: string): ObservedObject<FakeSpec> {
  return { ref: ref(kind, id), spec, owned, ...(description ? { description } : {}) };
}

export function worldOf(...objects: ObservedObject<FakeSpec>[]): FakeWorld {
  return new Map(objects.map((o) => [refString(o.ref), o]));
}

export const testHost: HostContext = {
  name: 'web1.example.net',
  cluster: 'test',
  host: { hostnet: 1, host_ip: '192.0.2.10' },
  root: '/nonexistent-test-root',
};

export const emptyModel = { clusters: {}, users: {}, containers: {}, settings: {} } as unknown as Model;

/** Waits until `condition` holds, yielding to the event loop between checks (no timers). */
export async function until(condition: () => boolean, limit = 10_000): Promise<void> {
  for (let i = 0; i < limit && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  if (!condition()) throw new Error('condition never became true');
}
