// A datastore dir's settings file read on its own and leniently (settings.json, .yaml or .yml,
// YAML parses both): for the few facts sc needs before, or without, loading a whole datastore —
// which source to use, whether its revisions must be signed. Problems in the file are reported
// when that datastore is loaded, not here.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface SettingsFacts {
  readonly source?: { readonly url?: unknown; readonly ref?: unknown; readonly verify?: unknown };
}

/** The parsed settings of `dir`; undefined when it has no settings file or the file does not parse. */
export async function readSettingsFile(dir: string): Promise<SettingsFacts | undefined> {
  for (const name of ['settings.json', 'settings.yaml', 'settings.yml']) {
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    try {
      const settings = parse(text) as unknown;
      return settings !== null && typeof settings === 'object' ? (settings as SettingsFacts) : {};
    } catch {
      return undefined;
    }
  }
  return undefined;
}
