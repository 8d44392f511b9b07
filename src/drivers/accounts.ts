// The host's account files under --root (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow):
// one read of all four, and locked edits. The lock is shadow-utils' own (`/etc/passwd.lock`
// made by link(2) from a file holding our pid, stale locks of dead processes taken over), so
// useradd, passwd or vipw never interleave with sc. Each changed file is replaced atomically
// through the files driver with its mode and owner kept (shadow stays root:shadow 0640).
import { promises as fs } from 'node:fs';
import type { AccountTexts } from '../access/account-database.js';
import { ScError } from '../errors.js';
import type { FilesDriver } from './types.js';

const FILES = { passwd: '/etc/passwd', shadow: '/etc/shadow', group: '/etc/group', gshadow: '/etc/gshadow' } as const;
type AccountFile = keyof typeof FILES;
/** shadow-utils' lock order (passwd, shadow, group, gshadow): the same order cannot deadlock with it. */
const LOCK_ORDER: readonly AccountFile[] = ['passwd', 'shadow', 'group', 'gshadow'];
const DEFAULT_MODES: Readonly<Record<AccountFile, number>> = { passwd: 0o644, group: 0o644, shadow: 0o640, gshadow: 0o640 };

export interface AccountsDriver {
  /** The four files' texts (shadow/gshadow undefined when the host has none). One read each. */
  read(): Promise<AccountTexts>;
  /**
   * Under the lock: re-reads the files, applies `change`, and writes the files whose text changed
   * (group files first, so an account never names a group that is not written yet).
   */
  edit(change: (texts: AccountTexts) => AccountTexts): Promise<void>;
}

export interface AccountsDriverOptions {
  /** How long to wait for another tool's lock (default 15 s). */
  readonly lockTimeoutMs?: number;
}

const isCode = (error: unknown, code: string): boolean => (error as NodeJS.ErrnoException | undefined)?.code === code;

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isCode(error, 'EPERM');
  }
}

/** shadow-utils' commonio lock of one file: `FILE.PID` holding the pid, hard-linked to `FILE.lock`. */
async function lockOne(file: string, deadline: number): Promise<() => Promise<void>> {
  const lock = `${file}.lock`;
  const mine = `${file}.${process.pid}`;
  await fs.writeFile(mine, String(process.pid), { flag: 'w', mode: 0o600 });
  try {
    for (;;) {
      try {
        await fs.link(mine, lock);
        return async () => {
          await fs.unlink(lock).catch(() => undefined);
        };
      } catch (error) {
        if (!isCode(error, 'EEXIST')) throw error;
      }
      const holder = Number((await fs.readFile(lock, 'utf8').catch(() => '')).trim());
      if (!processAlive(holder)) {
        // A dead holder's lock (or an empty one): shadow-utils takes it over the same way.
        await fs.unlink(lock).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new ScError(`${lock} is held by process ${holder} (useradd, passwd, vipw …); try again when it is done`, {});
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await fs.unlink(mine).catch(() => undefined);
  }
}

export function createAccountsDriver(files: FilesDriver, options: AccountsDriverOptions = {}): AccountsDriver {
  const readAll = async (): Promise<AccountTexts> => {
    const [passwd, shadow, group, gshadow] = await Promise.all(LOCK_ORDER.map((f) => files.read(FILES[f])));
    return {
      passwd: passwd ?? '',
      group: group ?? '',
      ...(shadow !== undefined ? { shadow } : {}),
      ...(gshadow !== undefined ? { gshadow } : {}),
    };
  };

  return {
    read: readAll,
    async edit(change) {
      const deadline = Date.now() + (options.lockTimeoutMs ?? 15_000);
      const present = (await Promise.all(LOCK_ORDER.map(async (f) => ((await files.stat(FILES[f])) ? f : undefined)))).filter(
        (f): f is AccountFile => f !== undefined,
      );
      // /etc itself must exist for the locks (a fresh --root may have none yet).
      await files.mkdir('/etc');
      const unlocks: (() => Promise<void>)[] = [];
      try {
        for (const f of LOCK_ORDER)
          if (present.includes(f) || f === 'passwd' || f === 'group') unlocks.push(await lockOne(files.hostPath(FILES[f]), deadline));
        const before = await readAll();
        const after = change(before);
        for (const f of ['group', 'gshadow', 'passwd', 'shadow'] as const) {
          const text = after[f];
          if (text === undefined || text === before[f]) continue;
          const stat = await files.stat(FILES[f]);
          await files.write(FILES[f], text, { mode: stat?.mode ?? DEFAULT_MODES[f], uid: stat?.uid ?? 0, gid: stat?.gid ?? 0 });
        }
      } finally {
        for (const unlock of unlocks.reverse()) await unlock();
      }
    },
  };
}
