// Runs one command: resolves the global options, logger and terminal once, calls the command's
// function, prints its text or JSON on stdout, maps errors to messages and exit codes.
// Exit goes through process.exitCode, never process.exit.
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { formatDiagnostic, HostCommandError, ScError, UserError, type Diagnostic } from '../errors.js';
import { globalOptions, type GlobalOptions } from './global-options.js';
import { createLogger } from './logger.js';
import { detectTerminal, type Terminal } from './terminal.js';
import { useGitLogger } from '../drivers/git.js';

export interface CommandContext {
  readonly options: GlobalOptions;
  readonly logger: Logger;
  readonly terminal: Terminal;
  /** A human notice on stderr (never in JSON output). */
  notice(text: string): void;
  /** A line on stdout (progress): at once on a terminal, otherwise with the others of the same turn; ignored in JSON mode. */
  progress(text: string): void;
}

export interface CommandResult {
  exitCode?: number;
  /** Rendered for `-o text`. */
  text?: string;
  /** Printed for `-o json`. */
  json?: unknown;
}

export async function runCommand(command: Command, fn: (ctx: CommandContext) => Promise<CommandResult>): Promise<void> {
  let json = command.optsWithGlobals<{ output?: string }>().output === 'json';
  let lines: LineSink = directLines;
  try {
    const options = globalOptions(command);
    json = options.output === 'json';
    const terminal = detectTerminal();
    const stderrTerminal = detectTerminal(process.stderr);
    lines = terminal.tty ? directLines : new CoalescedLines();
    const ctx: CommandContext = {
      options,
      logger: createLogger(options.logLevel),
      terminal,
      notice: (text) => {
        lines.flush();
        process.stderr.write(`${stderrTerminal.colors.yellow(text)}\n`);
      },
      progress: (text) => {
        if (!json) lines.write(text);
      },
    };
    useGitLogger(ctx.logger);
    const result = await fn(ctx);
    lines.flush();
    if (json) {
      if (result.json !== undefined) process.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
    } else if (result.text !== undefined && result.text !== '') {
      process.stdout.write(result.text.endsWith('\n') ? result.text : `${result.text}\n`);
    }
    process.exitCode = result.exitCode ?? 0;
  } catch (error) {
    lines.flush();
    reportError(error, json);
    process.exitCode = error instanceof ScError ? error.exitCode : 1;
  }
}

/** Progress lines on stdout. */
interface LineSink {
  write(line: string): void;
  /** Writes out what is held (before anything else is printed). */
  flush(): void;
}

const directLines: LineSink = {
  write: (line) => void process.stdout.write(`${line}\n`),
  flush: () => undefined,
};

/**
 * Off a terminal, the lines of one turn of the event loop go out in one write: an apply of
 * thousands of objects settles a whole batch at once, and a write per line cost a system call
 * each (stdout to a file or pipe is synchronous). Held at most until the next turn.
 */
class CoalescedLines implements LineSink {
  private held: string[] = [];
  private scheduled = false;

  write(line: string): void {
    this.held.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.held.length === 0) return;
    const text = `${this.held.join('\n')}\n`;
    this.held = [];
    process.stdout.write(text);
  }
}

const MAX_SHOWN_DIAGNOSTICS = 100;

function reportError(error: unknown, json: boolean): void {
  const diagnostics: Diagnostic[] = error instanceof UserError ? error.diagnostics : [];
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const body: Record<string, unknown> = { message, type: error instanceof Error ? error.name : 'Error' };
    if (diagnostics.length) body.diagnostics = diagnostics;
    if (error instanceof HostCommandError) Object.assign(body, { command: error.command, exit_code: error.code, stderr: error.stderr });
    process.stdout.write(`${JSON.stringify({ error: body }, null, 2)}\n`);
    return;
  }
  const colors = detectTerminal(process.stderr).colors;
  const errors = diagnostics.filter((d) => d.severity === 'error');
  // A datastore wrong in the same way 100,000 times needs the first few lines, not 100,000 (-o json has them all).
  for (const d of diagnostics.slice(0, MAX_SHOWN_DIAGNOSTICS))
    process.stderr.write(`${d.severity === 'error' ? colors.red('error: ') : ''}${formatDiagnostic(d)}\n`);
  if (diagnostics.length > MAX_SHOWN_DIAGNOSTICS) {
    process.stderr.write(`… and ${diagnostics.length - MAX_SHOWN_DIAGNOSTICS} more (all of them: -o json)\n`);
  }
  if (!diagnostics.length || !(error instanceof UserError) || message !== '') {
    const known = error instanceof ScError;
    process.stderr.write(
      `${colors.red('error:')} ${known ? message : `internal error: ${error instanceof Error ? (error.stack ?? message) : message}`}\n`,
    );
  }
  if (errors.length > 1) process.stderr.write(`${errors.length} errors\n`);
}
