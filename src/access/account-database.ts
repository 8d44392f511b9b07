// The host's account files (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow) as text in, text
// out: parse the entries sc reads, add/replace/remove the lines of one account or group, and leave
// every other line byte for byte as it was. Pure; the accounts driver does the locked I/O.

export interface AccountTexts {
  readonly passwd: string;
  readonly group: string;
  /** Absent when the host has no such file (sc then does not create it). */
  readonly shadow?: string;
  readonly gshadow?: string;
}

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly gecos: string;
  readonly home: string;
  readonly shell: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

export interface AccountDatabase {
  readonly passwd: readonly PasswdEntry[];
  readonly groups: readonly GroupEntry[];
  /** name → the password field of /etc/shadow (`*`, `!`, a hash …). */
  readonly shadowPasswords: ReadonlyMap<string, string>;
}

const lines = (text: string): string[] => {
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
};

const join = (all: readonly string[]): string => (all.length === 0 ? '' : `${all.join('\n')}\n`);

/** Fields of a colon line, or undefined for comments, NIS `+`/`-` lines and blanks. */
function fieldsOf(line: string): string[] | undefined {
  if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) return undefined;
  return line.split(':');
}

const toId = (s: string | undefined): number | undefined => (s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined);

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of lines(text)) {
    const f = fieldsOf(line);
    const uid = toId(f?.[2]);
    const gid = toId(f?.[3]);
    if (!f || f.length < 7 || uid === undefined || gid === undefined) continue;
    entries.push({ name: f[0] as string, uid, gid, gecos: f[4] as string, home: f[5] as string, shell: f.slice(6).join(':') });
  }
  return entries;
}

export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of lines(text)) {
    const f = fieldsOf(line);
    const gid = toId(f?.[2]);
    if (!f || f.length < 4 || gid === undefined) continue;
    entries.push({ name: f[0] as string, gid, members: (f[3] as string).split(',').filter((m) => m !== '') });
  }
  return entries;
}

function parseShadowPasswords(text: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of lines(text ?? '')) {
    const f = fieldsOf(line);
    if (f && f.length >= 2) map.set(f[0] as string, f[1] as string);
  }
  return map;
}

export function parseAccounts(texts: AccountTexts): AccountDatabase {
  return { passwd: parsePasswd(texts.passwd), groups: parseGroup(texts.group), shadowPasswords: parseShadowPasswords(texts.shadow) };
}

/** Replaces the line of `name` (first field) with `line`, appending it when absent; removes it when `line` is undefined. */
function setLine(text: string, name: string, line: string | undefined): string {
  const out: string[] = [];
  let placed = false;
  for (const l of lines(text)) {
    if (l.split(':')[0] === name && fieldsOf(l)) {
      if (line !== undefined && !placed) out.push(line);
      placed = true;
      continue;
    }
    out.push(l);
  }
  if (line !== undefined && !placed) out.push(line);
  return join(out);
}

/** A field value that would break the colon format. */
function assertField(value: string, what: string): void {
  if (/[:\n\r]/.test(value)) throw new Error(`${what} ${JSON.stringify(value)} cannot go into an account file`);
}

/** The texts with the account `entry` in place (passwd line; shadow line with no password when there is a shadow file). */
export function withUser(texts: AccountTexts, entry: PasswdEntry): AccountTexts {
  for (const [v, what] of [
    [entry.name, 'name'],
    [entry.gecos, 'gecos'],
    [entry.home, 'home'],
    [entry.shell, 'shell'],
  ] as const)
    assertField(v, what);
  const passwd = setLine(texts.passwd, entry.name, `${entry.name}:x:${entry.uid}:${entry.gid}:${entry.gecos}:${entry.home}:${entry.shell}`);
  // `*`: no password can match; unlike `!` it is not "locked", so sshd still accepts the key.
  const shadow = texts.shadow === undefined ? undefined : setLine(texts.shadow, entry.name, `${entry.name}:*:::::::`);
  return { ...texts, passwd, ...(shadow !== undefined ? { shadow } : {}) };
}

export function withoutUser(texts: AccountTexts, name: string): AccountTexts {
  return {
    ...texts,
    passwd: setLine(texts.passwd, name, undefined),
    ...(texts.shadow !== undefined ? { shadow: setLine(texts.shadow, name, undefined) } : {}),
  };
}

export function withGroup(texts: AccountTexts, name: string, gid: number): AccountTexts {
  assertField(name, 'group name');
  return {
    ...texts,
    group: setLine(texts.group, name, `${name}:x:${gid}:`),
    ...(texts.gshadow !== undefined ? { gshadow: setLine(texts.gshadow, name, `${name}:!::`) } : {}),
  };
}

export function withoutGroup(texts: AccountTexts, name: string): AccountTexts {
  return {
    ...texts,
    group: setLine(texts.group, name, undefined),
    ...(texts.gshadow !== undefined ? { gshadow: setLine(texts.gshadow, name, undefined) } : {}),
  };
}

/** groupadd -r's choice: the highest free gid in the system range (999 down to 100). */
export function freeSystemGid(groups: readonly GroupEntry[], passwd: readonly PasswdEntry[] = []): number | undefined {
  const used = new Set([...groups.map((g) => g.gid), ...passwd.map((p) => p.gid)]);
  for (let gid = 999; gid >= 100; gid--) if (!used.has(gid)) return gid;
  return undefined;
}
