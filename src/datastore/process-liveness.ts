// Whether a process still exists: decides if a lock or temp file left behind by a pid is stale.

/** True unless the pid certainly does not exist (EPERM means it exists under another user). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
