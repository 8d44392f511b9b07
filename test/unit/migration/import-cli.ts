// Runs `sc …` in this process (the real command tree, no build needed) and captures what it prints
// and the exit code it sets — for unit tests of the import's command line.
import { CommanderError } from 'commander';
import { createProgram } from '../../../src/cli/program.js';

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: readonly string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = (chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  };
  process.stderr.write = (chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  };
  const previous = process.exitCode;
  process.exitCode = undefined;
  let exitCode: number;
  try {
    const argv = ['node', 'sc', ...args];
    await (await createProgram(argv)).parseAsync(argv);
    exitCode = Number(process.exitCode ?? 0);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    exitCode = error.exitCode === 0 ? 0 : 1;
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
    process.exitCode = previous;
  }
  return { exitCode, stdout: out.join(''), stderr: err.join('') };
}
