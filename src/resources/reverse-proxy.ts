// The reverse-proxy resource (SPEC §3; issue 14): `reverse-proxy/haproxy`, the one HAProxy of this
// host routing every enabled site of the cluster on ports 80 and 443. Its spec compares the inputs
// the config was rendered from (the sites, the certificates on the host), the file's integrity,
// and whether the running master loaded that file; an action renders, checks with `haproxy -c`,
// installs, and starts or reloads the master only when the file changed or was not loaded.
import { createHash } from 'node:crypto';
import type { Model } from '../datastore/model.js';
import { HAPROXY_CONFIG_PATH, HAPROXY_MAP_DIR, haproxyRunFiles, type HaproxyDriver, type HaproxyState } from '../drivers/haproxy.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { DesiredObject, ObserveContext, ObservedObject, ResourceHandler } from './contract.js';
import { haproxyConfigDigest, readConfigStamp, renderHaproxy, stampConfig } from './haproxy-config.js';
import { inventoryDigest, readCertificateInventory, type RefusedCertificate } from './proxy-certificates.js';
import { proxyEnabledOn, proxySites, routesFor, type PortRule, type SiteInput } from './proxy-routes.js';
import { ACME_RESPONDER_PORT } from '../drivers/acme.js';

export const REVERSE_PROXY_KIND = 'reverse-proxy';
export const REVERSE_PROXY_ID = 'haproxy';

export interface ReverseProxySpec {
  /** Digest of the site inputs the config was rendered from. */
  readonly sites: string;
  /** `stale`: the certificates on the host changed since the config was rendered (new, renewed, expired). */
  readonly certificates: 'current' | 'stale';
  /** `edited`: the file is not what sc wrote (a hand edit); `missing`: there is none. */
  readonly config: 'intact' | 'edited' | 'missing';
  readonly running: boolean;
  /** `stale`: the running master has not loaded the file as it is now. */
  readonly loaded: 'current' | 'stale';
  /** Desired only: what to render from. */
  readonly input?: ProxyInput;
  /** Observed only, for status. */
  readonly masterPid?: number;
  readonly workers?: number;
  /** Observed only, for status: what each name gets, with the certificates on the host now. */
  readonly names?: readonly NameStatus[];
  /** Observed only, for status: operator certificates and directories refused for not being root-only. */
  readonly refusedCertificates?: readonly RefusedCertificate[];
}

/** One name the proxy answers, as `sc status` shows it. */
export interface NameStatus {
  readonly name: string;
  readonly site: string;
  readonly role: string;
  /** `10.17.1.20:80 (local)`, `10.33.1.20:80 (mesh)`, or where port 80 redirects to. */
  readonly http: string;
  readonly https: string;
  readonly certificate: { readonly source: 'operator' | 'acme'; readonly not_after: string } | null;
}

function nameStatuses(input: ProxyInput, inventory: Parameters<typeof routesFor>[2]): NameStatus[] {
  const routes = routesFor(input.sites, input.hostName, inventory);
  const backends = new Map(
    routes.backends.map((b) => [b.id, `${b.address}:${b.port}${b.tls ? ' tls' : ''} (${b.local ? 'local' : `mesh, ${b.host}`})`]),
  );
  const show = (rule: PortRule): string => (rule.action === 'serve' ? (backends.get(rule.backend) ?? rule.backend) : `301 ${rule.to}`);
  return routes.hostnames.map((h) => ({
    name: h.hostname,
    site: h.site,
    role: h.role,
    http: show(h.http),
    https: show(h.https),
    certificate: h.certificate ? { source: h.certificate.source, not_after: h.certificate.notAfter } : null,
  }));
}

/** What the config is rendered from, besides the certificates found on the host. */
export interface ProxyInput {
  readonly sites: readonly SiteInput[];
  readonly hostName: string;
  /** Port 80 sends ACME challenges to sc's responder. */
  readonly acme: boolean;
}

const inputDigest = (input: ProxyInput): string =>
  createHash('sha256')
    .update(JSON.stringify([input.sites, input.acme]))
    .digest('hex')
    .slice(0, 16);

/**
 * Whether certificates are ordered by ACME for names without an operator certificate: when
 * settings.proxy.acme is there (ordering means agreeing to the CA's terms: the operator opts in).
 */
export const acmeEnabled = (model: Model): boolean => model.settings.proxy?.acme !== undefined && model.settings.proxy.acme.enabled !== false;

/** The desired proxy input of this host, or undefined when it runs no proxy. */
export function proxyInput(model: Model, host: HostContext): ProxyInput | undefined {
  if (!proxyEnabledOn(model, host.cluster, host.name)) return undefined;
  const sites = proxySites(model, host.cluster);
  return sites.length > 0 ? { sites, hostName: host.name, acme: acmeEnabled(model) } : undefined;
}

/**
 * Renders the config from the input and the certificates on the host now, checks it, installs it,
 * and starts or reloads the master when the file changed or was not loaded. Also used by the
 * certificate kind right after it stored new certificates.
 */
export async function renderAndApplyProxy(drivers: Drivers, input: ProxyInput): Promise<void> {
  const haproxy = haproxyOf(drivers);
  const { found } = await readCertificateInventory(drivers.files, new Date());
  const routes = routesFor(
    input.sites,
    input.hostName,
    found.map((f) => f.info),
  );
  const rendered = renderHaproxy(routes, {
    adminSocket: drivers.files.hostPath(haproxyRunFiles.adminSocket),
    resolve: (p: string) => drivers.files.hostPath(p),
    mapDir: HAPROXY_MAP_DIR,
    ...(input.acme ? { acmeResponder: `127.0.0.1:${ACME_RESPONDER_PORT}` } : {}),
  });
  const text = stampConfig(rendered.config, { sites: inputDigest(input), certificates: inventoryDigest(found) });
  // New maps have new names: writing them changes nothing for the running proxy.
  for (const map of rendered.maps) await drivers.files.write(map.path, map.text, { mode: 0o644 });
  // A config HAProxy refuses never replaces the one in use.
  await haproxy.check(text);
  await haproxy.install(text);
  const state = await haproxy.observe();
  const digest = haproxyConfigDigest(text);
  if (state.masterPid === undefined || state.loaded !== digest) await haproxy.startOrReload(digest);
  // Maps no config refers to any more (the running proxy loaded its own at the reload).
  const keep = new Set(rendered.maps.map((m) => m.path.slice(HAPROXY_MAP_DIR.length + 1)));
  for (const entry of (await drivers.files.list(HAPROXY_MAP_DIR)) ?? []) {
    if (entry.type === 'file' && entry.name.endsWith('.map') && !keep.has(entry.name)) await drivers.files.remove(`${HAPROXY_MAP_DIR}/${entry.name}`);
  }
}

function haproxyOf(drivers: Drivers): HaproxyDriver {
  if (!drivers.haproxy) throw new ScError('this driver set has no haproxy driver');
  return drivers.haproxy;
}

/** Listeners on 80/443 that are not sc's master or its workers: a proxy sc does not own. */
function foreignListeners(state: HaproxyState): string[] {
  const ours = new Set([...(state.masterPid !== undefined ? [state.masterPid] : []), ...state.workers]);
  return state.listeners.flatMap((l) => {
    const others = l.processes.filter((p) => !ours.has(p.pid));
    if (others.length === 0 && l.processes.length > 0) return [];
    const who = others.length > 0 ? others.map((p) => `${p.name} (pid ${p.pid})`).join(', ') : 'a process sc cannot see';
    return [`port ${l.port} is held by ${who}`];
  });
}

/** Every map the config names exists with the content its name's digest says (no hand edit). */
async function mapsMatchTheirNames(drivers: Drivers, configText: string): Promise<boolean> {
  const names = new Set([...configText.matchAll(/srvctl-maps\/([a-z]+-[a-z]+-([0-9a-f]{16}))\.map/g)].map((m) => m[1] as string));
  for (const name of names) {
    const text = await drivers.files.read(`${HAPROXY_MAP_DIR}/${name}.map`);
    if (text === undefined || createHash('sha256').update(text).digest('hex').slice(0, 16) !== name.slice(-16)) return false;
  }
  return true;
}

export const reverseProxyHandler = {
  kind: REVERSE_PROXY_KIND,

  desired(model: Model, host: HostContext): DesiredObject<ReverseProxySpec>[] {
    const input = proxyInput(model, host);
    if (!input) return [];
    const local = input.sites.filter((s) => s.host === host.name).length;
    return [
      {
        ref: { kind: REVERSE_PROXY_KIND, id: REVERSE_PROXY_ID },
        spec: { sites: inputDigest(input), certificates: 'current', config: 'intact', running: true, loaded: 'current', input },
        description: `HAProxy on ports 80/443: ${input.sites.length} sites (${local} on this host, ${input.sites.length - local} over the VPN mesh)`,
      },
    ];
  },

  async observe(drivers: Drivers, _host: HostContext, { desired }: ObserveContext<ReverseProxySpec>): Promise<ObservedObject<ReverseProxySpec>[]> {
    const [state, { found, refused }] = await Promise.all([haproxyOf(drivers).observe(), readCertificateInventory(drivers.files, new Date())]);
    const input = desired[0]?.spec.input;
    const objects: ObservedObject<ReverseProxySpec>[] = foreignListeners(state).map((message, i) => ({
      ref: { kind: REVERSE_PROXY_KIND, id: `foreign-listener-${i + 1}` },
      spec: { sites: '', certificates: 'current', config: 'missing', running: true, loaded: 'current' },
      owned: false,
      description: message,
    }));
    if (state.configText === undefined && state.masterPid === undefined) return objects;
    const running = state.masterPid !== undefined;
    const status = {
      ...(state.masterPid !== undefined ? { masterPid: state.masterPid, workers: state.workers.length } : {}),
      ...(refused.length > 0 ? { refusedCertificates: refused } : {}),
      ...(input
        ? {
            names: nameStatuses(
              input,
              found.map((f) => f.info),
            ),
          }
        : {}),
    };
    if (state.configText === undefined) {
      objects.push({
        ref: { kind: REVERSE_PROXY_KIND, id: REVERSE_PROXY_ID },
        spec: { sites: '', certificates: 'stale', config: 'missing', running, loaded: 'stale', ...status },
        owned: true,
        description: `HAProxy runs without ${HAPROXY_CONFIG_PATH}`,
      });
      return objects;
    }
    const stamp = readConfigStamp(state.configText);
    const mapsIntact = await mapsMatchTheirNames(drivers, state.configText);
    objects.push({
      ref: { kind: REVERSE_PROXY_KIND, id: REVERSE_PROXY_ID },
      spec: {
        sites: stamp?.sites ?? '',
        certificates: stamp?.certificates === inventoryDigest(found) ? 'current' : 'stale',
        config: stamp?.intact && mapsIntact ? 'intact' : 'edited',
        running,
        loaded: running && state.loaded === haproxyConfigDigest(state.configText) ? 'current' : 'stale',
        ...status,
      },
      owned: stamp !== undefined,
      description:
        (stamp !== undefined ? `HAProxy ${running ? `master pid ${state.masterPid}` : 'not running'}` : `${HAPROXY_CONFIG_PATH} without sc's mark`) +
        refused.map((r) => `; ${r.reason}`).join(''),
    });
    return objects;
  },

  normalize(spec: ReverseProxySpec) {
    return { sites: spec.sites, certificates: spec.certificates, config: spec.config, running: spec.running, loaded: spec.loaded };
  },

  conflict(want: DesiredObject<ReverseProxySpec>, observed: readonly ObservedObject<ReverseProxySpec>[]): string | undefined {
    const listeners = observed.filter((o) => o.ref.id.startsWith('foreign-listener-')).map((o) => o.description);
    if (listeners.length > 0)
      return `${listeners.join('; ')}: not sc's proxy, left alone (stop it, or set reverse_proxy of this host to what runs there)`;
    const file = observed.find((o) => o.ref.id === want.ref.id);
    return file ? `${HAPROXY_CONFIG_PATH} was not written by sc: left alone (move it away to let sc manage the proxy)` : undefined;
  },

  canUpdate: () => true,

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<ReverseProxySpec>): Promise<void> {
    if (!want.spec.input) throw new ScError('reverse-proxy/haproxy has no sites to render');
    await renderAndApplyProxy(drivers, want.spec.input);
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<ReverseProxySpec>, have: ObservedObject<ReverseProxySpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change ${HAPROXY_CONFIG_PATH}: not sc's`);
    await reverseProxyHandler.create(drivers, host, want);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<ReverseProxySpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to remove ${HAPROXY_CONFIG_PATH}: not sc's`);
    await haproxyOf(drivers).remove();
  },
} satisfies ResourceHandler<ReverseProxySpec>;

/** What the metrics textfile reports of the proxy, from the observed objects of a pass. */
export function proxyMetricsOf(
  observed: ReadonlyMap<string, readonly ObservedObject<unknown>[]>,
): { up: boolean; certificates: { name: string; source: string; not_after: string }[] } | undefined {
  const have = (observed.get(REVERSE_PROXY_KIND) ?? []).find((o) => o.owned && o.ref.id === REVERSE_PROXY_ID);
  if (!have) return undefined;
  const spec = have.spec as ReverseProxySpec;
  const certificates = (spec.names ?? []).flatMap((n) =>
    n.certificate ? [{ name: n.name, source: n.certificate.source, not_after: n.certificate.not_after }] : [],
  );
  return { up: spec.running && spec.loaded === 'current', certificates };
}
