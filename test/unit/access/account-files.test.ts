// Pure text edits of sc's blocks and of the account files: lines sc does not own stay byte for byte.
import { findBlock, replaceBlock, srvctlMarkers } from '../../../src/access/marked-block.js';
import {
  freeSystemGid,
  parseAccounts,
  withGroup,
  withoutGroup,
  withoutUser,
  withUser,
  type AccountTexts,
} from '../../../src/access/account-database.js';

const markers = srvctlMarkers('keys');

describe('marked block', () => {
  const own = 'ssh-ed25519 AAAAown container@own\n# a comment of the container\n';
  it('appends a block, finds it, replaces it in place and removes it, leaving other lines alone', () => {
    const added = replaceBlock(own, markers, ['k1', 'k2']);
    expect(added).toBe(`${own}${markers.begin}\nk1\nk2\n${markers.end}\n`);
    expect(findBlock(added, markers)).toEqual({ lines: ['k1', 'k2'], intact: true });
    const withTail = `${added}tail line\n`;
    const replaced = replaceBlock(withTail, markers, ['k3']);
    expect(replaced).toBe(`${own}${markers.begin}\nk3\n${markers.end}\ntail line\n`);
    expect(replaceBlock(replaced, markers, undefined)).toBe(`${own}tail line\n`);
    expect(findBlock(own, markers)).toBeUndefined();
  });
  it('a file without a final newline or empty gets a proper block', () => {
    expect(replaceBlock('x', markers, ['k'])).toBe(`x\n${markers.begin}\nk\n${markers.end}\n`);
    expect(replaceBlock('', markers, [])).toBe(`${markers.begin}\n${markers.end}\n`);
    expect(replaceBlock(`${markers.begin}\n${markers.end}\n`, markers, undefined)).toBe('');
  });
  it('a duplicated or unterminated block is not intact and is rewritten as one', () => {
    const twice = `a\n${markers.begin}\nk1\n${markers.end}\nb\n${markers.begin}\nk2\n${markers.end}\n`;
    expect(findBlock(twice, markers)).toEqual({ lines: ['k1', 'k2'], intact: false });
    expect(replaceBlock(twice, markers, ['k'])).toBe(`a\n${markers.begin}\nk\n${markers.end}\nb\n`);
    const open = `a\n${markers.begin}\nk1\nsneaked in\n`;
    expect(findBlock(open, markers)).toEqual({ lines: ['k1', 'sneaked in'], intact: false });
    expect(replaceBlock(open, markers, ['k1'])).toBe(`a\n${markers.begin}\nk1\n${markers.end}\n`);
  });
});

describe('account files', () => {
  const texts: AccountTexts = {
    passwd:
      'root:x:0:0:root:/root:/bin/bash\n# comment\nsshd:x:102:65534::/run/sshd:/usr/sbin/nologin\ncarol:x:1005:1005:Carol,,,:/home/carol:/bin/bash\n',
    group: 'root:x:0:\nshadow:x:42:\ncarol:x:1005:\n',
    shadow: 'root:*:19000:0:99999:7:::\ncarol:$y$j9T$hash:19000:0:99999:7:::\n',
    gshadow: 'root:*::\n',
  };
  it('parses entries and shadow passwords; skips comments', () => {
    const db = parseAccounts(texts);
    expect(db.passwd.map((p) => [p.name, p.uid, p.gid, p.shell])).toEqual([
      ['root', 0, 0, '/bin/bash'],
      ['sshd', 102, 65534, '/usr/sbin/nologin'],
      ['carol', 1005, 1005, '/bin/bash'],
    ]);
    expect(db.groups.map((g) => [g.name, g.gid])).toEqual([
      ['root', 0],
      ['shadow', 42],
      ['carol', 1005],
    ]);
    expect(db.shadowPasswords.get('carol')).toMatch(/^\$y\$/);
  });
  it('adds, replaces and removes one account and one group; every other line unchanged', () => {
    const entry = { name: 'alice', uid: 1001, gid: 999, gecos: 'srvctl jump account', home: '/nonexistent', shell: '/usr/sbin/nologin' };
    const added = withGroup(withUser(texts, entry), 'srvctl-jump', 999);
    expect(added.passwd).toBe(`${texts.passwd}alice:x:1001:999:srvctl jump account:/nonexistent:/usr/sbin/nologin\n`);
    expect(added.shadow).toBe(`${texts.shadow}alice:*:::::::\n`);
    expect(added.group).toBe(`${texts.group}srvctl-jump:x:999:\n`);
    expect(added.gshadow).toBe(`${texts.gshadow}srvctl-jump:!::\n`);
    const changed = withUser(added, { ...entry, shell: '/bin/false' });
    expect(changed.passwd).toBe(`${texts.passwd}alice:x:1001:999:srvctl jump account:/nonexistent:/bin/false\n`);
    expect(withoutGroup(withoutUser(changed, 'alice'), 'srvctl-jump')).toEqual(texts);
  });
  it('a host without shadow files gets none', () => {
    const plain = { passwd: texts.passwd, group: texts.group };
    const added = withUser(plain, { name: 'a', uid: 1, gid: 1, gecos: '', home: '/', shell: '/bin/false' });
    expect(added.shadow).toBeUndefined();
  });
  it('refuses a field with a colon or newline', () => {
    expect(() => withUser(texts, { name: 'a', uid: 1, gid: 1, gecos: 'x:y', home: '/', shell: '/bin/false' })).toThrow(
      /cannot go into an account file/,
    );
  });
  it('picks the highest free system gid', () => {
    const db = parseAccounts({ passwd: 'x:x:5:998::/:/bin/false\n', group: 'a:x:999:\n' });
    expect(freeSystemGid(db.groups, db.passwd)).toBe(997);
  });
});
