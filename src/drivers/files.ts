// Host paths under --root: every file sc reads or writes goes through this driver, so a test (or a
// second simulated host) never touches the machine's real /etc, /srv or /run, and nothing below a
// trusted directory is reached through a symlink (see no-follow-fs.ts).
import path from 'node:path';
import { UserError } from '../errors.js';
import { listNoFollow, mkdirNoFollow, readNoFollow, removeNoFollow, statNoFollow, UnsafePathError, writeNoFollow } from './no-follow-fs.js';
import type { FilesDriver, FilesScope } from './types.js';

export function createFilesDriver(root: string): FilesDriver {
  if (root === '') throw new UserError('--root must not be empty (use / for the real host)');
  const base = path.resolve(root);
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;

  function hostPath(hostPath: string): string {
    if (hostPath.includes('\0')) throw new UserError(`host path ${JSON.stringify(hostPath)} contains a NUL byte`);
    // Host paths are written as absolute paths of the real host; under --root they are relative.
    const full = path.resolve(base, hostPath.replace(/^\/+/, ''));
    if (full !== base && !full.startsWith(prefix)) {
      throw new UserError(`host path ${JSON.stringify(hostPath)} escapes the root ${base}`);
    }
    return full;
  }

  /** The trusted directory (absolute) and the path below it, which is walked without following symlinks. */
  function split(p: string, scope: FilesScope | undefined): { trusted: string; rel: string } {
    const trusted = hostPath(scope?.within ?? '/');
    const full = hostPath(p);
    const rel = path.relative(trusted, full);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new UnsafePathError(`host path ${JSON.stringify(p)} is outside ${JSON.stringify(scope?.within ?? '/')}`);
    }
    return { trusted, rel };
  }

  return {
    hostPath,
    async read(p, options) {
      const { trusted, rel } = split(p, options);
      const data = await readNoFollow(trusted, rel, options);
      return data?.toString('utf8');
    },
    async readBytes(p, options) {
      const { trusted, rel } = split(p, options);
      return readNoFollow(trusted, rel, options);
    },
    async write(p, content, options = {}) {
      const { trusted, rel } = split(p, options);
      return writeNoFollow(trusted, rel, content, options);
    },
    async remove(p, options) {
      const { trusted, rel } = split(p, options);
      return removeNoFollow(trusted, rel);
    },
    async list(p, options) {
      const { trusted, rel } = split(p, options);
      return listNoFollow(trusted, rel);
    },
    async stat(p, options) {
      const { trusted, rel } = split(p, options);
      return statNoFollow(trusted, rel);
    },
    async mkdir(p, options = {}) {
      const { trusted, rel } = split(p, options);
      await mkdirNoFollow(trusted, rel, options);
    },
  };
}
