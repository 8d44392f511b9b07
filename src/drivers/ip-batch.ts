// `ip -batch` scripts: encoding argument arrays as batch lines (ip's own tokenizer, no shell) and
// mapping `Command failed -:N` back to the commands that failed.
import { HostCommandError } from '../errors.js';

/** One failed line of a batch: its 0-based index in the command list and ip's message for it. */
export interface IpBatchFailure {
  readonly index: number;
  readonly command: readonly string[];
  readonly message: string;
}

/** A batch in which some lines failed (all others ran: batches run with -force). */
export class IpBatchError extends HostCommandError {
  readonly failedIndices: ReadonlySet<number>;
  constructor(
    command: string[],
    code: number | undefined,
    readonly failures: readonly IpBatchFailure[],
    /** ip's stderr as printed, for logs. */
    readonly rawStderr: string,
    /** How many commands the batch held (a lone command's error reads as itself). */
    readonly total: number,
  ) {
    const only = failures.length === 1 && total === 1 ? failures[0] : undefined;
    const listed = failures
      .slice(0, 20)
      .map((f) => `line ${f.index + 1} (ip ${f.command.join(' ')}): ${f.message || 'failed'}`)
      .join('\n');
    const more = failures.length > 20 ? `\n… and ${failures.length - 20} more failed lines` : '';
    const text = only ? only.message || rawStderr : `${failures.length} of ${total} batched ip commands failed:\n${listed}${more}`;
    super(command, code, text, '', only ? {} : { reason: 'ip -batch' });
    this.failedIndices = new Set(failures.map((f) => f.index));
  }
}

/**
 * Quotes one argument for ip's batch tokenizer (iproute2 `makeargs`): words split on blanks,
 * a word may be wrapped in '…' or "…" without escapes, and `#` starts a comment anywhere.
 * What that tokenizer cannot carry is refused rather than mangled.
 */
const PLAIN_ARG = /^[^\s"'#\\\0]+$/;

export function encodeBatchArg(arg: string): string {
  // Nearly every argument (names, addresses, keywords) is a plain word: one test decides.
  if (PLAIN_ARG.test(arg)) return arg;
  if (/[\n\r\0#\\]/.test(arg)) {
    throw new TypeError(`argument ${JSON.stringify(arg)} cannot be passed through ip -batch (newline, '#', '\\' or NUL)`);
  }
  const needsQuotes = arg === '' || /[ \t]/.test(arg) || arg.startsWith('"') || arg.startsWith("'");
  if (!needsQuotes) return arg;
  if (!arg.includes('"')) return `"${arg}"`;
  if (!arg.includes("'")) return `'${arg}'`;
  throw new TypeError(`argument ${JSON.stringify(arg)} cannot be passed through ip -batch (both quote kinds)`);
}

/** Scripts of frozen command lists, encoded ahead of their run (see prepareBatchScript). */
const prepared = new WeakMap<readonly (readonly string[])[], string>();

/** The batch script: one line per command, so line N is command N-1. */
export function encodeBatchScript(commands: readonly (readonly string[])[]): string {
  const known = prepared.get(commands);
  if (known !== undefined) return known;
  return commands.map((args) => args.map(encodeBatchArg).join(' ')).join('\n') + '\n';
}

/**
 * Freezes a command list and encodes its script now, while the caller has time (e.g. while an
 * earlier batch runs): running the same list later reuses the script. Frozen, so it cannot differ.
 */
export function prepareBatchScript(commands: (readonly string[])[]): readonly (readonly string[])[] {
  for (const command of commands) Object.freeze(command);
  const frozen = Object.freeze(commands);
  prepared.set(frozen, encodeBatchScript(frozen));
  return frozen;
}

const FAILED_LINE = /^Command failed (.*):(\d+)\s*$/;

/**
 * Failed lines from the stderr of `ip -force -batch -`. ip prints a line's own error text and then
 * `Command failed -:N`, so the text since the previous marker belongs to line N.
 */
export function parseBatchFailures(stderr: string, commands: readonly (readonly string[])[]): IpBatchFailure[] {
  const failures: IpBatchFailure[] = [];
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = FAILED_LINE.exec(line);
    if (!m) {
      if (line.trim() !== '') pending.push(line.trim());
      continue;
    }
    const index = Number(m[2]) - 1;
    const command = commands[index];
    if (command !== undefined) failures.push({ index, command, message: pending.join('; ') });
    pending = [];
  }
  return failures;
}
