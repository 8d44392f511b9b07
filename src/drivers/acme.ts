// The acme driver: runs sc's ACME worker (acme-worker.ts) as a process in --netns — the ACME
// server is reached, and validates, from this host's network — with the job on stdin (keys never
// on a command line) and the certificates back as JSON on stdout.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScError } from '../errors.js';
import type { AcmeJob, AcmeOutcome } from './acme-worker.js';
import type { Exec } from './types.js';

export type { AcmeJob, AcmeOutcome } from './acme-worker.js';

/** Where the worker answers HTTP-01 challenges (inside the namespace); the proxy forwards there. */
export const ACME_RESPONDER_PORT = 8402;

export interface AcmeDriver {
  /** Orders every certificate of the job; one outcome per name, failures included. */
  issue(job: Omit<AcmeJob, 'responderPort'>, options?: { readonly caFile?: string }): Promise<AcmeOutcome[]>;
}

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'acme-worker.js');

export function createAcmeDriver(exec: Exec): AcmeDriver {
  return {
    async issue(job, options = {}) {
      const input = JSON.stringify({ ...job, responderPort: ACME_RESPONDER_PORT });
      const result = await exec.run(process.execPath, [WORKER], {
        input,
        // Pebble and other private ACME servers: trust their CA for this process only.
        env: options.caFile !== undefined ? { NODE_EXTRA_CA_CERTS: options.caFile } : {},
        timeoutMs: 120_000 + 60_000 * job.orders.length,
        allowFailure: true,
      });
      if (result.exitCode !== 0) throw new ScError(`the ACME worker failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
      const outcomes = JSON.parse(result.stdout) as AcmeOutcome[];
      if (!Array.isArray(outcomes)) throw new ScError('the ACME worker answered something else than a list of outcomes');
      return outcomes;
    },
  };
}
