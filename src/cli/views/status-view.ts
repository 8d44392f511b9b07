// `sc status`: every resource sc manages on this host (desired or found), whether it is in sync,
// the containers the datastore puts here, and the last apply. Kind-agnostic, like the planner.
import type { Model } from '../../datastore/model.js';
import type { HostContext } from '../../host-context.js';
import type { Answer } from '../../drivers/ping.js';
import type { ApplyRecord } from '../../reconciler/apply-record.js';
import { answersSummary, type ContainerAnswers } from '../../reconciler/container-answers.js';
import type { HostSurvey } from '../../reconciler/host-pass.js';
import type { ReconcileStatus } from '../../reconciler/reconcile-status.js';
import { refString, type ActionType } from '../../resources/contract.js';
import type { ReverseProxySpec } from '../../resources/reverse-proxy.js';
import type { UserVpnSpec } from '../../resources/user-vpn.js';
import type { Terminal } from '../terminal.js';
import { textTable } from './text-table.js';

export type SyncState = 'in sync' | 'missing' | 'drifted' | 'to be removed' | 'conflict' | 'foreign';

export interface ResourceStatus {
  kind: string;
  id: string;
  state: SyncState;
  owned: boolean | null;
  description?: string;
  observed?: unknown;
}

const stateOf: Record<ActionType, SyncState> = {
  create: 'missing',
  update: 'drifted',
  replace: 'drifted',
  delete: 'to be removed',
  conflict: 'conflict',
  noop: 'in sync',
};

export function resourceStatuses(survey: HostSurvey): ResourceStatus[] {
  const pending = new Map(survey.plan.actions.map((a) => [refString(a.ref), a.type]));
  const rows = new Map<string, ResourceStatus>();
  for (const [kind, objects] of survey.desired) {
    for (const want of objects) {
      const key = refString(want.ref);
      rows.set(key, { kind, id: want.ref.id, state: stateOf[pending.get(key) ?? 'noop'], owned: null, description: want.description });
    }
  }
  for (const [kind, objects] of survey.observed) {
    for (const have of objects) {
      const key = refString(have.ref);
      const row = rows.get(key);
      if (row) {
        row.owned = have.owned;
        row.observed = have.spec;
      } else if (have.owned || pending.has(key)) {
        rows.set(key, {
          kind,
          id: have.ref.id,
          state: stateOf[pending.get(key) ?? 'noop'],
          owned: have.owned,
          description: have.description,
          observed: have.spec,
        });
      }
    }
  }
  return [...rows.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.id.localeCompare(b.id, 'en', { numeric: true }));
}

export type ContainerState = 'running' | 'stopped' | 'missing';

/** The machine kind's observation: running/stopped, or missing when no machine was found at all. */
function machineStates(survey: HostSurvey): Map<string, ContainerState> {
  const states = new Map<string, ContainerState>();
  for (const have of survey.observed.get('machine') ?? []) {
    const spec = have.spec as { state?: unknown } | undefined;
    states.set(have.ref.id, spec?.state === 'running' ? 'running' : 'stopped');
  }
  return states;
}

/** `answers`: the probe of the running containers; containers not probed get null. */
function containersHere(host: HostContext, model: Model, survey: HostSurvey, answers?: ContainerAnswers) {
  const states = machineStates(survey);
  return Object.entries(model.containers)
    .filter(([, c]) => c.host === host.name)
    .map(([name, c]) => {
      const user = model.users[c.user];
      return {
        name,
        ip: c.ip ?? null,
        user: c.user,
        reseller: user?.reseller ?? 'root',
        type: c.type,
        enabled: c.enabled !== false,
        state: states.get(name) ?? 'missing',
        /** true / false; null when not probed (not running) or unknown (ping could not run). */
        answers: answerFlag(answers?.answers[name]),
        /** yes / no / unknown; null when not probed. */
        answer: answers?.answers[name] ?? null,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

const answerFlag = (answer: Answer | undefined): boolean | null => (answer === 'yes' ? true : answer === 'no' ? false : null);

export interface StatusHealth {
  readonly in_sync: boolean;
  /** Running containers asked whether they answer. */
  readonly running: number;
  readonly not_answering: string[];
  /** Running containers whose answer is unknown (ping could not run). */
  readonly unknown: string[];
  /** In sync and every running container answered: what `sc status --check` exits 0 for. */
  readonly healthy: boolean;
  /** One line: `in sync`, `in sync, 1 of 3 running containers not answering: a.test`, `out of sync (…)`. */
  readonly summary: string;
}

/** In sync is not enough: the running containers must also have been seen answering. */
export function statusHealth(survey: HostSurvey, answers: ContainerAnswers | undefined): StatusHealth {
  const s = survey.plan.summary;
  const inSync = survey.plan.inSync;
  const notAnswering = answers?.notAnswering ?? [];
  const unknown = answers?.unknown ?? [];
  const head = inSync
    ? 'in sync'
    : `out of sync (${s.add} to add, ${s.change} to change, ${s.destroy} to destroy, ${s.conflict} conflicts; see sc diff)`;
  const tail = answersSummary(answers);
  return {
    in_sync: inSync,
    running: answers ? Object.keys(answers.answers).length : 0,
    not_answering: notAnswering,
    unknown,
    healthy: inSync && notAnswering.length === 0 && unknown.length === 0,
    summary: tail ? `${head}, ${tail}` : head,
  };
}

/** `sc status --check`: 0 healthy, 2 out of sync or a running container not answering, 1 when it cannot tell (ping could not run). */
export function checkExitCode(health: StatusHealth): 0 | 1 | 2 {
  if (!health.in_sync || health.not_answering.length > 0) return 2;
  return health.unknown.length > 0 ? 1 : 0;
}

/** The host-to-host tunnels: desired ones (down when not observed) and sc's ones found here. */
function vpnLinksHere(survey: HostSurvey) {
  const seen = new Map<string, { peer: string; device: string; state: 'up' | 'down'; last_handshake: string | null; running: boolean }>();
  for (const want of survey.desired.get('vpn-link') ?? []) {
    const spec = want.spec as { device?: string };
    seen.set(want.ref.id, { peer: want.ref.id, device: spec.device ?? '', state: 'down', last_handshake: null, running: false });
  }
  for (const have of survey.observed.get('vpn-link') ?? []) {
    if (!have.owned) continue;
    const spec = have.spec as { device?: string; state?: 'up' | 'down'; lastHandshake?: string; running?: boolean };
    seen.set(have.ref.id, {
      peer: have.ref.id,
      device: spec.device ?? '',
      state: spec.state ?? 'down',
      last_handshake: spec.lastHandshake ?? null,
      running: spec.running === true,
    });
  }
  return [...seen.values()].sort((a, b) => a.device.localeCompare(b.device, 'en', { numeric: true }));
}

/** The user VPN server of this host (user-vpn kind) and the devices connected to it now. */
function userVpnHere(survey: HostSurvey) {
  const have = (survey.observed.get('user-vpn') ?? []).find((o) => o.owned);
  const want = (survey.desired.get('user-vpn') ?? [])[0];
  if (!have && !want) return null;
  const spec = (have?.spec ?? want?.spec ?? {}) as Partial<UserVpnSpec>;
  return {
    device: spec.device ?? '',
    running: have !== undefined && spec.running === true,
    devices: Object.keys((want?.spec as Partial<UserVpnSpec> | undefined)?.clients ?? {}),
    connected: have ? (spec.connected ?? []) : [],
  };
}

/** The proxy's names as the reverse-proxy kind observed them, with what a request got (when probed). */
function proxyHere(survey: HostSurvey, codes?: ReadonlyMap<string, string>) {
  const have = (survey.observed.get('reverse-proxy') ?? []).find((o) => o.owned && o.ref.id === 'haproxy');
  if (!have) return null;
  const spec = have.spec as Partial<ReverseProxySpec>;
  return {
    running: spec.running === true,
    master_pid: spec.masterPid ?? null,
    names: (spec.names ?? []).map((n) => ({ ...n, http_status: codes?.get(n.name) ?? null })),
    refused_certificates: (spec.refusedCertificates ?? []).map((r) => ({ path: r.path, reason: r.reason })),
  };
}

/** Names to probe through the proxy: every name it answers, when it runs. */
export function proxyProbeNames(survey: HostSurvey): string[] {
  const proxy = proxyHere(survey);
  return proxy?.running ? proxy.names.map((n) => n.name) : [];
}

export function statusJson(
  host: HostContext,
  model: Model,
  survey: HostSurvey,
  lastApply: ApplyRecord | undefined,
  lastReconcile?: ReconcileStatus,
  answers?: ContainerAnswers,
  proxyCodes?: ReadonlyMap<string, string>,
) {
  return {
    host: host.name,
    cluster: host.cluster,
    hostnet: host.host.hostnet,
    in_sync: survey.plan.inSync,
    health: statusHealth(survey, answers),
    pending: survey.plan.summary,
    resources: resourceStatuses(survey),
    containers: containersHere(host, model, survey, answers),
    vpn_links: vpnLinksHere(survey),
    user_vpn: userVpnHere(survey),
    proxy: proxyHere(survey, proxyCodes),
    last_apply: lastApply ?? null,
    last_reconcile: lastReconcile ?? null,
  };
}

/** The last `sc reconcile` pass: revision, result, counts; the last good revision when it differs. */
export function renderReconcileLine(r: ReconcileStatus): string {
  const rev = (x: string | null) => (x ? x.slice(0, 12) : 'none');
  const c = r.counts;
  const lines = [
    `Last reconcile: ${r.finished} ${r.result}, revision ${rev(r.revision)} of ${r.source} (${c.actions} actions: ${c.ok} ok, ${c.failed} failed, ${c.skipped} skipped, ${c.conflicts} conflicts)`,
  ];
  if (r.result !== 'ok') lines.push(`  ${r.message}`);
  if (r.last_good_revision !== r.revision) lines.push(`  last good revision: ${rev(r.last_good_revision)}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

export function renderStatus(
  host: HostContext,
  model: Model,
  survey: HostSurvey,
  lastApply: ApplyRecord | undefined,
  terminal: Terminal,
  lastReconcile?: ReconcileStatus,
  answers?: ContainerAnswers,
  proxyCodes?: ReadonlyMap<string, string>,
): string {
  const c = terminal.colors;
  const paint = (s: SyncState) => (s === 'in sync' ? c.green(s) : s === 'conflict' ? c.red(s) : c.yellow(s));
  const out: string[] = [`Host ${host.name} (cluster ${host.cluster}, hostnet ${host.host.hostnet})`, ''];
  const resources = resourceStatuses(survey);
  if (resources.length) {
    out.push(
      textTable(
        ['KIND', 'NAME', 'STATE', 'DETAIL'],
        resources.map((r) => [r.kind, r.id, r.state, r.description ?? '']),
      ).replace(/(in sync|missing|drifted|to be removed|conflict)(?=\s{2}|$)/gm, (m) => paint(m as SyncState)),
    );
  } else {
    out.push('No resources for this host.');
  }
  const containers = containersHere(host, model, survey, answers);
  out.push('', `Containers assigned to this host in the datastore: ${containers.length}`);
  if (containers.length) {
    const answer = (a: Answer | null) => a ?? '-';
    out.push(
      textTable(
        ['NAME', 'IP', 'STATE', 'ANSWERS', 'OWNER', 'RESELLER', 'TYPE', 'ENABLED'],
        containers.map((x) => [x.name, x.ip ?? '-', x.state, answer(x.answer), x.user, x.reseller, x.type, x.enabled ? 'yes' : 'no']),
      ),
    );
  }
  const tunnels = vpnLinksHere(survey);
  if (tunnels.length) {
    out.push('', `VPN links: ${tunnels.length}`);
    out.push(
      textTable(
        ['DEVICE', 'PEER', 'STATE', 'LAST HANDSHAKE'],
        tunnels.map((t) => [t.device, t.peer, t.state, t.last_handshake ?? '-']),
      ),
    );
  }
  const userVpn = userVpnHere(survey);
  if (userVpn) {
    out.push(
      '',
      `User VPN: ${userVpn.device} ${userVpn.running ? 'running' : 'not running'}, ${userVpn.devices.length} device(s), ${userVpn.connected.length} connected`,
    );
    if (userVpn.connected.length) {
      out.push(
        textTable(
          ['DEVICE', 'ADDRESS', 'FROM', 'CONNECTED SINCE', 'LAST SEEN'],
          userVpn.connected.map((d) => [d.common_name, d.address, d.real_address, d.connected_since ?? '-', d.last_seen ?? '-']),
        ),
      );
    }
  }
  const proxy = proxyHere(survey, proxyCodes);
  if (proxy) {
    out.push(
      '',
      `Reverse proxy: ${proxy.running ? `HAProxy running (master pid ${proxy.master_pid})` : 'HAProxy not running'}, ${proxy.names.length} names`,
    );
    const cert = (c: (typeof proxy.names)[number]['certificate']) => (c ? `${c.source} until ${c.not_after.slice(0, 10)}` : '-');
    out.push(
      textTable(
        ['NAME', 'SITE', 'PORT 80', 'PORT 443', 'CERTIFICATE', 'HTTP'],
        proxy.names.map((n) => [n.name, n.site, n.http, n.https, cert(n.certificate), n.http_status ?? '-']),
      ),
    );
    for (const r of proxy.refused_certificates) out.push(c.yellow(`Certificate refused: ${r.reason}`));
  }
  const s = survey.plan.summary;
  const health = statusHealth(survey, answers);
  const unseen = answersSummary(answers);
  if (!survey.plan.inSync) {
    out.push('', `Pending: ${s.add} to add, ${s.change} to change, ${s.destroy} to destroy, ${s.conflict} conflicts (see sc diff).`);
    if (unseen) out.push(c.yellow(`${unseen[0]?.toUpperCase()}${unseen.slice(1)}.`));
  } else if (unseen) {
    out.push('', c.yellow(`In sync, ${unseen}.`));
  } else {
    out.push('', `In sync with the datastore${health.running ? `; all ${health.running} running containers answer` : ''}.`);
  }
  out.push(
    lastApply
      ? `Last apply: ${lastApply.finished} ${lastApply.converged ? 'converged' : `did not converge (${lastApply.failed} failed, ${lastApply.skipped} skipped, ${lastApply.conflicts} conflicts)`}` +
          (lastApply.revision !== undefined
            ? `, revision ${lastApply.revision.slice(0, 12)}${lastApply.source !== undefined ? ` of ${lastApply.source}` : ''}`
            : '')
      : 'Last apply: never (on this --root)',
  );
  if (lastReconcile) out.push(renderReconcileLine(lastReconcile));
  return out.join('\n');
}
