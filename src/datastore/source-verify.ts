// Whether revisions of a git source must carry a good signature. `source.verify` is honoured from
// the revision in force (the cache's current checkout), not only from the new revision itself: a
// new commit cannot switch off the check it is subject to.
import { sourceCacheDir } from './git-source.js';
import { readSettingsFile } from './settings-file.js';

/**
 * settings.source.verify of the revision checked out in the cache now, read from its settings file
 * alone (a revision whose other files are invalid still says whether signatures are required);
 * false when there is no cache or no such setting.
 */
export async function verifyRequiredInForce(root: string): Promise<boolean> {
  return (await readSettingsFile(sourceCacheDir(root)))?.source?.verify === true;
}
