// Host paths under --root: every file sc reads or writes goes through hostPath, so a test (or a
// second simulated host) never touches the machine's real /etc, /srv or /run.
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FilesDriver } from './types.js';

export function createFilesDriver(root: string): FilesDriver {
  if (root === '') throw new UserError('--root must not be empty (use / for the real host)');
  const base = path.resolve(root);
  const prefix = base.endsWith(path.sep) ? base : base + path.sep;

  return {
    hostPath(hostPath: string): string {
      if (hostPath.includes('\0')) throw new UserError(`host path ${JSON.stringify(hostPath)} contains a NUL byte`);
      // Host paths are written as absolute paths of the real host; under --root they are relative.
      const full = path.resolve(base, hostPath.replace(/^\/+/, ''));
      if (full !== base && !full.startsWith(prefix)) {
        throw new UserError(`host path ${JSON.stringify(hostPath)} escapes the root ${base}`);
      }
      return full;
    },
  };
}
