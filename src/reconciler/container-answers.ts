// Whether the containers of this host answer, seen rather than assumed: which containers to ask
// (enabled, with an address, their machine observed running), which ones an apply started or
// repaired (those get a bounded wait), and the one-line summary status and apply print.
import type { Model } from '../datastore/model.js';
import type { Answer, PingTarget } from '../drivers/ping.js';
import type { Drivers } from '../drivers/types.js';
import type { HostContext } from '../host-context.js';
import { refString, type DesiredObject, type ObjectRef, type ObservedObject } from '../resources/contract.js';
import type { ApplyReport } from './executor.js';

/** The kind whose observation tells whether a container runs; its ids are container names. */
const MACHINE_KIND = 'machine';
/** How long an apply waits for the containers it started or repaired to answer. */
export const ANSWER_WAIT_MS = 20_000;

export interface ContainerAnswers {
  /** Every running container asked, name → yes / no / unknown. */
  readonly answers: Record<string, Answer>;
  /** The containers this apply started or repaired (waited for); empty for `sc status`. */
  readonly repaired: string[];
  readonly notAnswering: string[];
  readonly unknown: string[];
}

/** Containers of this host that should run and whose machine was observed running, with their address. */
export function runningContainerTargets(
  model: Model,
  host: HostContext,
  observed: ReadonlyMap<string, readonly ObservedObject<unknown>[]>,
): PingTarget[] {
  const running = new Set(
    (observed.get(MACHINE_KIND) ?? [])
      .filter((m) => m.owned && (m.spec as { state?: unknown } | undefined)?.state === 'running')
      .map((m) => m.ref.id),
  );
  if (running.size === 0) return [];
  return Object.entries(model.containers)
    .filter(([name, c]) => c.host === host.name && c.enabled !== false && typeof c.ip === 'string' && running.has(name))
    .map(([name, c]) => ({ name, ip: c.ip as string }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Containers whose machine, anything the machine depends on (its files, its bridge), or anything
 * depending on the machine (its address) was changed successfully by this apply.
 */
export function repairedContainers(desired: ReadonlyMap<string, readonly DesiredObject<unknown>[]>, report: ApplyReport): Set<string> {
  const changed = new Set(report.results.filter((r) => r.status === 'ok').map((r) => refString(r.ref)));
  const repaired = new Set<string>();
  if (changed.size === 0) return repaired;
  const dependents = new Map<string, ObjectRef[]>();
  for (const objects of desired.values()) {
    for (const obj of objects) {
      for (const dep of obj.dependsOn ?? []) {
        const list = dependents.get(refString(dep)) ?? [];
        list.push(obj.ref);
        dependents.set(refString(dep), list);
      }
    }
  }
  for (const machine of desired.get(MACHINE_KIND) ?? []) {
    const related = [machine.ref, ...(machine.dependsOn ?? []), ...(dependents.get(refString(machine.ref)) ?? [])];
    if (related.some((ref) => changed.has(refString(ref)))) repaired.add(machine.ref.id);
  }
  return repaired;
}

/** Asks every running container once, waiting (bounded) for the repaired ones; undefined without a ping driver. */
export async function checkContainerAnswers(
  drivers: Drivers,
  targets: readonly PingTarget[],
  repaired: ReadonlySet<string> = new Set(),
  timeoutMs = ANSWER_WAIT_MS,
): Promise<ContainerAnswers | undefined> {
  if (!drivers.ping) return undefined;
  const answers = await drivers.ping.waitForAnswers(targets, repaired, timeoutMs);
  const record: Record<string, Answer> = {};
  for (const t of targets) record[t.name] = answers.get(t.name) ?? 'unknown';
  const names = Object.keys(record);
  return {
    answers: record,
    repaired: names.filter((n) => repaired.has(n)),
    notAnswering: names.filter((n) => record[n] === 'no'),
    unknown: names.filter((n) => record[n] === 'unknown'),
  };
}

/** `3 of 5 running containers not answering: a, b, c` — undefined when every one answered. */
export function answersSummary(result: ContainerAnswers | undefined): string | undefined {
  if (!result) return undefined;
  const total = Object.keys(result.answers).length;
  const parts: string[] = [];
  if (result.notAnswering.length)
    parts.push(`${result.notAnswering.length} of ${total} running containers not answering: ${result.notAnswering.join(', ')}`);
  if (result.unknown.length)
    parts.push(`${result.unknown.length} of ${total} running containers unknown (ping could not run): ${result.unknown.join(', ')}`);
  return parts.length ? parts.join('; ') : undefined;
}
