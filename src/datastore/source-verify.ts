// Whether revisions of a git source must carry a good signature. `source.verify` is honoured from
// the revision in force (the cache's current checkout), not only from the new revision itself: a
// new commit cannot switch off the check it is subject to.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { sourceCacheDir } from './git-source.js';

/**
 * settings.source.verify of the revision checked out in the cache now, read from its settings file
 * alone (a revision whose other files are invalid still says whether signatures are required);
 * false when there is no cache or no such setting.
 */
export async function verifyRequiredInForce(root: string): Promise<boolean> {
  for (const name of ['settings.json', 'settings.yaml', 'settings.yml']) {
    let text: string;
    try {
      text = await readFile(join(sourceCacheDir(root), name), 'utf8');
    } catch {
      continue;
    }
    try {
      const settings = parse(text) as { source?: { verify?: unknown } } | null;
      return settings?.source?.verify === true;
    } catch {
      return false;
    }
  }
  return false;
}
