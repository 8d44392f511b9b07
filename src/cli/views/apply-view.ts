// How `sc apply` reads while it runs (one line per event; off a TTY only each action's outcome)
// and when it ends (the totals, then every action that did not succeed and why).
import pc from 'picocolors';
import type { ApplyEvent, ApplyReport, ApplyResult } from '../../reconciler/executor.js';
import { refString, type ActionType } from '../../resources/contract.js';
import { colorSymbol, ACTION_SYMBOLS } from './plan-view.js';

const PROGRESS: Readonly<Record<ActionType, { doing: string; done: string }>> = {
  create: { doing: 'creating', done: 'created' },
  update: { doing: 'updating', done: 'updated' },
  replace: { doing: 'replacing', done: 'replaced' },
  delete: { doing: 'destroying', done: 'destroyed' },
  conflict: { doing: 'checking', done: 'checked' },
  noop: { doing: 'checking', done: 'unchanged' },
};

const PALETTES = { plain: pc.createColors(false), color: pc.createColors(true) };

/** One line for this event, or '' when nothing should be printed (progress off a TTY). */
export function renderApplyEvent(e: ApplyEvent, opts: { color: boolean; tty: boolean }): string {
  // One palette per setting, not one per event: an apply of thousands of objects prints thousands of lines.
  const c = opts.color ? PALETTES.color : PALETTES.plain;
  const { type: actionType } = e.action;
  const head = `${' '.repeat(3 - ACTION_SYMBOLS[actionType].length)}${colorSymbol(actionType, c)} ${refString(e.action.ref)}:`;
  const took = e.durationMs !== undefined ? ` in ${seconds(e.durationMs)}` : '';
  const why = e.error ? oneLine(e.error.message) : '';
  switch (e.type) {
    case 'start':
      return opts.tty ? `${head} ${c.dim(`${PROGRESS[actionType].doing}…`)}` : '';
    case 'done':
      return `${head} ${c.green(PROGRESS[actionType].done)}${took}`;
    case 'failed':
      return `${head} ${c.red(`${actionType} failed`)}${e.durationMs !== undefined ? ` after ${seconds(e.durationMs)}` : ''}: ${why}`;
    case 'skipped':
      return actionType === 'conflict' ? `${head} ${c.red('conflict, left alone')}: ${why}` : `${head} ${c.yellow('skipped')}: ${why}`;
    case 'retry':
      return `${head} ${c.yellow(`retrying${e.attempt !== undefined ? ` (attempt ${e.attempt})` : ''}`)}: ${why}`;
  }
}

export function renderApplyReport(r: ApplyReport, opts: { color: boolean }): string {
  const c = pc.createColors(opts.color);
  const done = (...types: ActionType[]): number => r.results.filter((x) => x.status === 'ok' && types.includes(x.type)).length;
  const totals = `${done('create', 'replace')} added, ${done('update')} changed, ${done('delete', 'replace')} destroyed`;
  if (r.converged) return `${c.green(c.bold('Apply complete:'))} ${totals}.`;

  const problems = [
    r.failed ? `${r.failed} failed` : '',
    r.skipped ? `${r.skipped} skipped` : '',
    r.conflicts ? `${r.conflicts} conflict${r.conflicts === 1 ? '' : 's'}` : '',
  ].filter(Boolean);
  const lines = [`${c.red(c.bold('Apply incomplete:'))} ${totals}; ${problems.join(', ')}.`];
  const label: Record<Exclude<ApplyResult['status'], 'ok'>, string> = {
    failed: c.red('failed  '),
    skipped: c.yellow('skipped '),
    conflict: c.red('conflict'),
  };
  for (const status of ['failed', 'skipped', 'conflict'] as const) {
    for (const result of r.results.filter((x) => x.status === status)) {
      lines.push(`  ${label[status]} ${colorSymbol(result.type, c)} ${refString(result.ref)}: ${oneLine(result.error ?? status)}`);
    }
  }
  const hint = r.failed
    ? 'Fix the cause and run sc apply again; sc diff shows what is left.'
    : r.conflicts
      ? 'sc never touches objects it did not create: remove or rename them, or change the datastore.'
      : 'Run sc apply again; sc diff shows what is left.';
  lines.push(hint);
  return lines.join('\n');
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** Host errors carry multi-line stderr; a progress or summary row keeps it on one line. */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ⏎ ');
}
