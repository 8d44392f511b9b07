// The iproute2 driver: bulk reads with `ip -json` (one process per kind of object, whatever the
// number of links) and writes through one `ip -force -batch -` process.
import { HostCommandError } from '../errors.js';
import { encodeBatchScript, IpBatchError, parseBatchFailures } from './ip-batch.js';
import type { Exec, IpAddrEntry, IpDriver, IpLink } from './types.js';

/** ip prints this when links change while it dumps them (sandbox.md §11.6); the dump is retried. */
const INTERRUPTED_DUMP = 'Dump was interrupted';
const DUMP_ATTEMPTS = 5;
/** Deleting a link can take ~50 ms in the kernel (sandbox.md §11.5): big batches get more time. */
const BATCH_BASE_TIMEOUT_MS = 60_000;
const BATCH_PER_COMMAND_MS = 100;

export function createIpDriver(exec: Exec): IpDriver {
  const dumpJson = async <T>(args: string[], prepare: (stdout: string) => string = (text) => text): Promise<T[]> => {
    for (let attempt = 1; ; attempt++) {
      // Dumps run while sc loads the datastore: through a file, ip never waits for sc to read.
      const result = await exec.run('ip', args, { allowFailure: true, bulkOutput: true });
      const interrupted = result.stderr.includes(INTERRUPTED_DUMP);
      if (interrupted && attempt < DUMP_ATTEMPTS) continue;
      if (result.exitCode !== 0 || interrupted) {
        throw new HostCommandError(result.command, result.exitCode, result.stderr, result.stdout, {
          retryable: interrupted,
          reason: interrupted ? `dump still interrupted after ${attempt} attempts` : undefined,
        });
      }
      return parseJsonArray<T>(result.command, result.stdout, prepare);
    }
  };

  const readLinks = () => dumpJson<IpLink>(['-json', '-details', 'link', 'show'], withoutKindData);
  // IPv4 only: on a host with thousands of bridges the kernel's IPv6 link-local entries would more
  // than double the dump (and its parsing), and sc reads nothing of them.
  const readAddresses = () => dumpJson<IpAddrEntry>(['-4', '-json', 'addr', 'show']);

  /** Dumps shared while a share is open (or after prefetch()); undefined: every call reads afresh. */
  let shared: { links?: Promise<IpLink[]>; addresses?: Promise<IpAddrEntry[]> } | undefined;
  let shares = 0;
  // A prefetched dump that no pass consumes (the command failed first) must not be reported as an
  // unhandled rejection; whoever consumes it still sees the error.
  const quiet = <T>(promise: Promise<T>): Promise<T> => {
    promise.catch(() => undefined);
    return promise;
  };

  return {
    listLinks: () => (shared ? (shared.links ??= quiet(readLinks())) : readLinks()),
    listAddresses: () => (shared ? (shared.addresses ??= quiet(readAddresses())) : readAddresses()),

    prefetch() {
      shared ??= {};
      shared.links ??= quiet(readLinks());
      shared.addresses ??= quiet(readAddresses());
    },

    shareReads() {
      shares++;
      shared ??= {};
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        if (--shares === 0) shared = undefined;
      };
    },

    async batch(commands) {
      if (commands.length === 0) return;
      // What was read before (or during) a change is stale after it.
      shared = shares > 0 ? {} : undefined;
      try {
        await runBatch(commands);
      } finally {
        shared = shares > 0 ? {} : undefined;
      }
    },
  };

  async function runBatch(commands: readonly (readonly string[])[]): Promise<void> {
    const single = commands.length === 1 ? commands[0] : undefined;
    const result = single
      ? await exec.run('ip', single, { allowFailure: true })
      : await exec.run('ip', ['-force', '-batch', '-'], {
          input: encodeBatchScript(commands),
          allowFailure: true,
          timeoutMs: BATCH_BASE_TIMEOUT_MS + BATCH_PER_COMMAND_MS * commands.length,
        });
    if (result.exitCode === 0) return;
    let failures = single ? [{ index: 0, command: single, message: result.stderr.trim() }] : parseBatchFailures(result.stderr, commands);
    // A fatal error (e.g. ip's own tokenizer) stops the batch without naming a line: nothing
    // can be said about which commands ran, so every one counts as failed.
    if (failures.length === 0) {
      failures = commands.map((command, index) => ({ index, command, message: result.stderr.trim() }));
    }
    throw new IpBatchError(result.command, result.exitCode, failures, result.stderr, commands.length);
  }
}

/**
 * `-details` is read for each link's kind (linkinfo.info_kind), but it also prints every kind's
 * settings (info_data: ~45 fields per bridge) and a port's settings in its master
 * (info_slave_data), which sc never reads: on a host with thousands of bridges they are most of
 * the dump, and parsing them made most of a converged diff's garbage. Both members are cut from
 * the text before it is parsed. Only flat objects are cut (strings in them may hold anything); a
 * kind whose data nests objects keeps its data, which is merely parsed and not read.
 */
const KIND_DATA = /,"info_(?:slave_)?data":\{[^{}"]*(?:"(?:[^"\\]|\\.)*"[^{}"]*)*\}/g;

export function withoutKindData(text: string): string {
  return text.replace(KIND_DATA, '');
}

function parseJsonArray<T>(command: readonly string[], stdout: string, prepare: (stdout: string) => string = (text) => text): T[] {
  const text = prepare(stdout).trim();
  if (text === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new HostCommandError([...command], 0, `could not parse its JSON output: ${String(cause)}`, stdout.slice(0, 200), {
      cause,
    });
  }
  if (!Array.isArray(parsed)) {
    throw new HostCommandError([...command], 0, 'expected a JSON array on stdout', stdout.slice(0, 200));
  }
  return parsed as T[];
}
