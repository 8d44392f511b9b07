// One pass over this host: derive desired state, observe the host in bulk, plan, and (for apply)
// execute under the host lock, then observe again to check the host really converged.
import type { Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import type { HostContext } from '../host-context.js';
import { UserError } from '../errors.js';
import { refString, type DesiredObject, type HandlerRegistry, type ObjectRef, type ObservedObject } from '../resources/contract.js';
import { applyRecord, writeApplyRecord } from './apply-record.js';
import { ANSWER_WAIT_MS, checkContainerAnswers, repairedContainers, runningContainerTargets, type ContainerAnswers } from './container-answers.js';
import { executePlan, type ApplyEvent, type ApplyReport } from './executor.js';
import { acquireHostLock, type HostLock } from './host-lock.js';
import { desiredState, observeHost } from './observe-host.js';
import { planActions, selectTargets, type Plan } from './planner.js';
import { assertPruneAllowed } from './prune-guardrail.js';

/** The id of a target that stands for every object of its kind (`--target bridge`). */
export const WHOLE_KIND = '*';

export interface HostPassInput {
  readonly model: Model;
  readonly host: HostContext;
  readonly drivers: Drivers;
  readonly handlers: HandlerRegistry;
  readonly targets?: readonly ObjectRef[];
}

/** What this host should have, what it has, and the plan between them. */
export interface HostSurvey {
  /** The handlers the survey used (with --target: the targeted kinds and what they depend on). */
  readonly handlers?: HandlerRegistry;
  readonly desired: Map<string, DesiredObject<unknown>[]>;
  readonly observed: Map<string, ObservedObject<unknown>[]>;
  readonly plan: Plan;
}

export async function surveyHost(
  input: HostPassInput,
  options: { strictTargets?: boolean; sameDesired?: { handlers: HandlerRegistry; desired: HostSurvey['desired'] } } = {},
): Promise<HostSurvey> {
  const targets = input.targets?.length ? input.targets : undefined;
  // With --target, derive, observe and plan only the targeted kinds and the kinds they depend on.
  // Desired state is a pure function of the model and the host: a second survey of the same pass reuses it.
  const { handlers, desired } =
    options.sameDesired ??
    (targets
      ? targetedDesiredState(input.handlers, targets, input.model, input.host)
      : { handlers: input.handlers, desired: desiredState(input.handlers, input.model, input.host) });
  const observed = await observeHost(handlers, input.drivers, input.host, { model: input.model, desired });
  const full = planActions(handlers, desired, observed);
  if (!targets) return { handlers, desired, observed, plan: full };
  // Whole kinds targeted and nothing else derived (no kind they depend on): the plan is the selection.
  const wholeKinds = new Set(targets.filter((t) => t.id === WHOLE_KIND).map((t) => t.kind));
  if (wholeKinds.size === targets.length && Object.keys(handlers).every((kind) => wholeKinds.has(kind))) {
    return { handlers, desired, observed, plan: full };
  }
  let refs = expandKindTargets(targets, full);
  if (options.strictTargets === false) {
    const present = new Set([...full.actions.map((a) => refString(a.ref)), ...full.noops.map(refString)]);
    refs = refs.filter((r) => present.has(refString(r)));
  }
  return { handlers, desired, observed, plan: selectTargets(full, refs) };
}

/** `--target bridge` (a whole kind) becomes every bridge the plan knows of. */
function expandKindTargets(targets: readonly ObjectRef[], plan: Plan): ObjectRef[] {
  const known = [...plan.actions.map((a) => a.ref), ...plan.noops];
  return targets.flatMap((t) => (t.id === WHOLE_KIND ? known.filter((r) => r.kind === t.kind) : [t]));
}

/** The handlers a targeted pass needs (the targets' kinds plus, transitively, the kinds their objects
 *  depend on) and their desired objects — computed kind by kind, so untargeted kinds cost nothing. */
function targetedDesiredState(
  all: HandlerRegistry,
  targets: readonly ObjectRef[],
  model: Model,
  host: HostContext,
): { handlers: HandlerRegistry; desired: Map<string, DesiredObject<unknown>[]> } {
  const unknown = targets.filter((t) => !(t.kind in all)).map((t) => t.kind);
  if (unknown.length) {
    throw new UserError(`unknown resource kind ${[...new Set(unknown)].join(', ')} in --target (kinds: ${Object.keys(all).join(', ')})`);
  }
  const handlers: Record<string, HandlerRegistry[string]> = {};
  const desired = new Map<string, DesiredObject<unknown>[]>();
  const stack = targets.map((t) => t.kind);
  while (stack.length) {
    const kind = stack.pop() as string;
    const handler = all[kind];
    if (!handler || kind in handlers) continue;
    handlers[kind] = handler;
    const objects = desiredState({ [kind]: handler }, model, host).get(kind) ?? [];
    desired.set(kind, objects);
    for (const obj of objects) for (const dep of obj.dependsOn ?? []) stack.push(dep.kind);
    stack.push(...(handler.dependsOnKinds ?? []));
  }
  return { handlers, desired };
}

export async function planHost(input: HostPassInput): Promise<Plan> {
  return (await surveyHost(input)).plan;
}

export interface ApplyHostOptions extends HostPassInput {
  readonly concurrency: number;
  readonly command: string;
  readonly onEvent?: (event: ApplyEvent) => void;
  readonly signal?: AbortSignal;
  /** Let the plan delete more than settings.prune.max_delete_share of this host's containers. */
  readonly allowMassDelete?: boolean;
  /** Where the desired state came from, for the apply record (`sc status`). */
  readonly origin?: { readonly revision?: string; readonly source?: string };
  /** How long to wait for started or repaired containers to answer (default: settings apply.answer_wait_seconds, else ANSWER_WAIT_MS). */
  readonly answerWaitMs?: number;
  /** The host lock, when the caller took it already (it is released here all the same). */
  readonly heldLock?: HostLock;
}

export interface ApplyHostResult {
  readonly plan: Plan;
  readonly report: ApplyReport;
  /** What still differs after the apply (observed afresh); empty when converged. */
  readonly remaining: Plan;
  /** The host as observed after the apply (before it, when nothing was to do). */
  readonly observed: ReadonlyMap<string, readonly ObservedObject<unknown>[]>;
  readonly converged: boolean;
  /** Whether the running containers answer after the apply (absent without a ping driver). */
  readonly answers?: ContainerAnswers;
}

export async function applyHost(options: ApplyHostOptions): Promise<ApplyHostResult> {
  const lock = options.heldLock ?? (await acquireHostLock(options.host.root, { command: options.command }));
  let result: ApplyHostResult;
  let repaired: Set<string>;
  let observedAfter: HostSurvey['observed'];
  try {
    const started = new Date();
    const survey = await surveyHost(options);
    const plan = survey.plan;
    assertPruneAllowed({
      plan,
      desired: survey.desired,
      observed: survey.observed,
      maxDeleteShare: options.model.settings.prune?.max_delete_share,
      allowMassDelete: options.allowMassDelete,
    });
    const report = await executePlan(plan, {
      handlers: options.handlers,
      drivers: options.drivers,
      host: options.host,
      concurrency: options.concurrency,
      onEvent: options.onEvent,
      signal: options.signal,
      // The check below reads the host afresh: its dumps start the moment the last change is made.
      ...(plan.hasChanges ? { onLastHostCall: () => options.drivers.ip.prefetch?.() } : {}),
    });
    // Level-triggered: trust the host, not the report.
    // Targets deleted by this apply are gone now: not an error on the re-check.
    const sameDesired = survey.handlers ? { handlers: survey.handlers, desired: survey.desired } : undefined;
    const after = plan.hasChanges ? await surveyHost(options, { strictTargets: false, ...(sameDesired ? { sameDesired } : {}) }) : survey;
    const remaining = after.plan;
    const converged = report.converged && remaining.inSync;
    await writeApplyRecord(options.host.root, applyRecord(started, report, converged, options.origin));
    result = { plan, report, remaining, observed: after.observed, converged };
    repaired = repairedContainers(survey.desired, report);
    observedAfter = after.observed;
  } finally {
    await lock.release();
  }
  // Never claim health unseen: ask the running containers (outside the lock: it changes nothing),
  // waiting a bounded time for those this apply started or repaired. An interrupted apply does not.
  if (options.signal?.aborted) return result;
  const targets = runningContainerTargets(options.model, options.host, observedAfter);
  const waitSeconds = options.model.settings.apply?.answer_wait_seconds;
  const waitMs = options.answerWaitMs ?? (waitSeconds !== undefined ? waitSeconds * 1000 : ANSWER_WAIT_MS);
  const answers = await checkContainerAnswers(options.drivers, targets, repaired, waitMs);
  return answers ? { ...result, answers } : result;
}
