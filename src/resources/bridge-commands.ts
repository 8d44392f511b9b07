// The ip commands that create, converge and delete one user bridge, as argument arrays (each
// without the leading `ip`). Pure, so the exact command lines are unit-tested.
import { SC_LINK_ALIAS_PREFIX } from '../network/interface-names.js';

/** The ifalias sc puts on its bridges: the visible ownership mark. */
export const BRIDGE_ALIAS_PREFIX = `${SC_LINK_ALIAS_PREFIX}bridge`;

/**
 * The kernel ignores an alias given to `ip link add`, so the alias can only be set by a second
 * command; a run killed between the two would leave an unmarked bridge that sc could never touch
 * again. The device group, unlike the alias, is applied by `link add` itself: it is the mark a
 * bridge carries from its first instant. An arbitrary fixed number (0x5c54).
 */
export const SC_BRIDGE_GROUP = 23636;

/** What sc sets on a bridge it owns. */
export interface BridgeSettings {
  readonly addresses: readonly string[];
  readonly up: boolean;
  readonly alias?: string;
}

export const bridgeAlias = (username: string): string => `${BRIDGE_ALIAS_PREFIX} user=${username}`;

/** `user=alice` → `alice`, for descriptions of observed bridges. */
export function userOfBridgeAlias(alias: string | undefined): string | undefined {
  if (alias === undefined || !alias.startsWith(`${BRIDGE_ALIAS_PREFIX} `)) return undefined;
  return /(?:^| )user=(\S+)/.exec(alias.slice(BRIDGE_ALIAS_PREFIX.length))?.[1];
}

export function addBridgeCommand(name: string): string[] {
  return ['link', 'add', 'name', name, 'group', String(SC_BRIDGE_GROUP), 'type', 'bridge'];
}

export function deleteBridgeCommand(name: string): string[] {
  return ['link', 'del', 'dev', name];
}

/**
 * Brings a bridge from `have` (undefined: just created, bare) to `want`: the mark first, so a
 * bridge that holds its address always says whose it is; wrong addresses are removed before the
 * right one is added.
 */
export function convergeBridgeCommands(name: string, want: BridgeSettings, have?: BridgeSettings): string[][] {
  const commands: string[][] = [];
  if (want.alias !== undefined && want.alias !== have?.alias) {
    commands.push(['link', 'set', 'dev', name, 'alias', want.alias]);
  }
  const had = new Set(have?.addresses ?? []);
  const wanted = new Set(want.addresses);
  for (const cidr of had) if (!wanted.has(cidr)) commands.push(['addr', 'del', cidr, 'dev', name]);
  for (const cidr of wanted) if (!had.has(cidr)) commands.push(['addr', 'add', cidr, 'broadcast', '+', 'dev', name]);
  if (want.up !== (have?.up ?? false)) commands.push(['link', 'set', 'dev', name, want.up ? 'up' : 'down']);
  return commands;
}
