// The nftables driver: reads one table with `nft -j list table` (a missing table is no error) and
// loads rulesets atomically with `nft -f -` on stdin. It knows nft's JSON shape, not sc's rules.
import { HostCommandError } from '../errors.js';
import type { Exec } from './types.js';

export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

/** One entry of the `nftables` array of `nft -j` output: `{table: …}`, `{map: …}`, `{rule: …}`, … */
export type NftObject = Readonly<Record<string, unknown>>;

export interface NftDriver {
  /**
   * The objects of one table (without nft's `metainfo`) from one `nft -j list table` call, or
   * undefined when the table does not exist.
   */
  listTable(family: NftFamily, name: string): Promise<NftObject[] | undefined>;
  /** Loads a ruleset with `nft -f -`: nft applies the whole script in one transaction or none of it. */
  load(script: string): Promise<void>;
}

/** How nft 1.0 reports a table that is not there (`Error: No such file or directory`). */
const NO_SUCH_TABLE = /No such file or directory/;

export function createNftDriver(exec: Exec): NftDriver {
  return {
    async listTable(family, name) {
      const result = await exec.run('nft', ['-j', 'list', 'table', family, name], { allowFailure: true });
      if (result.exitCode !== 0) {
        if (NO_SUCH_TABLE.test(result.stderr)) return undefined;
        throw new HostCommandError(result.command, result.exitCode, result.stderr, result.stdout);
      }
      return parseNftJson(result.command, result.stdout);
    },

    async load(script) {
      await exec.run('nft', ['-f', '-'], { input: script });
    },
  };
}

/** The `nftables` array of `nft -j` output minus `metainfo`; throws HostCommandError on anything else. */
export function parseNftJson(command: readonly string[], stdout: string): NftObject[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (cause) {
    throw new HostCommandError([...command], 0, `could not parse its JSON output: ${String(cause)}`, stdout.slice(0, 200), { cause });
  }
  const list = isRecord(parsed) ? parsed['nftables'] : undefined;
  if (!Array.isArray(list)) {
    throw new HostCommandError([...command], 0, 'expected {"nftables": [...]} on stdout', stdout.slice(0, 200));
  }
  return list.filter((entry): entry is NftObject => isRecord(entry) && !('metainfo' in entry)).map(withJoinedTypes);
}

/**
 * nft 1.0 writes a concatenated set or map type as one string (`"ipv4_addr . inet_service"`),
 * nft 1.1 (Debian 13) as an array (`["ipv4_addr", "inet_service"]`): readers get the 1.0 form.
 */
function withJoinedTypes(entry: NftObject): NftObject {
  const kind = 'map' in entry ? 'map' : 'set' in entry ? 'set' : undefined;
  const body = kind === undefined ? undefined : entry[kind];
  if (kind === undefined || !isRecord(body)) return entry;
  const joined = (value: unknown) => (Array.isArray(value) && value.every((v) => typeof v === 'string') ? value.join(' . ') : value);
  const fixed: Record<string, unknown> = { ...body };
  for (const key of ['type', 'map']) if (key in fixed) fixed[key] = joined(fixed[key]);
  return { ...entry, [kind]: fixed };
}

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
