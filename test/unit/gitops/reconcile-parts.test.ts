// The pure parts of GitOps: --source parsing, backoff, resource counts, the metrics text, unit texts,
// and the last-reconcile lines of `sc status`.
import { renderReconcileLine } from '../../../src/cli/views/status-view.js';
import { parseGitSource, sourceLabel } from '../../../src/datastore/git-source.js';
import { renderMetrics } from '../../../src/reconciler/metrics-textfile.js';
import type { Plan } from '../../../src/reconciler/planner.js';
import { nextDelaySeconds, pollSeconds, resourceCounts } from '../../../src/reconciler/reconcile-loop.js';
import { emptyCounts, type ReconcileStatus } from '../../../src/reconciler/reconcile-status.js';
import { renderReconcileService, renderReconcileTimer, renderUnits, systemdWord } from '../../../src/resources/systemd-units.js';
import { UserError } from '../../../src/errors.js';

describe('--source URL[#REF]', () => {
  it('splits the ref off at the last #', () => {
    expect(parseGitSource('https://git.example.net/farm.git#main')).toEqual({ url: 'https://git.example.net/farm.git', ref: 'main' });
    expect(parseGitSource('git@git.example.net:farm.git#v1.2')).toEqual({ url: 'git@git.example.net:farm.git', ref: 'v1.2' });
    expect(parseGitSource('file:///srv/farm.git')).toEqual({ url: 'file:///srv/farm.git', ref: undefined });
    expect(parseGitSource('ssh://h/x#release/2026')).toEqual({ url: 'ssh://h/x', ref: 'release/2026' });
  });

  it('makes a local path absolute', () => {
    expect(parseGitSource('farm.git#main').url).toBe(`${process.cwd()}/farm.git`);
  });

  it('refuses option-like URLs and refs, and odd ref names', () => {
    for (const bad of ['--upload-pack=x', 'x#-b', 'x#a..b', 'x#a b', 'x#/abs', '#main']) expect(() => parseGitSource(bad)).toThrow(UserError);
  });

  it('labels a source as written', () => {
    expect(sourceLabel({ url: 'file:///r', ref: 'main' })).toBe('file:///r#main');
    expect(sourceLabel({ url: 'file:///r' })).toBe('file:///r');
  });
});

describe('loop timing', () => {
  it('waits the interval plus up to the jitter after a success', () => {
    expect(nextDelaySeconds(300, 30, 0, 3600, () => 0)).toBe(300);
    expect(nextDelaySeconds(300, 30, 0, 3600, () => 0.5)).toBe(315);
  });

  it('doubles per consecutive failure, capped', () => {
    expect([1, 2, 3, 4, 5].map((n) => nextDelaySeconds(300, 0, n, 3600, () => 0))).toEqual([600, 1200, 2400, 3600, 3600]);
    expect(nextDelaySeconds(1, 0, 20, 8, () => 0)).toBe(8);
  });

  it('polls the source every 10 s at most', () => {
    expect(pollSeconds(300)).toBe(10);
    expect(pollSeconds(1)).toBe(1);
  });
});

describe('resource counts and metrics', () => {
  const plan: Plan = {
    actions: [
      { type: 'create', ref: { kind: 'bridge', id: 'b3' }, patch: [], reasons: [], after: [] },
      { type: 'conflict', ref: { kind: 'bridge', id: 'b4' }, patch: [], reasons: [], after: [] },
      { type: 'update', ref: { kind: 'container', id: 'c1' }, patch: [], reasons: [], after: [] },
    ],
    noops: [
      { kind: 'bridge', id: 'b1' },
      { kind: 'bridge', id: 'b2' },
    ],
    summary: { add: 1, change: 1, destroy: 0, conflict: 1 },
    hasChanges: true,
    inSync: false,
  };

  it('counts resources by kind and state', () => {
    expect(resourceCounts(plan)).toEqual({ bridge: { in_sync: 2, missing: 1, conflict: 1 }, container: { drifted: 1 } });
  });

  const status: ReconcileStatus = {
    source: 'file:///r#main',
    revision: 'a'.repeat(40),
    last_good_revision: 'a'.repeat(40),
    started: '2026-01-01T00:00:00.000Z',
    finished: '2026-01-01T00:00:02.500Z',
    duration_seconds: 2.5,
    result: 'ok',
    message: 'applied',
    warnings: [],
    counts: emptyCounts(),
    failures: [],
    diagnostics: [],
    resources: resourceCounts(plan),
    drift_repaired_total: 7,
    failures_total: 2,
    passes_total: 9,
    last_success: '2026-01-01T00:00:02.500Z',
  };

  it('renders the Prometheus text format', () => {
    const text = renderMetrics(status);
    expect(text).toContain('# TYPE srvctl_reconcile_duration_seconds gauge\nsrvctl_reconcile_duration_seconds 2.5\n');
    expect(text).toContain('srvctl_resources{kind="bridge",state="in_sync"} 2\n');
    expect(text).toContain('srvctl_resources{kind="container",state="drifted"} 1\n');
    expect(text).toContain('# TYPE srvctl_drift_repaired_total counter\nsrvctl_drift_repaired_total 7\n');
    expect(text).toContain('srvctl_reconcile_failures_total 2\n');
    expect(text).toContain('srvctl_last_success_timestamp 1767225602\n');
    expect(text).toContain('srvctl_reconcile_result{result="ok"} 1\nsrvctl_reconcile_result{result="failed"} 0\n');
    // Every sample line is NAME{labels} VALUE; every metric has HELP and TYPE.
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) srvctl_\w+ .+|srvctl_\w+(\{[^}]*\})? -?[0-9.e+]+)$/);
  });

  it('reports the proxy and the expiry of each certificate it serves', () => {
    const text = renderMetrics({
      ...status,
      proxy: { up: true, certificates: [{ name: 'a.example.com', source: 'acme', not_after: '2027-03-01T00:00:00.000Z' }] },
    });
    expect(text).toContain('# TYPE srvctl_proxy_up gauge\nsrvctl_proxy_up 1\n');
    expect(text).toContain('srvctl_certificate_expiry_timestamp_seconds{name="a.example.com",source="acme"} 1803859200\n');
    expect(renderMetrics(status)).not.toContain('srvctl_proxy_up');
  });

  it('exports per-container answering: 1 yes, 0 no, nothing for an unknown answer; and how many do not answer', () => {
    const text = renderMetrics({ ...status, containers_answering: { 'b.test': 'no', 'a.test': 'yes', 'c.test': 'unknown' } });
    expect(text).toContain(
      '# TYPE srvctl_container_answering gauge\nsrvctl_container_answering{container="a.test"} 1\nsrvctl_container_answering{container="b.test"} 0\n',
    );
    expect(text).not.toContain('c.test');
    expect(text).toContain('srvctl_containers_not_answering 1\n');
  });

  it('never had a success: timestamp 0', () => {
    expect(renderMetrics({ ...status, last_success: null })).toContain('srvctl_last_success_timestamp 0\n');
  });
});

describe('systemd unit texts', () => {
  const options = {
    command: ['/usr/bin/node', '/opt/sc/dist/cli/main.js'],
    globalArgs: ['--source', 'https://g.example/farm.git#main', '--host', 'web1.example.net'],
    intervalSeconds: 300,
    jitterSeconds: 30,
  };

  it('the service runs one pass with the global options baked in', () => {
    const text = renderReconcileService(options);
    expect(text).toContain('Type=oneshot\n');
    expect(text).toContain(
      'ExecStart=/usr/bin/node /opt/sc/dist/cli/main.js --source https://g.example/farm.git#main --host web1.example.net reconcile --once\n',
    );
  });

  it('the timer repeats every interval with the jitter as RandomizedDelaySec, persistently', () => {
    const text = renderReconcileTimer(options);
    expect(text).toContain('OnBootSec=60s\n');
    expect(text).toContain('OnUnitActiveSec=300s\n');
    expect(text).toContain('RandomizedDelaySec=30s\n');
    expect(text).toContain('Persistent=true\n');
    expect(text).toContain('Unit=srvctl-reconcile.service\n');
    expect(text).toContain('WantedBy=timers.target\n');
    expect(renderReconcileTimer({ intervalSeconds: 1, jitterSeconds: 0 })).not.toContain('RandomizedDelaySec');
  });

  it('quotes words for systemd: specifiers, variables, blanks', () => {
    expect(systemdWord('/usr/bin/sc')).toBe('/usr/bin/sc');
    expect(systemdWord('50%')).toBe('50%%');
    expect(systemdWord('$HOME')).toBe('$$HOME');
    expect(systemdWord('a b')).toBe('"a b"');
    expect(systemdWord('say "hi"')).toBe('"say \\"hi\\""');
    expect(systemdWord('')).toBe('""');
  });

  it("installs the reconcile service, its timer and the containers' template unit", () => {
    expect([...renderUnits(options).keys()]).toEqual(['srvctl-reconcile.service', 'srvctl-reconcile.timer', 'srvctl-nspawn@.service']);
  });
});

describe('sc status: the last reconcile', () => {
  it('shows result, revision, counts, and the last good revision when the pass was refused', () => {
    const refused: ReconcileStatus = {
      source: 'file:///r#main',
      revision: 'b'.repeat(40),
      last_good_revision: 'a'.repeat(40),
      started: '2026-01-01T00:00:00.000Z',
      finished: '2026-01-01T00:00:01.000Z',
      duration_seconds: 1,
      result: 'refused',
      message: 'revision bbbbbbbbbbbb is refused: the datastore is invalid',
      warnings: ['fetching file:///r#main failed'],
      counts: emptyCounts(),
      failures: [],
      diagnostics: [],
      resources: {},
      drift_repaired_total: 0,
      failures_total: 1,
      passes_total: 2,
      last_success: null,
    };
    expect(renderReconcileLine(refused).split('\n')).toEqual([
      'Last reconcile: 2026-01-01T00:00:01.000Z refused, revision bbbbbbbbbbbb of file:///r#main (0 actions: 0 ok, 0 failed, 0 skipped, 0 conflicts)',
      '  revision bbbbbbbbbbbb is refused: the datastore is invalid',
      '  last good revision: aaaaaaaaaaaa',
      '  warning: fetching file:///r#main failed',
    ]);
  });
});
