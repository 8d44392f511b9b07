// A fake driver set for handler unit tests: ip reads come from fixtures or data, every batch is
// recorded, and chosen lines can be made to fail the way a real `ip -force -batch` reports them.
import { readFileSync } from 'node:fs';
import { IpBatchError } from '../../../src/drivers/ip-batch.js';
import type { Drivers, IpAddrEntry, IpLink } from '../../../src/drivers/types.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { baseDrivers } from '../../../src/drivers/create-drivers.js';

export const ipFixture = <T>(name: string): T[] => JSON.parse(readFileSync(new URL(`../../fixtures/ip/${name}`, import.meta.url), 'utf8')) as T[];

export interface RecordingDrivers extends Drivers {
  /** Each ip.batch call's commands. */
  readonly batches: string[][][];
  /** Reads of the link and address tables. */
  readonly reads: string[];
}

export function recordingDrivers(
  options: {
    links?: IpLink[];
    addresses?: IpAddrEntry[];
    /** Lines (joined with spaces) that fail, with ip's message. */
    failing?: Record<string, string>;
  } = {},
): RecordingDrivers {
  const batches: string[][][] = [];
  const reads: string[] = [];
  const failing = options.failing ?? {};
  return {
    batches,
    reads,
    ...baseDrivers({ run: () => Promise.reject(new Error('unexpected exec in a unit test')) }, createFilesDriver('/fake-root')),
    ip: {
      async listLinks() {
        reads.push('links');
        return options.links ?? ipFixture<IpLink>('link-show-details.json');
      },
      async listAddresses() {
        reads.push('addresses');
        return options.addresses ?? ipFixture<IpAddrEntry>('addr-show.json');
      },
      async batch(commands) {
        const copy = commands.map((c) => [...c]);
        batches.push(copy);
        const failures = copy
          .map((command, index) => ({ index, command, message: failing[command.join(' ')] }))
          .filter((f): f is { index: number; command: string[]; message: string } => f.message !== undefined);
        if (failures.length > 0) throw new IpBatchError(['ip', '-force', '-batch', '-'], 1, failures, '', copy.length);
      },
    },
  };
}
