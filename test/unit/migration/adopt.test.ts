// sc adopt on a temporary --root holding srvctl 3 layouts (no containers run, no root needed): what
// it adopts, what it leaves alone, the marks it writes (exactly sc's: state record and .nspawn
// header), that a dry run and a second run write nothing, and that the container kind sees a
// srvctl 3 container as foreign before and as sc's after.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateDocuments, type Documents } from '../../../src/datastore/load-datastore.js';
import { findHost, type Model } from '../../../src/datastore/model.js';
import { sourceDocumentFromText } from '../../../src/datastore/source-document.js';
import { createDrivers } from '../../../src/drivers/create-drivers.js';
import { findRunningMachines } from '../../../src/drivers/srvctl3-host.js';
import type { HostContext } from '../../../src/host-context.js';
import { adoptSrvctl3Containers, type AdoptResult } from '../../../src/migration/adopt.js';
import type { MigrationReport } from '../../../src/migration/migration-report.js';
import { importSrvctl3 } from '../../../src/migration/srvctl3-import.js';
import { readSrvctl3Source } from '../../../src/migration/srvctl3-source.js';
import { containerHandler } from '../../../src/resources/container.js';
import { BUSYBOX_HOST, HOSTS, writeSrvctl3Datastore } from '../../fixtures/srvctl3/srvctl3-datastore.js';
import { createFilesDriver } from '../../../src/drivers/files.js';

let work: string;
let model: Model;
let report: MigrationReport;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(tmpdir(), 'sc-adopt-'));
  await writeSrvctl3Datastore(path.join(work, 'src'));
  const imported = importSrvctl3(await readSrvctl3Source(path.join(work, 'src')), { containerHosts: new Map([['lan.example.com', HOSTS.t1]]) });
  report = imported.report;
  const documents: Documents = {};
  for (const kind of ['clusters', 'users', 'containers', 'settings'] as const) {
    documents[kind] = sourceDocumentFromText(kind, `/farm/${kind}.json`, imported.files[`${kind}.json`] as string);
  }
  model = validateDocuments(documents).model;
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

const t2 = () => report.containers.filter((c) => c.host === BUSYBOX_HOST);

/** srvctl 3.2's files for one container: the tree, the .nspawn beside it, the network file, ctype. */
async function srvctl3Layout(root: string, name: string): Promise<void> {
  const c = report.containers.find((r) => r.name === name);
  if (!c?.old_ip) throw new Error(name);
  const veth = c.old_ip.split('.').slice(1).join('-');
  const dir = path.join(root, 'srv', name);
  await fs.mkdir(path.join(dir, 'rootfs/var/www/html'), { recursive: true });
  await fs.writeFile(path.join(dir, 'rootfs/var/www/html/index.html'), `site ${name}\n`);
  const ports = c.mapped_ports.map((p) => `Port=${p.proto}:${p.host_port}:${p.container_port}`);
  await fs.writeFile(
    path.join(dir, `${name}.nspawn`),
    [
      `## srvctl generated - ${name}`,
      '[Network]',
      `VirtualEthernetExtra=${veth}`,
      ...(ports.length ? ports : ['## no mapped ports']),
      '[Exec]',
      'PrivateUsers=1234567',
      '',
    ].join('\n'),
  );
  await fs.mkdir(path.join(dir, 'network'));
  await fs.writeFile(path.join(dir, 'network/ethernet.network'), `[Match]\nName=${veth}\n[Network]\nAddress=${c.old_ip}/24\n`);
  await fs.writeFile(path.join(dir, 'ctype'), `${c.type}\n`);
}

async function newRoot(): Promise<string> {
  const root = await fs.mkdtemp(path.join(work, 'root-'));
  for (const c of t2()) await srvctl3Layout(root, c.name);
  return root;
}

function adopt(root: string, options: { dryRun?: boolean; model?: Model } = {}): Promise<AdoptResult> {
  const ref = findHost(model, BUSYBOX_HOST);
  if (!ref) throw new Error('no host');
  const host: HostContext = { ...ref, root, runtime: 'direct' };
  return adoptSrvctl3Containers({
    drivers: createDrivers(host),
    host,
    model: options.model ?? model,
    report,
    ...(options.dryRun ? { dryRun: true } : {}),
  });
}

async function listTree(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      found.push(`${path.relative(root, full)} ${e.isFile() ? await fs.readFile(full, 'utf8') : ''}`);
      if (e.isDirectory()) await walk(full);
    }
  };
  await walk(root);
  return found.sort();
}

test('a dry run lists what it would adopt and writes nothing', async () => {
  const root = await newRoot();
  const before = await listTree(root);
  const result = await adopt(root, { dryRun: true });
  expect(result.adopted.map((a) => [a.name, a.old_ip, a.ip, a.state])).toEqual(t2().map((c) => [c.name, c.old_ip, c.ip, 'stopped']));
  expect(await listTree(root)).toEqual(before);
});

test("adopt writes exactly sc's marks: a stopped machine's state record, then the .nspawn with sc's header", async () => {
  const root = await newRoot();
  const result = await adopt(root);
  expect(result).toMatchObject({ host: BUSYBOX_HOST, runtime: 'direct', already: [], unmatched: [], absent: [], notes: [] });
  expect(result.adopted).toHaveLength(6);
  const record = JSON.parse(await fs.readFile(path.join(root, 'run/srvctl/tina.example.com.json'), 'utf8')) as unknown;
  expect(record).toEqual({ srvctl: 'srvctl-machine', name: 'tina.example.com', runtime: 'direct', state: 'stopped', config: 'srvctl3:adopted' });
  const settings = await fs.readFile(path.join(root, 'etc/systemd/nspawn/tina.example.com.nspawn'), 'utf8');
  const original = await fs.readFile(path.join(root, 'srv/tina.example.com/tina.example.com.nspawn'), 'utf8');
  expect(settings).toBe(
    '# Generated by srvctl for tina.example.com — do not edit\n' +
      '# Adopted from srvctl 3 by `sc adopt`: below are its settings from /srv/tina.example.com/tina.example.com.nspawn (old address 10.79.38.2).\n' +
      '# The next `sc apply` rewrites this file for 10.52.38.20 and restarts the container.\n' +
      original,
  );
  expect(await fs.readFile(path.join(root, 'srv/tina.example.com/rootfs/var/www/html/index.html'), 'utf8')).toBe('site tina.example.com\n');

  // Again: all already sc's, nothing written — unless a state record was lost (an interrupted adopt).
  await fs.rm(path.join(root, 'run/srvctl/tom.example.com.json'));
  const snapshot = await listTree(root);
  const again = await adopt(root);
  expect(again.adopted).toEqual([]);
  expect(again.already).toEqual(t2().map((c) => c.name));
  const after = await listTree(root);
  expect(after.filter((line) => !snapshot.includes(line))).toEqual([
    'run/srvctl/tom.example.com.json {\n  "srvctl": "srvctl-machine",\n  "name": "tom.example.com",\n  "runtime": "direct",\n  "state": "stopped",\n  "config": "srvctl3:adopted"\n}\n',
  ]);
});

test('what does not match is left alone; what is not there is listed; what stands in the way is noted', async () => {
  const root = await newRoot();
  // tom's tree without settings, wiki's settings for another address, no mirror at all, srvctl 3's busybox image.
  await fs.rm(path.join(root, 'srv/tom.example.com/tom.example.com.nspawn'));
  const wiki = path.join(root, 'srv/wiki.tom.example.com/wiki.tom.example.com.nspawn');
  await fs.writeFile(wiki, (await fs.readFile(wiki, 'utf8')).replace('79-39-3', '79-39-9'));
  await fs.rm(path.join(root, 'srv/mirror.charlie.example.org'), { recursive: true });
  await fs.mkdir(path.join(root, 'var/srvctl3/rootfs/busybox'), { recursive: true });
  const withoutShop: Model = {
    ...model,
    containers: Object.fromEntries(Object.entries(model.containers).filter(([n]) => n !== 'shop.tina.example.com')),
  };
  const result = await adopt(root, { model: withoutShop });
  expect(result.adopted.map((a) => a.name)).toEqual(['tina.example.com', 'blog.tina.example.com']);
  expect(result.unmatched).toEqual([
    {
      name: 'tom.example.com',
      reasons: ['no srvctl 3 settings (/srv/tom.example.com/tom.example.com.nspawn or /etc/systemd/nspawn/tom.example.com.nspawn)'],
    },
    {
      name: 'wiki.tom.example.com',
      reasons: ['/srv/wiki.tom.example.com/wiki.tom.example.com.nspawn has VirtualEthernetExtra=79-39-9, not 79-39-3 of 10.79.39.3'],
    },
  ]);
  expect(result.absent).toEqual(['mirror.charlie.example.org']);
  expect(result.notes).toEqual([
    'shop.tina.example.com: the datastore no longer has it on t2.test.vm; not adopted',
    "/var/srvctl3/rootfs/busybox was not built by sc (srvctl 3's image): sc leaves it alone and cannot build its own there; move it away before `sc apply`",
  ]);
  expect(await fs.readFile(wiki, 'utf8')).toContain('79-39-9');
  await expect(fs.access(path.join(root, 'etc/systemd/nspawn/wiki.tom.example.com.nspawn'))).rejects.toThrow();
  await expect(fs.access(path.join(root, 'run/srvctl/wiki.tom.example.com.json'))).rejects.toThrow();
});

test("the container kind sees a srvctl 3 container as foreign (a conflict naming sc adopt), and as sc's once adopted", async () => {
  const root = await newRoot();
  const ref = findHost(model, BUSYBOX_HOST);
  if (!ref) throw new Error('no host');
  const host: HostContext = { ...ref, root, runtime: 'direct' };
  const drivers = createDrivers(host);
  const desired = containerHandler.desired(model, host);
  const tina = desired.find((d) => d.ref.id === 'tina.example.com');
  if (!tina) throw new Error('tina not desired');

  const before = await containerHandler.observe(drivers);
  expect(before.map((o) => [o.ref.id, o.owned, o.description])).toEqual(
    t2()
      .map((c) => [c.name, false, `srvctl 3 container (/srv/${c.name}/${c.name}.nspawn)`])
      .sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)),
  );
  expect(containerHandler.conflict(tina, before)).toBe(
    'srvctl 3 container (/srv/tina.example.com/tina.example.com.nspawn): sc leaves it alone until `sc adopt` takes it over',
  );

  await adopt(root);
  const after = await containerHandler.observe(drivers);
  expect(after.every((o) => o.owned)).toBe(true);
  expect(after.find((o) => o.ref.id === 'tina.example.com')?.spec.image).toBe('(unrecorded)');
});

test('on a systemd host, a running srvctl 3 container is its active srvctl-nspawn@NAME.service (one systemctl show for all)', async () => {
  const calls: string[][] = [];
  const exec = {
    run: async (command: string, args: readonly string[]) => {
      calls.push([command, ...args]);
      const stdout = [
        'Id=srvctl-nspawn@tina.example.com.service\nActiveState=active\nMainPID=4242\nControlGroup=/machine.slice/srvctl-nspawn@tina.example.com.service',
        'Id=srvctl-nspawn@tom.example.com.service\nActiveState=inactive\nMainPID=0\nControlGroup=',
      ].join('\n\n');
      return { command: [command, ...args], exitCode: 0, stdout, stderr: '' };
    },
  };
  const files = createFilesDriver(work);
  const running = await findRunningMachines({ exec, files }, 'systemd', ['tina.example.com', 'tom.example.com']);
  expect(running).toEqual([{ name: 'tina.example.com', pid: 4242 }]);
  expect(calls).toEqual([
    [
      'systemctl',
      'show',
      '--property=Id,ActiveState,MainPID,ControlGroup',
      '--',
      'srvctl-nspawn@tina.example.com.service',
      'srvctl-nspawn@tom.example.com.service',
    ],
  ]);
});
