// The commands that look at or change this host: `sc diff` (alias plan), `sc apply`, `sc status`.
import type { DatastoreLocation } from '../../datastore/datastore-location.js';
import { datastoreRevision } from '../../datastore/git-commit-edit.js';
import { redactUrl, sourceLabel } from '../../datastore/git-source.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createDrivers, createEarlyIpDriver } from '../../drivers/create-drivers.js';
import { applyHost, planHost, surveyHost, WHOLE_KIND } from '../../reconciler/host-pass.js';
import { readApplyRecord } from '../../reconciler/apply-record.js';
import { acquireHostLock, hostLockPath, type HostLock } from '../../reconciler/host-lock.js';
import { decideDesiredSource } from '../../reconciler/desired-state.js';
import { mkdir, rmdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readReconcileStatus } from '../../reconciler/reconcile-status.js';
import type { ObjectRef } from '../../resources/contract.js';
import { resourceHandlers } from '../../resources/registry.js';
import { runCommand, type CommandContext, type CommandResult } from '../command-runner.js';
import { desiredStateRequest, hostContext, openDatastore } from '../open-datastore.js';
import { renderApplyEvent, renderApplyReport } from '../views/apply-view.js';
import { planJson, renderPlanText } from '../views/plan-view.js';
import { checkExitCode, proxyProbeNames, renderStatus, statusHealth, statusJson } from '../views/status-view.js';
import { answersSummary, checkContainerAnswers, runningContainerTargets, type ContainerAnswers } from '../../reconciler/container-answers.js';
import { probeProxy } from '../proxy-probe.js';

function targetRef(value: string, previous: ObjectRef[] = []): ObjectRef[] {
  const m = /^([a-z][a-z0-9-]*)(?:\/(.+))?$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected KIND/NAME (e.g. bridge/sc-17-3) or a whole KIND (e.g. bridge).');
  return [...previous, { kind: m[1] as string, id: m[2] ?? WHOLE_KIND }];
}

/** The revision (and source) the desired state came from, when it is git's: for the apply record. */
async function desiredStateOrigin(location: DatastoreLocation): Promise<{ revision?: string; source?: string }> {
  if (location.gitSource !== undefined) {
    return { ...(location.revision !== undefined ? { revision: location.revision } : {}), source: sourceLabel(location.gitSource) };
  }
  const revision = await datastoreRevision(location.dir);
  return revision !== undefined ? { revision } : {};
}

/**
 * The datastore, this host and its drivers. With `prefetch`, the host's links and addresses are
 * read (ip's kernel dump, in other processes) while the datastore is parsed and validated: on a
 * host with thousands of bridges the two take about as long, and sc used to wait for one, then the other.
 */
async function hostSetup(ctx: CommandContext, options: { lastGoodFallback?: boolean; prefetch?: boolean; apply?: { pruneData?: boolean } } = {}) {
  const ip = options.prefetch ? createEarlyIpDriver(ctx.options.netns, ctx.logger) : undefined;
  ip?.prefetch?.();
  const loaded = await openDatastore(ctx, {}, options.lastGoodFallback !== undefined ? { lastGoodFallback: options.lastGoodFallback } : {});
  const host = hostContext(ctx, loaded, options.apply);
  const drivers = createDrivers(host, ctx.logger, { ip });
  return { loaded, host, drivers, handlers: resourceHandlers };
}

/**
 * `sc apply` reads the host only under the host lock (another apply could be changing it). With a
 * local datastore the lock is taken before loading it, so the read can overlap the loading too.
 * Not for a git source (a fetch can take long: others would find the host locked meanwhile). On a
 * fresh host the lock's directory is made here; if the apply then fails before it changed anything
 * (bad input), `undo` removes the directories made, so bad input leaves no trace.
 */
async function earlyApplyLock(ctx: CommandContext, command: string): Promise<{ lock: HostLock; undo: () => Promise<void> } | undefined> {
  const { root } = ctx.options;
  // The one decision of where the desired state comes from (a bad --source is reported by the open that follows).
  const choice = await decideDesiredSource(desiredStateRequest(ctx)).catch(() => undefined);
  if (choice === undefined || !('location' in choice.source)) return undefined;
  const dir = dirname(hostLockPath(root));
  const made = await mkdir(dir, { recursive: true }).catch(() => null);
  if (made === null) return undefined; // the lock's own error, when it is taken later, says why
  const lock = await acquireHostLock(root, { command });
  const undo = async (): Promise<void> => {
    if (made === undefined) return;
    // Only empty directories, deepest first, up to the first one made: never anything another process put there.
    for (let d = dir; d.length >= made.length; d = dirname(d)) {
      if (
        !(await rmdir(d).then(
          () => true,
          () => false,
        ))
      )
        return;
    }
  };
  return { lock, undo };
}

const targetOption = () =>
  new Option('--target <kind/name>', 'limit to this resource (KIND/NAME) or kind (KIND), plus what it depends on (repeatable)').argParser(targetRef);

export function registerHostCommands(program: Command): void {
  program
    .command('diff')
    .alias('plan')
    .addOption(targetOption())
    .description('show the changes `sc apply` would make on this host; exit 0 none, 2 changes pending, 1 error')
    .action((opts: { target?: ObjectRef[] }, command: Command) =>
      runCommand(command, async (ctx) => {
        const { loaded, host, drivers, handlers } = await hostSetup(ctx, { prefetch: true });
        const plan = await planHost({ model: loaded.model, host, drivers, handlers, targets: opts.target });
        return {
          exitCode: plan.inSync ? 0 : 2,
          text: renderPlanText(plan, { color: ctx.terminal.color }),
          json: { host: host.name, ...planJson(plan) },
        };
      }),
    );

  program
    .command('apply')
    .option('--dry-run', 'show the plan, change nothing')
    .option('--prune-data', 'removing a container also deletes its data under /srv/NAME (default: settings.prune.data, else kept)')
    .addOption(targetOption())
    .addOption(new Option('--concurrency <n>', 'independent actions run in parallel, at most N at once').argParser(positiveInt))
    .option('--allow-mass-delete', "let the plan delete more than settings prune.max_delete_share of this host's containers, or all of them")
    .description('converge this host to the datastore; exit 0 only when it converged')
    .action((opts: ApplyFlags, command: Command) =>
      runCommand(command, async (ctx) => {
        const lockCommand = redactUrl(`sc apply${process.argv.slice(3).length ? ` ${process.argv.slice(3).join(' ')}` : ''}`);
        const early = opts.dryRun ? undefined : await earlyApplyLock(ctx, lockCommand);
        try {
          return await applyCommand(ctx, opts, lockCommand, early?.lock);
        } catch (error) {
          await early?.lock.release();
          await early?.undo();
          throw error;
        } finally {
          await early?.lock.release();
        }
      }),
    );
  program
    .command('status')
    .option(
      '--check',
      'for monitoring: exit 0 when in sync and every running container answers a ping, 2 when out of sync or a container does not answer, 1 on error or when it cannot tell (ping could not run)',
    )
    .description(
      'this host: every resource sc manages and whether it is in sync, its containers (state, address, owner, answers), the names its reverse proxy answers (route, certificate, HTTP status), the last apply and reconcile',
    )
    .addHelpText(
      'after',
      '\n"In sync" means serving: status pings every running container and says which do not answer.\nExit codes: 0, or with --check 0 healthy / 2 out of sync or not answering / 1 error or cannot tell.',
    )
    .action((opts: { check?: boolean }, command: Command) =>
      runCommand(command, async (ctx) => {
        // Status shows the host as it stands: against the last good revision when the source's newest is invalid.
        const { loaded, host, drivers, handlers } = await hostSetup(ctx, { lastGoodFallback: true, prefetch: true });
        const survey = await surveyHost({ model: loaded.model, host, drivers, handlers });
        const lastApply = await readApplyRecord(host.root);
        const lastReconcile = await readReconcileStatus(host.root);
        const answers = await checkContainerAnswers(drivers, runningContainerTargets(loaded.model, host, survey.observed));
        const proxyCodes = await probeProxy(drivers.exec, proxyProbeNames(survey));
        return {
          ...(opts.check ? { exitCode: checkExitCode(statusHealth(survey, answers)) } : {}),
          text: renderStatus(host, loaded.model, survey, lastApply, ctx.terminal, lastReconcile, answers, proxyCodes),
          json: statusJson(host, loaded.model, survey, lastApply, lastReconcile, answers, proxyCodes),
        };
      }),
    );
}

interface ApplyFlags {
  dryRun?: boolean;
  pruneData?: boolean;
  target?: ObjectRef[];
  concurrency?: number;
  allowMassDelete?: boolean;
}

async function applyCommand(ctx: CommandContext, opts: ApplyFlags, lockCommand: string, lock: HostLock | undefined): Promise<CommandResult> {
  // Under an early lock nothing else applies: the host may be read while the datastore loads.
  const { loaded, host, drivers, handlers } = await hostSetup(ctx, {
    prefetch: opts.dryRun === true || lock !== undefined,
    apply: opts.pruneData !== undefined ? { pruneData: opts.pruneData } : {},
  });
  const input = { model: loaded.model, host, drivers, handlers, targets: opts.target };
  if (opts.dryRun) {
    const plan = await planHost(input);
    return { text: renderPlanText(plan, { color: ctx.terminal.color }), json: { host: host.name, dry_run: true, ...planJson(plan) } };
  }
  const concurrency = opts.concurrency ?? loaded.model.settings.apply?.concurrency ?? 8;
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  // `on`, not `once`: a second signal must not kill sc mid-abort, and a library using
  // signal-exit re-raises a signal no other listener is left for (a `once` one is removed as it runs).
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await applyHost({
      ...input,
      concurrency,
      command: lockCommand,
      heldLock: lock,
      signal: abort.signal,
      allowMassDelete: opts.allowMassDelete,
      origin: await desiredStateOrigin(loaded.location),
      onEvent: (event) => {
        const line = renderApplyEvent(event, { color: ctx.terminal.color, tty: ctx.terminal.tty });
        if (line) ctx.progress(line);
      },
    });
    const lines: string[] = [];
    if (result.plan.inSync) lines.push(renderPlanText(result.plan, { color: ctx.terminal.color }));
    else lines.push(renderApplyReport(result.report, { color: ctx.terminal.color }));
    if (result.report.failed === 0 && result.report.skipped === 0 && !result.remaining.inSync) {
      lines.push('The host still differs from the datastore after apply:', renderPlanText(result.remaining, { color: ctx.terminal.color }));
    }
    lines.push(...answerLines(result.answers));
    return {
      exitCode: result.converged ? 0 : 1,
      text: lines.join('\n'),
      json: {
        host: host.name,
        converged: result.converged,
        plan: planJson(result.plan),
        report: result.report,
        remaining: planJson(result.remaining),
        containers: result.answers
          ? {
              answers: result.answers.answers,
              repaired: result.answers.repaired,
              not_answering: result.answers.notAnswering,
              unknown: result.answers.unknown,
            }
          : null,
      },
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** After an apply: which running containers answer, the started or repaired ones after a bounded wait. */
function answerLines(answers: ContainerAnswers | undefined): string[] {
  if (!answers) return [];
  const total = Object.keys(answers.answers).length;
  if (total === 0) return [];
  const problem = answersSummary(answers);
  if (problem) return [`Warning: ${problem}${answers.repaired.length ? ` (waited for the ${answers.repaired.length} started or repaired)` : ''}.`];
  return [
    `All ${total} running containers answer${answers.repaired.length ? ` (${answers.repaired.length} started or repaired: ${answers.repaired.join(', ')})` : ''}.`,
  ];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  return n;
}
