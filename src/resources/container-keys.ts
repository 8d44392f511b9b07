// The container-keys kind (issue 16): in every enabled container of this host, a block sc owns in
// root's authorized_keys with the keys of root, the owner's reseller and the owner. Lines outside
// the block are the container's own and never touched; an edited block is drift and is rewritten;
// a container no longer desired (removed, disabled) loses the block. Written through the files
// driver inside the container's rootfs, never following a symlink out of it.
import { containerKeyLines, resellerOfOwner } from '../access/access-plan.js';
import { findBlock, replaceBlock, srvctlMarkers } from '../access/marked-block.js';
import type { Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { rootfsPath, SRV_DIR } from './container-files-render.js';
import { CONTAINER_KIND } from './container.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';

export const CONTAINER_KEYS_KIND = 'container-keys';
export const AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';
export const KEYS_MARKERS = srvctlMarkers('keys');

export interface ContainerKeysSpec {
  /** The lines inside sc's block. */
  readonly lines: readonly string[];
  /** Observed only: the block is not one clean BEGIN … END pair. */
  readonly damaged?: boolean;
}

const keysPath = (name: string): string => `${rootfsPath(name)}${AUTHORIZED_KEYS}`;

function describe(model: Model, owner: string, lines: readonly string[]): string {
  const reseller = resellerOfOwner(model, owner);
  const count = lines.filter((l) => !l.startsWith('#')).length;
  return `${count} key${count === 1 ? '' : 's'} for root@ (root${reseller ? `, reseller ${reseller}` : ''}${owner !== 'root' ? `, owner ${owner}` : ''})`;
}

/** Rewrites the file with the block set to `lines` (or removed); the rest of the file and its mode/owner stay. */
async function writeBlock(drivers: Drivers, name: string, lines: readonly string[] | undefined): Promise<void> {
  const within = rootfsPath(name);
  const file = keysPath(name);
  const stat = await drivers.files.stat(file, { within });
  if (stat && stat.type !== 'file') throw new ConflictError(`${file} is a ${stat.type}, not a file: sc leaves it alone`);
  const text = (await drivers.files.read(file, { within })) ?? '';
  if (lines === undefined && text === '') return;
  await drivers.files.write(file, replaceBlock(text, KEYS_MARKERS, lines), {
    within,
    mode: stat?.mode ?? 0o600,
    uid: stat?.uid ?? 0,
    gid: stat?.gid ?? 0,
    dirMode: 0o700,
  });
}

export const containerKeysHandler = {
  kind: CONTAINER_KEYS_KIND,
  dependsOnKinds: [CONTAINER_KIND],

  desired(model: Model, host: HostContext): DesiredObject<ContainerKeysSpec>[] {
    return Object.entries(model.containers)
      .filter(([, c]) => c.host === host.name && c.enabled !== false)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([name, c]) => {
        const lines = containerKeyLines(model, c.user);
        // No keys, no block: sc leaves the container's file alone (and takes out a block it wrote before).
        if (lines.length === 0) return [];
        return {
          ref: { kind: CONTAINER_KEYS_KIND, id: name },
          spec: { lines },
          dependsOn: [{ kind: CONTAINER_KIND, id: name }],
          description: describe(model, c.user, lines),
        };
      }) satisfies DesiredObject<ContainerKeysSpec>[];
  },

  /** One pass over /srv: every container tree's root authorized_keys that holds sc's block. */
  async observe(drivers: Drivers): Promise<ObservedObject<ContainerKeysSpec>[]> {
    const entries = (await drivers.files.list(SRV_DIR)) ?? [];
    const observed = await Promise.all(
      entries
        .filter((e) => e.type === 'dir')
        .map(async ({ name }): Promise<ObservedObject<ContainerKeysSpec> | undefined> => {
          const ref = { kind: CONTAINER_KEYS_KIND, id: name };
          const within = rootfsPath(name);
          const stat = await drivers.files.stat(keysPath(name), { within }).catch(() => undefined);
          if (!stat) return undefined;
          if (stat.type !== 'file') {
            return { ref, spec: { lines: [] }, owned: false, description: `${AUTHORIZED_KEYS} in ${name} is a ${stat.type}, not a file` };
          }
          const text = (await drivers.files.read(keysPath(name), { within })) ?? '';
          const block = findBlock(text, KEYS_MARKERS);
          if (!block) return undefined;
          return { ref, spec: { lines: block.lines, ...(block.intact ? {} : { damaged: true }) }, owned: true };
        }),
    );
    return observed.filter((o): o is ObservedObject<ContainerKeysSpec> => o !== undefined);
  },

  normalize(spec: ContainerKeysSpec): unknown {
    return { lines: spec.lines, damaged: spec.damaged ?? false };
  },

  conflict(want: DesiredObject<ContainerKeysSpec>, observed: readonly ObservedObject<ContainerKeysSpec>[]): string | undefined {
    const inTheWay = observed.find((o) => o.ref.id === want.ref.id);
    return inTheWay ? `${inTheWay.description ?? 'foreign'}: sc leaves it alone; make it a regular file` : undefined;
  },

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<ContainerKeysSpec>): Promise<void> {
    await writeBlock(drivers, want.ref.id, want.spec.lines);
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<ContainerKeysSpec>): Promise<void> {
    await writeBlock(drivers, want.ref.id, want.spec.lines);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<ContainerKeysSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change ${keysPath(have.ref.id)}: it is not a file sc wrote its block into`);
    await writeBlock(drivers, have.ref.id, undefined);
  },
} satisfies ResourceHandler<ContainerKeysSpec>;
