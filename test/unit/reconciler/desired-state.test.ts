// The one decision of where the desired state comes from (src/reconciler/desired-state.ts): which
// input wins in each combination, what an edit command and the reconcile loop do differently, the
// errors for a source sc may not edit and for no datastore at all; then the same on real files
// under a temporary --root, the last applied revision and this host's context.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DatastoreLocation } from '../../../src/datastore/datastore-location.js';
import type { LoadedDatastore } from '../../../src/datastore/load-datastore.js';
import type { Model, Settings } from '../../../src/datastore/model.js';
import { UserError } from '../../../src/errors.js';
import {
  decideDesiredSource,
  hostContextOf,
  lastAppliedRevision,
  type DesiredStatePurpose,
  type DesiredStateRequest,
  type SourceReaders,
} from '../../../src/reconciler/desired-state.js';

const ROOT = '/nonexistent-root';
const dirLocation = (dir: string, extra: Partial<DatastoreLocation> = {}): DatastoreLocation => ({
  dir,
  readOnly: false,
  origin: 'option',
  ...extra,
});

/** Readers that answer from the table's columns and record which were asked. */
function fakeReaders(given: { hostSettings?: string; location?: DatastoreLocation; settings?: Settings } = {}) {
  const asked: string[] = [];
  const readers: SourceReaders = {
    hostSettingsSource: (root) => {
      asked.push(`host-settings ${root}`);
      return Promise.resolve(given.hostSettings);
    },
    datastoreLocation: (request) => {
      asked.push(`location ${request.datastore ?? 'default'}`);
      if (given.location === undefined) return Promise.reject(new UserError('no datastore found: …'));
      return Promise.resolve(given.location);
    },
    datastoreSettings: (location) => {
      asked.push(`settings ${location.dir}`);
      return Promise.resolve(given.settings);
    },
  };
  return { readers, asked };
}

const READ: DesiredStatePurpose = { use: 'read' };
const EDIT: DesiredStatePurpose = { use: 'edit', command: 'add-user' };
const RECONCILE: DesiredStatePurpose = { use: 'reconcile' };

async function decide(request: Partial<DesiredStateRequest>, purpose: DesiredStatePurpose, given: Parameters<typeof fakeReaders>[0] = {}) {
  const { readers, asked } = fakeReaders(given);
  const choice = await decideDesiredSource({ root: ROOT, ...request }, purpose, readers);
  return { choice, asked };
}

async function refusal(request: Partial<DesiredStateRequest>, purpose: DesiredStatePurpose, given: Parameters<typeof fakeReaders>[0] = {}) {
  const { readers } = fakeReaders(given);
  return decideDesiredSource({ root: ROOT, ...request }, purpose, readers).then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => {
      if (!(error instanceof UserError)) throw error;
      return error.message;
    },
  );
}

describe('which source wins', () => {
  const clone = dirLocation('/srv/clone');
  const rw = dirLocation('/r/var/srvctl3/datastore/rw', { origin: 'rw' });
  const named = 'file:///srv/farm.git#main';

  it.each([
    // [what the operator gave, purpose, what the host has, which rule wins, the source]
    ['--source alone', { source: 'file:///a.git#v1' }, READ, {}, 'option', 'file:///a.git#v1'],
    ['--source over --datastore', { source: 'file:///a.git', datastore: '/srv/clone' }, READ, { location: clone }, 'option', 'file:///a.git'],
    ['--source over the host settings', { source: 'file:///a.git' }, READ, { hostSettings: named }, 'option', 'file:///a.git'],
    ['--source for the loop', { source: 'file:///a.git' }, RECONCILE, { location: rw }, 'option', 'file:///a.git'],
    ['--datastore alone', { datastore: '/srv/clone' }, READ, { location: clone }, 'datastore', '/srv/clone'],
    ['--datastore over the host settings', { datastore: '/srv/clone' }, READ, { hostSettings: named, location: clone }, 'datastore', '/srv/clone'],
    [
      '--datastore naming a source, for a command',
      { datastore: '/srv/clone' },
      READ,
      { location: clone, settings: { source: { url: 'file:///x.git' } } },
      'datastore',
      '/srv/clone',
    ],
    [
      '--datastore naming a source, for the loop',
      { datastore: '/srv/clone' },
      RECONCILE,
      { location: clone, settings: { source: { url: 'file:///x.git', ref: 'prod' } } },
      'datastore-settings',
      'file:///x.git#prod',
    ],
    [
      '--datastore naming none, for the loop',
      { datastore: '/srv/clone' },
      RECONCILE,
      { location: clone, settings: { runtime: 'direct' } },
      'datastore',
      '/srv/clone',
    ],
    ['the host settings over the default datastore', {}, READ, { hostSettings: named, location: rw }, 'host-settings', named],
    ['the host settings for the loop', {}, RECONCILE, { hostSettings: named, location: rw }, 'host-settings', named],
    ['the default datastore', {}, READ, { location: rw }, 'datastore', rw.dir],
    ['the default datastore for an edit', {}, EDIT, { location: rw }, 'datastore', rw.dir],
    [
      '--datastore for an edit, whatever the host settings say',
      { datastore: '/srv/clone' },
      EDIT,
      { hostSettings: named, location: clone },
      'datastore',
      '/srv/clone',
    ],
  ] as const)('%s', async (_what, request, purpose, given, from, shown) => {
    const { choice } = await decide(request, purpose, given);
    expect(choice.from).toBe(from);
    if ('git' in choice.source) expect(`${choice.source.git.url}${choice.source.git.ref ? `#${choice.source.git.ref}` : ''}`).toBe(shown);
    else expect(choice.source.location.dir).toBe(shown);
  });

  it('reads only what the winning rule needs', async () => {
    expect((await decide({ source: 'file:///a.git' }, RECONCILE, { hostSettings: named })).asked).toEqual([]);
    expect((await decide({ datastore: '/srv/clone' }, READ, { hostSettings: named, location: clone })).asked).toEqual(['location /srv/clone']);
    expect((await decide({}, READ, { hostSettings: named })).asked).toEqual([`host-settings ${ROOT}`]);
    expect((await decide({}, READ, { location: rw })).asked).toEqual([`host-settings ${ROOT}`, 'location default']);
    expect((await decide({}, RECONCILE, { location: rw })).asked).toEqual([`host-settings ${ROOT}`, 'location default', `settings ${rw.dir}`]);
  });

  it("passes the fallback's notice on, and the loop gets the settings it read", async () => {
    const ro = dirLocation('/r/ro', { origin: 'ro', readOnly: true, notice: 'reading the read-only fallback …' });
    expect((await decide({}, READ, { location: ro })).choice.notice).toBe('reading the read-only fallback …');
    const { choice } = await decide({}, RECONCILE, { location: ro, settings: { reconcile: { interval_seconds: 60 } } });
    expect(choice.notice).toBe('reading the read-only fallback …');
    expect(choice.settings?.reconcile?.interval_seconds).toBe(60);
  });
});

describe('refusals', () => {
  it('an edit of --source: read-only to sc, pointing to a clone', async () => {
    const message = await refusal({ source: 'https://user:secret@git.example.net/farm.git' }, EDIT);
    expect(message).toBe(
      '--source https://user:***@git.example.net/farm.git is read-only to sc: edit a clone of the repository (sc --datastore CLONE add-user …) and push',
    );
  });

  it('an edit on a host whose settings name its source: read-only to sc, saying where it is named', async () => {
    expect(await refusal({}, EDIT, { hostSettings: 'file:///srv/farm.git#main', location: dirLocation('/r/rw') })).toBe(
      "this host's desired state is the git source file:///srv/farm.git#main (source.url in its settings), which sc only reads: edit a clone of the repository (sc --datastore CLONE add-user …) and push",
    );
  });

  it('no source and no datastore: the location error stands', async () => {
    expect(await refusal({}, READ)).toBe('no datastore found: …');
    expect(await refusal({}, RECONCILE)).toBe('no datastore found: …');
  });

  it('a --source or source.url that is no git URL', async () => {
    expect(await refusal({ source: '--upload-pack=x' }, READ)).toMatch(/^--source "--upload-pack=x": expected a git URL/);
    expect(await refusal({}, READ, { hostSettings: 'x#a..b' })).toMatch(/REF "a\.\.b" is not a branch, tag or commit name/);
  });
});

describe('on real files under --root', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sc-desired-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('no datastore anywhere: says where it looked and how to point sc elsewhere', async () => {
    await expect(decideDesiredSource({ root })).rejects.toThrow(
      /^no datastore found: the read-write datastore .* --datastore DIR \(or SC_DATASTORE\)/,
    );
  });

  it("the host's static settings name the source: it wins over the rw datastore; --datastore wins over both", async () => {
    await mkdir(path.join(root, 'etc/srvctl/data'), { recursive: true });
    await mkdir(path.join(root, 'var/srvctl3/datastore/rw'), { recursive: true });
    await writeFile(path.join(root, 'etc/srvctl/data/settings.json'), JSON.stringify({ source: { url: 'file:///srv/farm.git', ref: 'main' } }));
    const choice = await decideDesiredSource({ root });
    expect(choice).toEqual({ source: { git: { url: 'file:///srv/farm.git', ref: 'main' } }, from: 'host-settings' });
    const other = path.join(root, 'clone');
    await mkdir(other);
    const given = await decideDesiredSource({ root, datastore: other, datastoreOrigin: 'env' });
    expect(given).toEqual({ source: { location: { dir: other, readOnly: false, origin: 'env' } }, from: 'datastore' });
  });

  it('a --datastore that is no directory names the option it came from', async () => {
    await expect(decideDesiredSource({ root, datastore: path.join(root, 'nope'), datastoreOrigin: 'env' })).rejects.toThrow(
      /^SC_DATASTORE .*: does not exist/,
    );
  });

  it('the last applied revision: reconcile’s last good one, else that of a converged apply from a source, else none', async () => {
    const state = path.join(root, 'var/lib/srvctl');
    await mkdir(state, { recursive: true });
    expect(await lastAppliedRevision(root)).toBeUndefined();
    const apply = {
      started: 'x',
      finished: 'x',
      converged: false,
      actions: 0,
      ok: 0,
      failed: 0,
      skipped: 0,
      conflicts: 0,
      failures: [],
      revision: 'a'.repeat(40),
      source: 'file:///r#main',
    };
    await writeFile(path.join(state, 'last-apply.json'), JSON.stringify(apply));
    expect(await lastAppliedRevision(root)).toBeUndefined();
    await writeFile(path.join(state, 'last-apply.json'), JSON.stringify({ ...apply, converged: true }));
    expect(await lastAppliedRevision(root)).toBe('a'.repeat(40));
    await writeFile(path.join(state, 'reconcile-status.json'), JSON.stringify({ result: 'ok', last_good_revision: 'b'.repeat(40) }));
    expect(await lastAppliedRevision(root)).toBe('b'.repeat(40));
  });
});

describe("this host's context", () => {
  const model = {
    clusters: { eu: { 'h1.test': { hostnet: 1, host_ip: '192.0.2.11', interface: 'eth0' } } },
    users: {},
    containers: {},
    settings: { runtime: 'direct', prune: { data: true } },
  } as unknown as Model;
  const loaded = { location: dirLocation('/srv/ds'), documents: {}, model, warnings: [] } as LoadedDatastore;
  const place = { hostName: 'h1.test', root: '/r', netns: 'ns1' };

  it('carries the root, netns, runtime and PKI exchange; pruneData only for an apply', () => {
    const host = hostContextOf(loaded, place);
    expect(host).toMatchObject({ name: 'h1.test', cluster: 'eu', root: '/r', netns: 'ns1', runtime: 'direct' });
    expect(host?.pki).toBeDefined();
    expect(host && 'pruneData' in host).toBe(false);
    expect(hostContextOf(loaded, place, {})?.pruneData).toBe(true);
    expect(hostContextOf(loaded, place, { pruneData: false })?.pruneData).toBe(false);
  });

  it('is undefined for a host the model does not know', () => {
    expect(hostContextOf(loaded, { ...place, hostName: 'h9.test' })).toBeUndefined();
  });
});
