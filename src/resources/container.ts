// The container resource: a container's files on this host (SPEC §3) — its rootfs copied from
// the image, its .nspawn settings and the config files sc keeps inside the rootfs. The .nspawn
// file's header is sc's mark; it is written last, so an interrupted create is simply redone.
// Running the container is the machine kind's business, not this one's.
import type { Model } from '../datastore/model.js';
import { IMAGE_MARKER, type ObservedFile, type RootfsDriver } from '../drivers/rootfs.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError, UnsafePathError, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { BRIDGE_KIND } from './bridge.js';
import {
  carriesHeader,
  containerDir,
  containerFilePaths,
  contentHash,
  NSPAWN_DIR,
  nspawnPath,
  renderContainerFiles,
  rootfsMarkerPath,
  rootfsPath,
  SRV_DIR,
} from './container-files-render.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';
import { IMAGE_KIND } from './image.js';
import { listBesideTreeSettings } from '../drivers/srvctl3-host.js';
import { isSrvctl3Nspawn, SRVCTL3_CONTAINER } from '../migration/srvctl3-layout.js';

export const CONTAINER_KIND = 'container';

/** A rootfs that exists but does not say which image it came from (kept data, or an interrupted create). */
export const UNRECORDED_IMAGE = '(unrecorded)';
/** What observe reports for a path where something other than a regular file sits. */
export const NOT_A_FILE = 'not a regular file';

export interface ContainerFilesSpec {
  /** The image (type) the rootfs was copied from; null when there is no rootfs. */
  readonly image: string | null;
  /** Host path (under --root) → content hash, for the files sc writes. Missing files are absent. */
  readonly files: Readonly<Record<string, string>>;
  /** Desired objects only: the texts to write (not compared; the hashes are). */
  readonly contents?: Readonly<Record<string, string>>;
}

interface RootfsRecord {
  readonly image: string;
  readonly copied_at: string;
}

function describeOwner(model: Model, user: string): string {
  if (user === 'root') return 'user root';
  return `user ${user} (reseller ${model.users[user]?.reseller ?? 'root'})`;
}

/** Observed image of a container's rootfs: from its record, or null when there is no rootfs. */
async function observeRootfsImage(rootfs: RootfsDriver, drivers: Drivers, name: string): Promise<string | null> {
  if (!(await rootfs.exists(drivers.files.hostPath(rootfsPath(name))))) return null;
  const record = await rootfs.readFile(drivers.files.hostPath(rootfsMarkerPath(name)));
  if (record.kind !== 'file') return UNRECORDED_IMAGE;
  try {
    const parsed = JSON.parse(record.text) as Partial<RootfsRecord>;
    return typeof parsed.image === 'string' ? parsed.image : UNRECORDED_IMAGE;
  } catch {
    return UNRECORDED_IMAGE;
  }
}

async function observeContainer(rootfs: RootfsDriver, drivers: Drivers, name: string): Promise<ObservedObject<ContainerFilesSpec>> {
  const ref = { kind: CONTAINER_KIND, id: name };
  const nspawn = await rootfs.readFile(drivers.files.hostPath(nspawnPath(name)));
  if (nspawn.kind !== 'file' || !carriesHeader(nspawn.text, name)) {
    const srvctl3 = nspawn.kind === 'file' && isSrvctl3Nspawn(nspawn.text);
    return {
      ref,
      spec: { image: null, files: {} },
      owned: false,
      description: `${srvctl3 ? `${SRVCTL3_CONTAINER} (${nspawnPath(name)})` : `${nspawnPath(name)} without the srvctl header`}`,
    };
  }
  const files: Record<string, string> = {};
  const [image] = await Promise.all([
    observeRootfsImage(rootfs, drivers, name),
    ...containerFilePaths(name).map(async (p) => {
      const file = p === nspawnPath(name) ? nspawn : await readInContainer(drivers, name, p);
      if (file.kind === 'file') files[p] = contentHash(file.text);
      else if (file.kind === 'other') files[p] = NOT_A_FILE;
    }),
  ]);
  return { ref, spec: { image: image ?? null, files }, owned: true };
}

/**
 * Makes the rootfs match: copies the image when there is no rootfs, records the image of a kept
 * one, and replaces one of another image only when data pruning was asked for.
 */
async function convergeRootfs(drivers: Drivers, host: HostContext, name: string, image: string, have: string | null): Promise<void> {
  if (have === image) return;
  const rootfs = drivers.rootfs;
  const target = drivers.files.hostPath(rootfsPath(name));
  if (have !== null && have !== UNRECORDED_IMAGE) {
    if (!host.pruneData) {
      throw new UserError(
        `the rootfs of ${name} was copied from image "${have}" but the datastore now says type "${image}"; sc keeps container data: ` +
          'change the type back, or run `sc apply --prune-data` to replace the rootfs (its data is lost)',
      );
    }
    await rootfs.remove(target);
  }
  if (have !== UNRECORDED_IMAGE) {
    const complete = (await rootfs.listImages()).find((i) => i.type === image && i.marker);
    if (!complete) throw new ScError(`image ${image} is not built yet (no complete ${rootfs.imagePath(image)}); the image resource builds it`);
    await rootfs.copyTree(rootfs.imagePath(image), target);
    await rootfs.remove(`${target}/${IMAGE_MARKER}`);
  }
  const record: RootfsRecord = { image, copied_at: new Date().toISOString() };
  await rootfs.writeFileIfChanged(drivers.files.hostPath(rootfsMarkerPath(name)), `${JSON.stringify(record)}\n`);
}

/**
 * The scope a container's file is reached in: inside its rootfs, every component below the rootfs
 * is opened without following links (the container owns that tree and may race on it); the
 * .nspawn file below the host's own nspawn dir.
 */
const scopeOf = (name: string, p: string): { within: string } =>
  p.startsWith(`${rootfsPath(name)}/`) ? { within: rootfsPath(name) } : { within: p === nspawnPath(name) ? NSPAWN_DIR : SRV_DIR };

/** A container file as observed: a link, FIFO, device (or a link on the way) reads as "other", never followed. */
async function readInContainer(drivers: Drivers, name: string, p: string): Promise<ObservedFile> {
  try {
    const text = await drivers.files.read(p, scopeOf(name, p));
    return text === undefined ? { kind: 'missing' } : { kind: 'file', text };
  } catch (error) {
    if (error instanceof UnsafePathError) return { kind: 'other' };
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return { kind: 'missing' };
    throw error;
  }
}

/**
 * Writes every file that differs, the .nspawn (sc's mark) last, through the files driver: relative
 * to opened directories, never through a link, so a container swapping a component of its own
 * /etc cannot redirect the write.
 */
async function writeFiles(drivers: Drivers, name: string, contents: Readonly<Record<string, string>>): Promise<void> {
  const mark = nspawnPath(name);
  for (const [p, text] of Object.entries(contents)) {
    if (p === mark) continue;
    await drivers.files.write(p, text, scopeOf(name, p));
  }
  const markText = contents[mark];
  if (markText !== undefined) await drivers.files.write(mark, markText, scopeOf(name, mark));
}

async function converge(drivers: Drivers, host: HostContext, want: DesiredObject<ContainerFilesSpec>, haveImage: string | null): Promise<void> {
  const image = want.spec.image;
  if (image === null) throw new ScError(`container ${want.ref.id}: no image in the desired spec`);
  await convergeRootfs(drivers, host, want.ref.id, image, haveImage);
  await writeFiles(drivers, want.ref.id, want.spec.contents ?? {});
}

export const containerHandler = {
  kind: CONTAINER_KIND,
  dependsOnKinds: [IMAGE_KIND, BRIDGE_KIND],

  desired(model: Model, host: HostContext): DesiredObject<ContainerFilesSpec>[] {
    return Object.entries(model.containers)
      .filter(([, c]) => c.host === host.name)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, container]) => {
        const rendered = renderContainerFiles(model, host, name, container);
        const files = Object.fromEntries(Object.entries(rendered.files).map(([p, text]) => [p, contentHash(text)]));
        return {
          ref: { kind: CONTAINER_KIND, id: name },
          spec: { image: container.type, files, contents: rendered.files },
          dependsOn: [
            { kind: IMAGE_KIND, id: container.type },
            ...(rendered.network.scBridge ? [{ kind: BRIDGE_KIND, id: rendered.network.bridge }] : []),
          ],
          description: `${describeOwner(model, container.user)}, ${rendered.network.ip}${container.enabled === false ? ', disabled' : ''}`,
        };
      });
  },

  async observe(drivers: Drivers): Promise<ObservedObject<ContainerFilesSpec>[]> {
    const rootfs = drivers.rootfs;
    const names = await rootfs.listFiles(drivers.files.hostPath(NSPAWN_DIR));
    const containers = names.filter((f) => f.endsWith('.nspawn') && f.length > '.nspawn'.length).map((f) => f.slice(0, -'.nspawn'.length));
    const observed = await Promise.all(containers.map((name) => observeContainer(rootfs, drivers, name)));
    // srvctl 3.2 kept a container's settings next to its tree (/srv/NAME/NAME.nspawn): such a container is foreign too.
    const beside = await listBesideTreeSettings(drivers, new Set(containers));
    for (const settings of beside.filter((b) => !carriesHeader(b.text, b.name))) {
      const description = isSrvctl3Nspawn(settings.text) ? `${SRVCTL3_CONTAINER} (${settings.path})` : `${settings.path} without the srvctl header`;
      observed.push({ ref: { kind: CONTAINER_KIND, id: settings.name }, spec: { image: null, files: {} }, owned: false, description });
    }
    return observed;
  },

  normalize(spec: ContainerFilesSpec): { image: string | null; files: Readonly<Record<string, string>> } {
    return { image: spec.image, files: spec.files };
  },

  conflict(want: DesiredObject<ContainerFilesSpec>, observed: readonly ObservedObject<ContainerFilesSpec>[]): string | undefined {
    const inTheWay = observed.find((o) => o.ref.id === want.ref.id);
    if (!inTheWay) return undefined;
    if (inTheWay.description?.startsWith(SRVCTL3_CONTAINER)) return `${inTheWay.description}: sc leaves it alone until \`sc adopt\` takes it over`;
    if (inTheWay.description?.startsWith('/srv/'))
      return `${inTheWay.description}: sc did not write it and leaves it alone; remove it (or rename the container)`;
    return `${nspawnPath(want.ref.id)} exists without the srvctl header: sc did not write it and leaves it alone; remove it (or rename the container)`;
  },

  canUpdate: () => true,

  async create(drivers: Drivers, host: HostContext, want: DesiredObject<ContainerFilesSpec>): Promise<void> {
    const rootfs = drivers.rootfs;
    const nspawn = await rootfs.readFile(drivers.files.hostPath(nspawnPath(want.ref.id)));
    if (nspawn.kind !== 'missing' && !(nspawn.kind === 'file' && carriesHeader(nspawn.text, want.ref.id))) {
      throw new ConflictError(`${nspawnPath(want.ref.id)} appeared after the plan was made and is not sc's; it is left alone`);
    }
    // A kept rootfs (the container was removed without --prune-data and is back) is reused.
    await converge(drivers, host, want, await observeRootfsImage(rootfs, drivers, want.ref.id));
  },

  async update(
    drivers: Drivers,
    host: HostContext,
    want: DesiredObject<ContainerFilesSpec>,
    have: ObservedObject<ContainerFilesSpec>,
  ): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change ${nspawnPath(have.ref.id)}: sc did not write it`);
    await converge(drivers, host, want, have.spec.image);
  },

  async delete(drivers: Drivers, host: HostContext, have: ObservedObject<ContainerFilesSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to delete ${nspawnPath(have.ref.id)}: sc did not write it`);
    const rootfs = drivers.rootfs;
    // Data first when pruning: the .nspawn (the mark) goes last, so an interrupted delete is redone.
    if (host.pruneData) await rootfs.remove(drivers.files.hostPath(containerDir(have.ref.id)));
    await rootfs.remove(drivers.files.hostPath(nspawnPath(have.ref.id)));
  },
} satisfies ResourceHandler<ContainerFilesSpec>;
