// `sc reconcile`: the GitOps loop (or `--once`, one pass, for the systemd timer). Each pass fetches
// the source, validates, plans, checks the prune guardrail, applies, and records status + metrics.
import { Command, InvalidArgumentError, Option } from 'commander';
import { createDrivers } from '../../drivers/create-drivers.js';
import { decideDesiredSource, settingsInForce } from '../../reconciler/desired-state.js';
import { reconcileLoop, reconcileOnce } from '../../reconciler/reconcile-loop.js';
import type { ReconcileStatus } from '../../reconciler/reconcile-status.js';
import { resourceHandlers } from '../../resources/registry.js';
import { runCommand } from '../command-runner.js';
import { desiredStateRequest } from '../open-datastore.js';
import { renderApplyEvent } from '../views/apply-view.js';

interface ReconcileFlags {
  once?: boolean;
  interval?: number;
  jitter?: number;
  allowMassDelete?: boolean;
  verify?: boolean;
  concurrency?: number;
}

const DEFAULT_INTERVAL_SECONDS = 300;
const DEFAULT_JITTER_SECONDS = 30;

export function passLine(status: ReconcileStatus): string {
  const c = status.counts;
  const actions = c.actions ? ` (${c.actions} actions: ${c.ok} ok, ${c.failed} failed, ${c.skipped} skipped, ${c.conflicts} conflicts)` : '';
  return `${status.finished} ${status.result}: ${status.message}${actions}`;
}

export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .option('--once', 'one pass (fetch, validate, plan, apply, record), then exit: for the systemd timer')
    .addOption(
      new Option('--interval <seconds>', 'seconds between passes (default: settings reconcile.interval_seconds, else 300)').argParser(
        positiveSeconds,
      ),
    )
    .addOption(
      new Option(
        '--jitter <seconds>',
        'random extra delay per pass, up to this (default: settings reconcile.jitter_seconds, at most half the interval)',
      ).argParser(seconds),
    )
    .option('--allow-mass-delete', "let a revision delete more than settings prune.max_delete_share of this host's containers, or all of them")
    .option('--verify', 'require a good signature on every revision (git verify-commit); also settings source.verify')
    .addOption(new Option('--concurrency <n>', 'independent actions run in parallel, at most N at once').argParser(positiveInt))
    .description('keep this host converged to the source: every interval (+ jitter), at once when the revision moves; exit 0 on SIGTERM')
    .action((opts: ReconcileFlags, command: Command) =>
      runCommand(command, async (ctx) => {
        // --source, else source.url in this host's settings, else the datastore dir (or the source its settings name).
        const choice = await decideDesiredSource(desiredStateRequest(ctx), { use: 'reconcile' });
        if (choice.notice !== undefined) ctx.notice(choice.notice);
        const source = choice.source;
        const settings = await settingsInForce(ctx.options.root, choice);
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        // `on`, not `once`: a second signal must not kill sc mid-abort, and a library using
        // signal-exit re-raises a signal no other listener is left for (a `once` one is removed as it runs).
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const options = {
          root: ctx.options.root,
          hostName: ctx.options.host,
          ...(ctx.options.netns !== undefined ? { netns: ctx.options.netns } : {}),
          source,
          handlers: resourceHandlers,
          driversFor: (host: Parameters<typeof createDrivers>[0]) => createDrivers(host, ctx.logger),
          allowMassDelete: opts.allowMassDelete,
          verify: opts.verify,
          concurrency: opts.concurrency,
          onWarning: (text: string) => ctx.notice(`warning: ${text}`),
          onEvent: opts.once
            ? (event: Parameters<typeof renderApplyEvent>[0]) => {
                const line = renderApplyEvent(event, { color: ctx.terminal.color, tty: false });
                if (line) ctx.progress(line);
              }
            : undefined,
        };
        try {
          if (opts.once) {
            const status = await reconcileOnce(options, abort.signal);
            return { exitCode: status.result === 'ok' ? 0 : 1, text: passLine(status), json: status };
          }
          const interval = opts.interval ?? settings?.reconcile?.interval_seconds ?? DEFAULT_INTERVAL_SECONDS;
          const jitter = opts.jitter ?? Math.min(settings?.reconcile?.jitter_seconds ?? DEFAULT_JITTER_SECONDS, interval / 2);
          ctx.logger.info({ interval, jitter }, 'reconcile loop started');
          const passes = await reconcileLoop(options, {
            intervalSeconds: interval,
            jitterSeconds: jitter,
            signal: abort.signal,
            onPass: (status) => {
              ctx.progress(passLine(status));
              ctx.logger.info({ revision: status.revision, result: status.result, counts: status.counts }, 'reconcile pass');
            },
          });
          return { exitCode: 0, text: `reconcile stopped after ${passes} ${passes === 1 ? 'pass' : 'passes'}`, json: { passes } };
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );
}

function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of seconds (0 or more).');
  return n;
}

function positiveSeconds(value: string): number {
  const n = seconds(value);
  if (n <= 0) throw new InvalidArgumentError('must be more than 0 seconds.');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1) throw new InvalidArgumentError('must be a positive integer.');
  return n;
}
