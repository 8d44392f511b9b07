// The host-names kind (issue 16): a block sc owns in the host's /etc/hosts naming every container
// of the cluster with its address (srvctl 3 had it), so the host — and the jump accounts' port
// forwarding to `NAME:22` — resolves container names. The rest of /etc/hosts is never touched.
import { clusterHostLines } from '../access/access-plan.js';
import { findBlock, replaceBlock, srvctlMarkers } from '../access/marked-block.js';
import type { Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';

export const HOST_NAMES_KIND = 'host-names';
export const HOSTS_FILE = '/etc/hosts';
export const HOSTS_MARKERS = srvctlMarkers('containers');
const ID = 'etc-hosts';

export interface HostNamesSpec {
  readonly lines: readonly string[];
  readonly damaged?: boolean;
}

async function writeBlock(drivers: Drivers, lines: readonly string[] | undefined): Promise<void> {
  const stat = await drivers.files.stat(HOSTS_FILE);
  if (stat && stat.type !== 'file') throw new ConflictError(`${HOSTS_FILE} is a ${stat.type}, not a file: sc leaves it alone`);
  const text = (await drivers.files.read(HOSTS_FILE)) ?? '';
  await drivers.files.write(HOSTS_FILE, replaceBlock(text, HOSTS_MARKERS, lines), {
    mode: stat?.mode ?? 0o644,
    uid: stat?.uid ?? 0,
    gid: stat?.gid ?? 0,
  });
}

export const hostNamesHandler = {
  kind: HOST_NAMES_KIND,

  desired(model: Model, host: HostContext): DesiredObject<HostNamesSpec>[] {
    const lines = clusterHostLines(model, host.cluster);
    if (lines.length === 0) return [];
    return [
      {
        ref: { kind: HOST_NAMES_KIND, id: ID },
        spec: { lines },
        description: `${lines.length} container name${lines.length === 1 ? '' : 's'} of cluster ${host.cluster} in ${HOSTS_FILE}`,
      },
    ];
  },

  async observe(drivers: Drivers): Promise<ObservedObject<HostNamesSpec>[]> {
    const stat = await drivers.files.stat(HOSTS_FILE);
    if (!stat || stat.type !== 'file') return [];
    const block = findBlock((await drivers.files.read(HOSTS_FILE)) ?? '', HOSTS_MARKERS);
    if (!block) return [];
    return [{ ref: { kind: HOST_NAMES_KIND, id: ID }, spec: { lines: block.lines, ...(block.intact ? {} : { damaged: true }) }, owned: true }];
  },

  normalize(spec: HostNamesSpec): unknown {
    return { lines: spec.lines, damaged: spec.damaged ?? false };
  },

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<HostNamesSpec>): Promise<void> {
    await writeBlock(drivers, want.spec.lines);
  },

  async update(drivers: Drivers, _host: HostContext, want: DesiredObject<HostNamesSpec>): Promise<void> {
    await writeBlock(drivers, want.spec.lines);
  },

  async delete(drivers: Drivers): Promise<void> {
    await writeBlock(drivers, undefined);
  },
} satisfies ResourceHandler<HostNamesSpec>;
