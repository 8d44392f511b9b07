// The two inputs of a plan: what the datastore wants on this host (pure, per kind) and what the
// host has (one bulk observation per kind, all kinds at once). Both refuse ambiguous refs.
import type { Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ScError, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { refString, type DesiredObject, type HandlerRegistry, type ObjectRef, type ObservedObject } from '../resources/contract.js';

export function desiredState(handlers: HandlerRegistry, model: Model, host: HostContext): Map<string, DesiredObject<unknown>[]> {
  const result = new Map<string, DesiredObject<unknown>[]>();
  const problems: string[] = [];
  for (const [kind, handler] of Object.entries(handlers)) {
    const objects = handler.desired(model, host);
    problems.push(
      ...refProblems(
        kind,
        objects.map((o) => o.ref),
        'desired',
      ),
    );
    result.set(kind, objects);
  }
  if (problems.length) {
    // Two datastore entries mapping to one host object (e.g. one bridge name) is bad input.
    throw new UserError(`the datastore asks for ambiguous objects on ${host.name}: ${problems.join('; ')}`);
  }
  return result;
}

export async function observeHost(
  handlers: HandlerRegistry,
  drivers: Drivers,
  host: HostContext,
  pass: { readonly model: Model; readonly desired: ReadonlyMap<string, readonly DesiredObject<unknown>[]> },
): Promise<Map<string, ObservedObject<unknown>[]>> {
  const kinds = Object.keys(handlers);
  // Several kinds read the host's links (bridges, machines' veths, tunnels): one dump for the pass.
  const endShare = drivers.ip.shareReads?.();
  // Machines and their addresses read each machine's network namespace: entered once for the pass.
  const endMachineShare = drivers.nspawn?.shareReads?.();
  let settled: PromiseSettledResult<ObservedObject<unknown>[]>[];
  try {
    // allSettled: never leave an observation running unattended after another one failed.
    settled = await Promise.allSettled(
      kinds.map((kind) =>
        (handlers[kind] as HandlerRegistry[string]).observe(drivers, host, { model: pass.model, desired: pass.desired.get(kind) ?? [] }),
      ),
    );
  } finally {
    endShare?.();
    endMachineShare?.();
  }
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;

  const result = new Map<string, ObservedObject<unknown>[]>();
  const problems: string[] = [];
  kinds.forEach((kind, i) => {
    const objects = (settled[i] as PromiseFulfilledResult<ObservedObject<unknown>[]>).value;
    problems.push(
      ...refProblems(
        kind,
        objects.map((o) => o.ref),
        'observed',
      ),
    );
    result.set(kind, objects);
  });
  if (problems.length) throw new ScError(`cannot tell host objects apart: ${problems.join('; ')}`);
  return result;
}

function refProblems(kind: string, refs: readonly ObjectRef[], what: string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const ref of refs) {
    const key = refString(ref);
    if (ref.kind !== kind) problems.push(`the ${kind} handler returned ${what} object ${key} of another kind`);
    else if (seen.has(key)) problems.push(`${what} ${key} appears more than once`);
    seen.add(key);
  }
  return problems;
}
