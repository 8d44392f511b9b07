// How a Plan reads: terraform-like text grouped by kind (`+` create, `~` update, `-/+` replace,
// `-` delete, `!` conflict) or the `-o json` object. Pure: data in, string/object out.
import pc from 'picocolors';
import { readableFieldPath } from '../../reconciler/field-changes.js';
import { compareNatural } from '../../reconciler/natural-order.js';
import type { Plan, PlanSummary } from '../../reconciler/planner.js';
import type { ActionType, FieldChange, PlannedAction } from '../../resources/contract.js';

type Colors = ReturnType<typeof pc.createColors>;

export const ACTION_SYMBOLS: Readonly<Record<ActionType, string>> = {
  create: '+',
  update: '~',
  replace: '-/+',
  delete: '-',
  conflict: '!',
  noop: ' ',
};

const LISTING_ORDER: readonly ActionType[] = ['create', 'update', 'replace', 'delete', 'conflict', 'noop'];

export function colorSymbol(type: ActionType, c: Colors): string {
  const symbol = ACTION_SYMBOLS[type];
  switch (type) {
    case 'create':
      return c.green(symbol);
    case 'update':
      return c.yellow(symbol);
    case 'replace':
      return c.magenta(symbol);
    case 'delete':
      return c.red(symbol);
    case 'conflict':
      return c.bold(c.red(symbol));
    default:
      return symbol;
  }
}

export function renderPlanText(plan: Plan, opts: { color: boolean }): string {
  const c = pc.createColors(opts.color);
  if (plan.actions.length === 0) return `${c.green('No changes.')} This host matches the datastore.`;

  const byKind = new Map<string, PlannedAction[]>();
  for (const action of plan.actions) {
    const list = byKind.get(action.ref.kind) ?? [];
    list.push(action);
    byKind.set(action.ref.kind, list);
  }
  const idWidth = Math.max(16, ...plan.actions.map((a) => a.ref.id.length));
  const blocks: string[] = [];
  for (const [kind, actions] of byKind) {
    const lines = [c.bold(kind)];
    const listed = [...actions].sort((a, b) => LISTING_ORDER.indexOf(a.type) - LISTING_ORDER.indexOf(b.type) || compareNatural(a.ref.id, b.ref.id));
    for (const action of listed) lines.push(...actionLines(action, idWidth, c));
    blocks.push(lines.join('\n'));
  }
  return `${blocks.join('\n\n')}\n\n${summaryLine(plan.summary, c)}`;
}

function actionLines(action: PlannedAction, idWidth: number, c: Colors): string[] {
  const symbol = ' '.repeat(3 - ACTION_SYMBOLS[action.type].length) + colorSymbol(action.type, c);
  let detail = action.message ?? '';
  if (action.type === 'conflict') detail = c.red(`conflict: ${detail}`);
  if (action.type === 'replace') detail = [detail, c.magenta('(must be replaced)')].filter(Boolean).join(' ');
  const head = detail ? `${symbol} ${action.ref.id.padEnd(idWidth)} ${detail}` : `${symbol} ${action.ref.id}`;
  const lines = [head];
  if (action.type === 'update' || action.type === 'replace') {
    for (const change of action.reasons) lines.push(`      ${fieldChangeText(change, c)}`);
  }
  return lines;
}

export function fieldChangeText(change: FieldChange, c: Colors): string {
  const old = change.op === 'add' ? c.dim('(none)') : valueText(change.old);
  const next = change.op === 'remove' ? c.dim('(none)') : valueText(change.new);
  return `${readableFieldPath(change.path)}: ${old} → ${next}`;
}

function valueText(value: unknown): string {
  return value === undefined ? '(none)' : JSON.stringify(value);
}

function summaryLine(summary: PlanSummary, c: Colors): string {
  const plan = `${c.bold('Plan:')} ${summary.add} to add, ${summary.change} to change, ${summary.destroy} to destroy.`;
  if (summary.conflict === 0) return plan;
  return `${plan} ${c.red(`${summary.conflict} conflict${summary.conflict === 1 ? '' : 's'}.`)}`;
}

export interface PlanChangeJson {
  action: ActionType;
  kind: string;
  id: string;
  /** Field changes for update/replace; the one explanatory line (if any) otherwise. */
  reasons: FieldChange[] | string[];
}

export interface PlanJson {
  changes: PlanChangeJson[];
  summary: PlanSummary;
  /** Present (true) when apply would change nothing; conflicts may still be listed. */
  no_changes?: true;
}

export function planJson(plan: Plan): PlanJson {
  const changes = plan.actions.map((action): PlanChangeJson => ({
    action: action.type,
    kind: action.ref.kind,
    id: action.ref.id,
    reasons: action.type === 'update' || action.type === 'replace' ? action.reasons.map((r) => ({ ...r })) : action.message ? [action.message] : [],
  }));
  return { changes, summary: { ...plan.summary }, ...(plan.inSync ? { no_changes: true as const } : {}) };
}
