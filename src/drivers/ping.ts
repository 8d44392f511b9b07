// The ping driver: whether containers answer on their address, from the host's network namespace
// (through the exec layer, so --netns applies). One short ping per container, several at once;
// `unknown` — never `no`, never `yes` — when ping itself could not be run.
import PQueue from 'p-queue';
import type { Exec } from './types.js';

/** Parallel pings: enough to make 200 containers quick, few enough not to flood a small host. */
const PROBE_CONCURRENCY = 16;
/** ping's own deadline; the exec timeout is a safety net above it. */
const PING_WAIT_SECONDS = 1;
const PROBE_TIMEOUT_MS = 3_000;
const POLL_INTERVAL_MS = 500;

export type Answer = 'yes' | 'no' | 'unknown';

export interface PingTarget {
  readonly name: string;
  readonly ip: string;
}

export interface PingDriver {
  /** name → whether the address answered one ping within a second (unknown: ping could not run). */
  probe(targets: readonly PingTarget[]): Promise<Map<string, Answer>>;
  /**
   * Probes every target, then re-probes those in `waitFor` that did not answer until they do or
   * `timeoutMs` has passed (a container just started or repaired may need a moment).
   */
  waitForAnswers(targets: readonly PingTarget[], waitFor: ReadonlySet<string>, timeoutMs: number): Promise<Map<string, Answer>>;
}

/** ping's arguments: numeric, quiet, one packet, one second. */
export const pingArgs = (ip: string): string[] => ['-n', '-q', '-c', '1', '-W', String(PING_WAIT_SECONDS), ip];

export function createPingDriver(exec: Exec): PingDriver {
  const probe = async (targets: readonly PingTarget[]): Promise<Map<string, Answer>> => {
    const queue = new PQueue({ concurrency: PROBE_CONCURRENCY });
    const answers = new Map<string, Answer>();
    await Promise.all(
      targets.map((target) =>
        queue.add(async () => {
          try {
            const result = await exec.run('ping', pingArgs(target.ip), { allowFailure: true, timeoutMs: PROBE_TIMEOUT_MS });
            // 1: no reply; 2 and above: ping failed (no permission, bad address) — it saw nothing.
            answers.set(target.name, result.exitCode === 0 ? 'yes' : result.exitCode === 1 ? 'no' : 'unknown');
          } catch {
            // ping missing or killed: whether the container answers is not known.
            answers.set(target.name, 'unknown');
          }
        }),
      ),
    );
    return answers;
  };

  return {
    probe,
    async waitForAnswers(targets, waitFor, timeoutMs) {
      const answers = await probe(targets);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const pending = targets.filter((t) => waitFor.has(t.name) && answers.get(t.name) === 'no');
        if (pending.length === 0 || Date.now() >= deadline) return answers;
        await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
        for (const [name, answer] of await probe(pending)) answers.set(name, answer);
      }
    },
  };
}
