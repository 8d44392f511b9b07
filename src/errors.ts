// Typed errors: each carries the exit code the CLI maps it to, and whether a retry may help.
// Bad input is collected as Diagnostics (file, line, column, JSON path) and thrown once.

export interface Diagnostic {
  severity: 'error' | 'warning';
  /** Path of the file as the user gave it (relative to the datastore dir when possible). */
  file?: string;
  line?: number;
  column?: number;
  /** JSON pointer into the file's document, e.g. `/shop.example.com/user`. */
  path?: string;
  message: string;
}

/**
 * Text from input made safe to print: control characters escaped (a newline in a name cannot forge
 * an output line), and cut to `max` characters with a note of how much was left out.
 */
export function boundText(text: string, max = 300): string {
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max)}… (${escaped.length - max} more characters)` : escaped;
}

/** A diagnostic whose message and JSON path are bounded and escaped (see boundText). */
export function boundDiagnostic(d: Diagnostic): Diagnostic {
  return {
    ...d,
    message: boundText(d.message, 400),
    ...(d.path !== undefined ? { path: boundText(d.path, 200) } : {}),
    ...(d.file !== undefined ? { file: boundText(d.file, 400) } : {}),
  };
}

/** `containers.yaml:14:7 /shop.example.com/user: unknown user "bob"` */
export function formatDiagnostic(d: Diagnostic): string {
  let where = d.file ?? '';
  if (d.file !== undefined && d.line !== undefined) where += `:${d.line}:${d.column ?? 1}`;
  const path = d.path !== undefined ? `${d.path === '' ? '/' : d.path}` : '';
  const head = [where, path].filter(Boolean).join(' ');
  return `${d.severity === 'warning' ? 'warning: ' : ''}${head ? `${head}: ` : ''}${d.message}`;
}

/** Base class: `exitCode` is what the CLI exits with; `retryable` tells the executor whether to retry. */
export class ScError extends Error {
  readonly exitCode: number = 1;
  readonly retryable: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input from the operator (arguments, datastore content). Exit 1, nothing changed. */
export class UserError extends ScError {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
  }
}

/**
 * A host command failed: keeps the command line, exit code and stderr. Its stdout is neither kept
 * nor shown, even when stderr is empty: a command that handles keys (`openssl genpkey`) prints
 * them on stdout, and an error message ends up in logs and status files.
 */
export class HostCommandError extends ScError {
  override readonly retryable: boolean;
  constructor(
    readonly command: string[],
    readonly code: number | undefined,
    readonly stderr: string,
    _stdout = '',
    options: { retryable?: boolean; cause?: unknown; reason?: string } = {},
  ) {
    super(
      `${command.join(' ')} failed${code !== undefined ? ` (exit ${code})` : ''}${options.reason ? ` (${options.reason})` : ''}: ${stderr.trim() || 'no message on stderr'}`,
      { cause: options.cause },
    );
    this.retryable = options.retryable ?? false;
  }
}

/** A foreign object (not created by sc) is in the way of a desired one. sc never touches it. */
export class ConflictError extends ScError {}

/** Another sc process holds the lock. */
export class LockHeldError extends ScError {
  constructor(
    readonly lockPath: string,
    readonly holder: string,
  ) {
    super(`another sc process holds ${lockPath} (${holder}); wait for it to finish, or stop it`);
  }
}

/** A path sc refused because a component is a symlink or not the kind of file expected (never followed). */
export class UnsafePathError extends UserError {}
