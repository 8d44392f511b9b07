#!/usr/bin/env node
// Entry point of `sc` / `srvctl`: parse, run one command, exit through process.exitCode.
import { CommanderError } from 'commander';
import { createProgram } from './program.js';

try {
  await (await createProgram(process.argv)).parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; usage errors (already printed by commander) exit 1.
    process.exitCode = error.exitCode === 0 ? 0 : 1;
  } else {
    process.stderr.write(`error: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
