// A datastore dir's settings file read on its own and leniently (settings.json, .yaml or .yml,
// YAML parses both): for the few facts sc needs before, or without, loading a whole datastore —
// which source to use, whether its revisions must be signed. Problems in the file are reported
// when that datastore is loaded, not here.
import { parse } from 'yaml';
import { readTextNoFollow } from '../drivers/no-follow-fs.js';
import { UserError } from '../errors.js';

export interface SettingsFacts {
  readonly source?: { readonly url?: unknown; readonly ref?: unknown; readonly verify?: unknown };
}

/** The parsed settings of `dir`; undefined when it has no settings file or the file does not parse. */
export async function readSettingsFile(dir: string): Promise<SettingsFacts | undefined> {
  for (const name of ['settings.json', 'settings.yaml', 'settings.yml']) {
    // Never through a link or from a special file (refused: UserError); an unreadable file reads as
    // no settings here and is reported when the datastore is loaded.
    let text: string | undefined;
    try {
      text = await readTextNoFollow(dir, name, { maxBytes: 1 << 20 });
    } catch (error) {
      // A link or special file in place of the settings is refused outright: its verify setting must not read as "off".
      if (error instanceof UserError) throw error;
      return undefined;
    }
    if (text === undefined) continue;
    try {
      const settings = parse(text) as unknown;
      return settings !== null && typeof settings === 'object' ? settings : {};
    } catch {
      return undefined;
    }
  }
  return undefined;
}
