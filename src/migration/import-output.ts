// Writes an imported datastore to --out all at once: the files go into a fresh directory next to
// --out, which is renamed into place at the end, so a failed import leaves nothing behind. A
// non-empty --out is refused unless --force; then the files are swapped in one rename each and
// everything else there (a .git, a README) stays.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import { UserError } from '../errors.js';
import { MIGRATION_REPORT_FILE } from './migration-report.js';

export interface WriteImportResult {
  /** Absolute path of the datastore written. */
  readonly dir: string;
  readonly files: string[];
  /** Files of an earlier import that this one no longer writes, removed. */
  readonly removed: string[];
}

const isNotFound = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** The file names an earlier import wrote, from its report (nothing when there is none or it is unreadable). */
async function earlierImportFiles(dir: string): Promise<string[]> {
  try {
    const report = JSON.parse(await fs.readFile(path.join(dir, MIGRATION_REPORT_FILE), 'utf8')) as { files?: unknown };
    return Array.isArray(report.files)
      ? report.files.filter((f): f is string => typeof f === 'string' && /^[a-z0-9][a-z0-9._-]*\.json$/.test(f))
      : [];
  } catch {
    return [];
  }
}

export async function writeImportedDatastore(
  out: string,
  files: Readonly<Record<string, string>>,
  options: { force?: boolean } = {},
): Promise<WriteImportResult> {
  let dir = path.resolve(out);
  let entries: string[] | undefined;
  try {
    const info = await fs.lstat(dir);
    if (info.isSymbolicLink()) dir = await fs.realpath(dir);
    if (!(await fs.stat(dir)).isDirectory()) throw new UserError(`--out ${out} exists and is not a directory`);
    entries = await fs.readdir(dir);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const names = Object.keys(files);
  if (entries !== undefined && entries.length > 0) {
    if (!options.force) {
      throw new UserError(
        `--out ${out} is not empty (${entries.length} entries): choose a new directory, or pass --force to replace the imported files in it (other files stay)`,
      );
    }
    // Another format of a datastore file would make the datastore ambiguous.
    const clash = entries.filter((e) => /^(clusters|users|containers|settings)\.(ya?ml)$/.test(e) && names.includes(e.replace(/\.ya?ml$/, '.json')));
    if (clash.length)
      throw new UserError(
        `--out ${out} holds ${clash.join(', ')}: the import writes the .json files; remove ${clash.length === 1 ? 'it' : 'them'} first`,
      );
  }

  const parent = path.dirname(dir);
  await fs.mkdir(parent, { recursive: true });
  const temp = path.join(parent, `.${path.basename(dir)}.sc-import-${process.pid}-${randomBytes(3).toString('hex')}`);
  await fs.mkdir(temp, { mode: 0o755 });
  try {
    for (const name of names) await writeFileAtomic(path.join(temp, name), files[name] as string);
    if (entries === undefined || entries.length === 0) {
      // rename(2) replaces an empty directory in one step.
      await fs.rename(temp, dir);
      return { dir, files: names, removed: [] };
    }
    const stale = (await earlierImportFiles(dir)).filter((f) => !names.includes(f));
    for (const name of names) await fs.rename(path.join(temp, name), path.join(dir, name));
    for (const name of stale) await fs.rm(path.join(dir, name), { force: true });
    await fs.rm(temp, { recursive: true, force: true });
    return { dir, files: names, removed: stale };
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    throw error;
  }
}
