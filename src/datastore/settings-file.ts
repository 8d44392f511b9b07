// A datastore dir's settings file read on its own and leniently (settings.json, .yaml or .yml,
// YAML parses both): for the few facts sc needs before, or without, loading a whole datastore —
// which source to use, whether its revisions must be signed. Problems in the file are reported
// when that datastore is loaded, not here.
import { readTextNoFollow } from '../drivers/no-follow-fs.js';
import { UserError } from '../errors.js';
import { jsonShape, memberCount } from './json-syntax.js';
import { LIMITS } from './limits.js';
import { loadYaml } from './yaml-module.js';

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
      const json = name === 'settings.json' ? plainJson(text) : undefined;
      const settings = json !== undefined ? json.value : await yamlData(text);
      return settings !== null && typeof settings === 'object' ? settings : {};
    } catch {
      return undefined;
    }
  }
  return undefined;
}

async function yamlData(text: string): Promise<unknown> {
  return (await loadYaml()).parse(text) as unknown;
}

/**
 * settings.json's data by JSON.parse, without loading the yaml package, when that is what the yaml
 * parser would give: well-formed JSON, no key twice in one object (the yaml parser refuses that,
 * JSON.parse keeps the last), nesting within the limit. Otherwise undefined: the yaml parser decides.
 */
function plainJson(text: string): { value: unknown } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const shape = jsonShape(text);
  return shape.depth <= LIMITS.depth && shape.members === memberCount(value) ? { value } : undefined;
}
