// The git source a host is configured with in its own settings (SPEC §4, issue 6): `source.url`
// (+ `source.ref`) in the settings of the static dir /etc/srvctl/data, else of the read-write or
// read-only datastore, all under --root. With it, `sc diff`, `sc apply`, `sc status` and
// `sc reconcile` without --source/--datastore all work on the same desired state: the repository.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { READ_ONLY_DATASTORE, READ_WRITE_DATASTORE, STATIC_DATA_DIR } from './datastore-location.js';

const SETTINGS_FILES = ['settings.json', 'settings.yaml', 'settings.yml'];

/** `URL[#REF]` from the first of the host's settings files that names a source; undefined when none does. */
export async function sourceFromHostSettings(root: string): Promise<string | undefined> {
  for (const dir of [STATIC_DATA_DIR, READ_WRITE_DATASTORE, READ_ONLY_DATASTORE]) {
    for (const name of SETTINGS_FILES) {
      let text: string;
      try {
        text = await readFile(join(root, dir, name), 'utf8');
      } catch {
        continue;
      }
      let settings: { source?: { url?: unknown; ref?: unknown } } | null;
      try {
        settings = parse(text) as typeof settings;
      } catch {
        continue; // an unreadable settings file is reported when that datastore is loaded
      }
      const url = settings?.source?.url;
      if (typeof url === 'string' && url !== '') {
        const ref = settings?.source?.ref;
        return typeof ref === 'string' && ref !== '' ? `${url}#${ref}` : url;
      }
    }
  }
  return undefined;
}
