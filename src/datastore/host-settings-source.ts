// The git source a host is configured with in its own settings (SPEC §4, issue 6): `source.url`
// (+ `source.ref`) in the settings of the static dir /etc/srvctl/data, else of the read-write or
// read-only datastore, all under --root. With it, `sc diff`, `sc apply`, `sc status` and
// `sc reconcile` without --source/--datastore all work on the same desired state: the repository.
import { join } from 'node:path';
import { READ_ONLY_DATASTORE, READ_WRITE_DATASTORE, STATIC_DATA_DIR } from './datastore-location.js';
import { readSettingsFile } from './settings-file.js';

/** `URL[#REF]` from the first of the host's settings files that names a source; undefined when none does. */
export async function sourceFromHostSettings(root: string): Promise<string | undefined> {
  for (const dir of [STATIC_DATA_DIR, READ_WRITE_DATASTORE, READ_ONLY_DATASTORE]) {
    const source = (await readSettingsFile(join(root, dir)))?.source;
    if (typeof source?.url === 'string' && source.url !== '') {
      return typeof source.ref === 'string' && source.ref !== '' ? `${source.url}#${source.ref}` : source.url;
    }
  }
  return undefined;
}
