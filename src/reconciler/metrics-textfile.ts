// The Prometheus textfile (node_exporter's textfile collector) written after every reconcile pass:
// <root>/var/lib/srvctl/metrics/srvctl.prom, atomically so the collector never reads half a file.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../drivers/atomic-file.js';
import type { ReconcileStatus } from './reconcile-status.js';

export const metricsPath = (root: string): string => join(root, 'var/lib/srvctl/metrics/srvctl.prom');

const labelValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (pairs: Record<string, string>) =>
  `{${Object.entries(pairs)
    .map(([k, v]) => `${k}="${labelValue(v)}"`)
    .join(',')}}`;

/** The exposition text for one status record. */
export function renderMetrics(status: ReconcileStatus): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labelText, value] of samples) lines.push(`${name}${labelText} ${Number.isFinite(value) ? value : 0}`);
  };
  metric('srvctl_reconcile_duration_seconds', 'gauge', 'Duration of the last reconcile pass.', [['', status.duration_seconds]]);
  metric(
    'srvctl_reconcile_result',
    'gauge',
    'Result of the last reconcile pass (1 for the result it had).',
    (['ok', 'failed', 'refused'] as const).map((r) => [labels({ result: r }), status.result === r ? 1 : 0]),
  );
  const resourceSamples: [string, number][] = [];
  for (const kind of Object.keys(status.resources).sort()) {
    const states = status.resources[kind] ?? {};
    for (const state of Object.keys(states).sort()) resourceSamples.push([labels({ kind, state }), states[state] ?? 0]);
  }
  metric('srvctl_resources', 'gauge', 'Resources sc manages on this host, by kind and state after the last pass.', resourceSamples);
  const answering = Object.entries(status.containers_answering ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  metric(
    'srvctl_container_answering',
    'gauge',
    'Whether each running container answered a ping after the last pass (1 yes, 0 no; absent when ping could not run).',
    answering.filter(([, a]) => a !== 'unknown').map(([container, a]) => [labels({ container }), a === 'yes' ? 1 : 0]),
  );
  metric('srvctl_containers_not_answering', 'gauge', 'Running containers that did not answer a ping after the last pass.', [
    ['', answering.filter(([, a]) => a === 'no').length],
  ]);
  metric('srvctl_drift_repaired_total', 'counter', 'Actions that brought the host back to an unchanged desired revision.', [
    ['', status.drift_repaired_total],
  ]);
  metric('srvctl_reconcile_failures_total', 'counter', 'Reconcile passes that failed or were refused.', [['', status.failures_total]]);
  metric('srvctl_reconcile_passes_total', 'counter', 'Reconcile passes run.', [['', status.passes_total]]);
  metric('srvctl_last_success_timestamp', 'gauge', 'Unix time of the end of the last successful pass (0: never).', [
    ['', status.last_success ? Math.floor(Date.parse(status.last_success) / 1000) : 0],
  ]);
  if (status.proxy) {
    metric('srvctl_proxy_up', 'gauge', 'The reverse proxy runs with its current config (1) or not (0).', [['', status.proxy.up ? 1 : 0]]);
    metric(
      'srvctl_certificate_expiry_timestamp_seconds',
      'gauge',
      'Unix time when the certificate served for a name expires.',
      status.proxy.certificates.map((c) => [labels({ name: c.name, source: c.source }), Math.floor(Date.parse(c.not_after) / 1000)]),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function writeMetrics(root: string, status: ReconcileStatus): Promise<void> {
  const path = metricsPath(root);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, renderMetrics(status));
}
