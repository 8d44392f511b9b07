// Whether containers answer, for `sc status`: one short ping per container from the host's
// network namespace (through the exec layer, so --netns applies), several at once.
import PQueue from 'p-queue';
import type { Exec } from '../drivers/types.js';

/** Parallel pings: enough to make 200 containers quick, few enough not to flood a small host. */
const PROBE_CONCURRENCY = 16;
/** ping's own deadline; the exec timeout is a safety net above it. */
const PING_WAIT_SECONDS = 1;
const PROBE_TIMEOUT_MS = 3_000;

export interface ProbeTarget {
  readonly name: string;
  readonly ip: string;
}

/** name → whether the container's address answered one ping within a second. */
export async function probeContainers(exec: Exec, targets: readonly ProbeTarget[]): Promise<Map<string, boolean>> {
  const queue = new PQueue({ concurrency: PROBE_CONCURRENCY });
  const answers = new Map<string, boolean>();
  await Promise.all(
    targets.map((target) =>
      queue.add(async () => {
        try {
          const result = await exec.run('ping', ['-n', '-q', '-c', '1', '-W', String(PING_WAIT_SECONDS), target.ip], {
            allowFailure: true,
            timeoutMs: PROBE_TIMEOUT_MS,
          });
          answers.set(target.name, result.exitCode === 0);
        } catch {
          // ping missing or killed: the container's answer is unknown, which reads as "no".
          answers.set(target.name, false);
        }
      }),
    ),
  );
  return answers;
}
