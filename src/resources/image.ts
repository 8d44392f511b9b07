// The image resource: one base root filesystem per container type used on this host, under
// /var/srvctl3/rootfs/TYPE, complete only with its marker (SPEC §3). Built once; rebuilt (and
// swapped in whole) when its builder or parameters change; removed when no container uses it.
import type { Model } from '../datastore/model.js';
import { IMAGE_MARKER, IMAGES_DIR, type ImageMarker } from '../drivers/rootfs.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { DesiredObject, ModelProblem, ObservedObject, ResourceHandler } from './contract.js';
import { imageRecipe, imageSettingsProblems, runImageBuild, type ImageRecipe } from './image-builders.js';

export const IMAGE_KIND = 'image';

export type ImageSpec = ImageRecipe;

/** The container types of this host, each with how many containers use it. */
function typesOnHost(model: Model, hostName: string): Map<string, number> {
  const types = new Map<string, number>();
  for (const container of Object.values(model.containers)) {
    if (container.host === hostName) types.set(container.type, (types.get(container.type) ?? 0) + 1);
  }
  return types;
}

async function build(drivers: Drivers, want: DesiredObject<ImageSpec>): Promise<void> {
  const rootfs = drivers.rootfs;
  const marker: ImageMarker = { builder: want.spec.builder ?? 'none', params: { ...want.spec.params }, built_at: new Date().toISOString() };
  await rootfs.buildImage(want.ref.id, marker, (dir) =>
    runImageBuild(rootfs, want.ref.id, want.spec, dir, drivers.files.hostPath('/etc/os-release')),
  );
}

export const imageHandler = {
  kind: IMAGE_KIND,

  // Bad builder settings are bad input: found by `sc validate`, not by the build.
  validate(model: Model): ModelProblem[] {
    return imageSettingsProblems(model);
  },

  desired(model: Model, host: HostContext): DesiredObject<ImageSpec>[] {
    return [...typesOnHost(model, host.name)]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([type, count]) => {
        const spec = imageRecipe(type, model.settings);
        const users = `${count} container${count === 1 ? '' : 's'}`;
        return {
          ref: { kind: IMAGE_KIND, id: type },
          spec,
          description: spec.builder ? `${spec.builder} image for ${users}` : `no builder configured (settings.images.${type}) for ${users}`,
        };
      });
  },

  async observe(drivers: Drivers): Promise<ObservedObject<ImageSpec>[]> {
    const images = await drivers.rootfs.listImages();
    return images.map(({ type, marker }) =>
      marker
        ? {
            ref: { kind: IMAGE_KIND, id: type },
            spec: { builder: marker.builder as ImageSpec['builder'], params: marker.params },
            owned: true,
            description: `${marker.builder} image built ${marker.built_at}`,
          }
        : {
            ref: { kind: IMAGE_KIND, id: type },
            spec: { builder: null, params: {} },
            owned: false,
            description: `directory without ${IMAGE_MARKER}`,
          },
    );
  },

  normalize(spec: ImageSpec): ImageSpec {
    return { builder: spec.builder, params: spec.params };
  },

  conflict(want: DesiredObject<ImageSpec>, observed: readonly ObservedObject<ImageSpec>[]): string | undefined {
    const inTheWay = observed.find((o) => !o.owned && o.ref.id === want.ref.id);
    if (!inTheWay) return undefined;
    return `${IMAGES_DIR}/${want.ref.id} exists but has no ${IMAGE_MARKER}: sc did not build it (or never finished); move it away and sc builds the image`;
  },

  // A changed recipe rebuilds the image next to the old one and swaps it in whole.
  canUpdate: () => true,

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<ImageSpec>): Promise<void> {
    await build(drivers, want);
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<ImageSpec>, have: ObservedObject<ImageSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to rebuild ${IMAGES_DIR}/${have.ref.id}: sc did not build it`);
    await build(drivers, want);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<ImageSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to delete ${IMAGES_DIR}/${have.ref.id}: sc did not build it`);
    await drivers.rootfs.removeImage(have.ref.id);
  },
} satisfies ResourceHandler<ImageSpec>;
