// `sc adopt`: takes over the srvctl 3 containers of this host that an import described. Each one's
// srvctl 3 layout (/srv/NAME/rootfs and its .nspawn) must match the imported record; then it gets
// sc's two marks — a state record of its machine (running or stopped, with a config no desired
// one has) and sc's header on /etc/systemd/nspawn/NAME.nspawn (its srvctl 3 settings below it, so
// it keeps working until then) — and the next `sc apply` rewrites its network configuration and
// restarts it on its new address. Its data is not touched. What does not match is left alone.
import type { Model } from '../datastore/model.js';
import { rootfsDriver, IMAGES_DIR } from '../drivers/rootfs.js';
import { resolveRuntime, type RuntimeKind } from '../drivers/runtime.js';
import {
  findRunningMachines,
  readContainerLayout,
  recordAdoptedMachine,
  recordedMachines,
  writeSettingsMark,
  type RunningMachine,
} from '../drivers/srvctl3-host.js';
import { NSPAWN_UNIT_PATH } from '../drivers/nspawn-systemd.js';
import type { Drivers } from '../drivers/types.js';
import type { HostContext } from '../host-context.js';
import { carriesHeader, generatedHeader, nspawnPath } from '../resources/container-files-render.js';
import type { ContainerMapping, MigrationReport } from './migration-report.js';
import { layoutMismatches, srvctl3NspawnPath, type Srvctl3Layout } from './srvctl3-layout.js';

/** The second line of an adopted container's .nspawn: how adopt tells its own work from sc's. */
export const ADOPTED_MARK = '# Adopted from srvctl 3 by `sc adopt`';

export interface AdoptedContainer {
  readonly name: string;
  readonly old_ip: string | null;
  readonly ip: string;
  /** Whether it runs now (the next apply restarts it) or is stopped (the next apply starts it). */
  readonly state: 'running' | 'stopped';
  /** Where its srvctl 3 settings were. */
  readonly settings: string;
}

export interface AdoptResult {
  readonly host: string;
  readonly runtime: RuntimeKind;
  readonly dry_run: boolean;
  readonly adopted: AdoptedContainer[];
  /** Already sc's (adopted before, or made by sc). */
  readonly already: string[];
  /** A srvctl 3 layout that does not match the imported record: left alone. */
  readonly unmatched: { name: string; reasons: string[] }[];
  /** Nothing of it on this host: the next apply makes it afresh from its image. */
  readonly absent: string[];
  readonly notes: string[];
}

export interface AdoptInput {
  readonly drivers: Drivers;
  readonly host: HostContext;
  readonly model: Model;
  readonly report: MigrationReport;
  readonly dryRun?: boolean;
}

function adoptedSettings(record: ContainerMapping, from: string, text: string): string {
  return [
    generatedHeader(record.name),
    `${ADOPTED_MARK}: below are its settings from ${from}${record.old_ip !== null ? ` (old address ${record.old_ip})` : ''}.`,
    `# The next \`sc apply\` rewrites this file for ${record.ip} and restarts the container.`,
    text.endsWith('\n') ? text : `${text}\n`,
  ].join('\n');
}

export async function adoptSrvctl3Containers(input: AdoptInput): Promise<AdoptResult> {
  const { drivers, host, model, report } = input;
  const dryRun = input.dryRun === true;
  const runtime = resolveRuntime(host.runtime);
  const notes: string[] = [];
  const already: string[] = [];
  const unmatched: { name: string; reasons: string[] }[] = [];
  const absent: string[] = [];
  const matched: { record: ContainerMapping; from: string; text: string }[] = [];
  const adoptedBefore: ContainerMapping[] = [];

  for (const record of report.containers.filter((c) => c.host === host.name)) {
    const current = Object.hasOwn(model.containers, record.name) ? model.containers[record.name] : undefined;
    if (current?.host !== host.name) {
      notes.push(`${record.name}: the datastore no longer has it on ${host.name}; not adopted`);
      continue;
    }
    const files = await readContainerLayout(drivers, record.name);
    const etc = files.etcSettings;
    if (etc.kind === 'file' && carriesHeader(etc.text, record.name)) {
      already.push(record.name);
      if (etc.text.split('\n')[1]?.startsWith(ADOPTED_MARK)) adoptedBefore.push(record);
      continue;
    }
    // srvctl 3.2 kept it next to the tree; a hand-made setup in /etc/systemd/nspawn.
    const settings =
      etc.kind === 'file'
        ? { path: nspawnPath(record.name), text: etc.text }
        : files.besideSettings.kind === 'file' && !carriesHeader(files.besideSettings.text, record.name)
          ? { path: srvctl3NspawnPath(record.name), text: files.besideSettings.text }
          : undefined;
    if (!settings && files.rootfs === 'missing') {
      absent.push(record.name);
      continue;
    }
    const layout: Srvctl3Layout = {
      ...(settings ? { nspawn: settings } : {}),
      rootfs: files.rootfs,
      networkFiles: files.networkFiles,
      ...(files.ctype !== undefined ? { ctype: files.ctype } : {}),
    };
    const reasons = layoutMismatches(record, layout);
    if (reasons.length > 0 || !settings) unmatched.push({ name: record.name, reasons });
    else matched.push({ record, from: settings.path, text: settings.text });
  }

  // A machine adopted earlier whose state record was lost (an interrupted adopt) gets it again.
  const recorded = await recordedMachines(drivers.files);
  const unrecorded = adoptedBefore.filter((r) => !recorded.has(r.name));
  const running = new Map<string, RunningMachine>(
    (await findRunningMachines(drivers, runtime, [...matched.map((m) => m.record.name), ...unrecorded.map((r) => r.name)])).map((m) => [m.name, m]),
  );
  const adopted: AdoptedContainer[] = [];
  for (const { record, from, text } of matched) {
    const machine = running.get(record.name);
    if (!dryRun) {
      // The state record first, the .nspawn (the container's mark) last: an interrupted adopt is redone.
      if (!recorded.has(record.name))
        await recordAdoptedMachine(drivers.files, {
          name: record.name,
          runtime,
          ...(machine ? { running: machine } : {}),
          ...(host.netns !== undefined ? { netns: host.netns } : {}),
        });
      await writeSettingsMark(drivers, nspawnPath(record.name), adoptedSettings(record, from, text));
    }
    adopted.push({ name: record.name, old_ip: record.old_ip, ip: record.ip, state: machine ? 'running' : 'stopped', settings: from });
  }
  if (!dryRun) {
    for (const record of unrecorded) {
      const machine = running.get(record.name);
      await recordAdoptedMachine(drivers.files, {
        name: record.name,
        runtime,
        ...(machine ? { running: machine } : {}),
        ...(host.netns !== undefined ? { netns: host.netns } : {}),
      });
    }
  }

  // What else of srvctl 3 is in sc's way on this host.
  const types = new Set(adopted.map((a) => model.containers[a.name]?.type).filter((t): t is string => t !== undefined));
  for (const image of await rootfsDriver(drivers).listImages()) {
    if (types.has(image.type) && !image.marker) {
      notes.push(
        `${IMAGES_DIR}/${image.type} was not built by sc (srvctl 3's image): sc leaves it alone and cannot build its own there; move it away before \`sc apply\``,
      );
    }
  }
  if (runtime === 'systemd' && adopted.length > 0) {
    const unit = await rootfsDriver(drivers).readFile(drivers.files.hostPath(NSPAWN_UNIT_PATH));
    if (unit.kind === 'file' && !unit.text.startsWith('# Generated by srvctl')) {
      notes.push(
        `${NSPAWN_UNIT_PATH} is srvctl 3's: the next \`sc apply\` replaces it with sc's (every container of this host then starts through sc's unit)`,
      );
    }
  }
  return { host: host.name, runtime, dry_run: dryRun, adopted, already, unmatched, absent, notes };
}

/** The result as an admin reads it. */
export function renderAdoptResult(result: AdoptResult, root: string): string {
  const lines: string[] = [];
  const verb = result.dry_run ? 'Would adopt' : 'Adopted';
  lines.push(
    `${verb} ${result.adopted.length} srvctl 3 container${result.adopted.length === 1 ? '' : 's'} on ${result.host} (${result.runtime} runtime${root !== '/' ? `, root ${root}` : ''}):`,
  );
  const width = Math.max(0, ...result.adopted.map((a) => a.name.length));
  for (const a of result.adopted) lines.push(`  ${a.name.padEnd(width)}  ${a.old_ip ?? '-'} → ${a.ip}  ${a.state}`);
  if (result.already.length) lines.push(`Already sc's: ${result.already.join(', ')}`);
  if (result.unmatched.length) {
    lines.push('Not adopted, left alone (their srvctl 3 layout does not match the import):');
    for (const u of result.unmatched) lines.push(`  ${u.name}: ${u.reasons.join('; ')}`);
  }
  if (result.absent.length)
    lines.push(`Not on this host (no /srv/NAME): ${result.absent.join(', ')} — \`sc apply\` makes them afresh from their image, without data`);
  for (const note of result.notes) lines.push(`Note: ${note}`);
  if (result.adopted.length && !result.dry_run)
    lines.push("Next: `sc diff` shows them as updates (new address, sc's files, a restart); `sc apply` carries them out.");
  return lines.join('\n');
}
