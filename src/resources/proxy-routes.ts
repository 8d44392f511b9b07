// The reverse proxy's route model (SPEC §1, §3; issue 14): which names a host's HAProxy answers,
// which backend serves each, and which requests get a 301 instead. Every host of a cluster routes
// every enabled site of the cluster: local containers directly, the others by their 10.x address,
// which the host reaches over the VPN mesh. Pure: model + certificate inventory in, routes out.
import type { Container, Model } from '../datastore/model.js';

/** A certificate sc found on the host (an operator's PEM or one ACME issued). */
export interface CertificateInfo {
  /** Host path of the PEM (certificate chain + private key), e.g. `/etc/srvctl/cert/a.example.com.pem`. */
  readonly path: string;
  readonly source: 'operator' | 'acme';
  /** DNS names it covers (SAN, else CN); a wildcard is `*.example.com`. */
  readonly names: readonly string[];
  /** ISO 8601. */
  readonly notAfter: string;
  /** Parses, carries its private key, and is not expired. */
  readonly usable: boolean;
}

/** What one port does with a request for one hostname. */
export type PortRule =
  | { readonly action: 'serve'; readonly backend: string }
  /** `prefix`: scheme + host replaced, path and query kept; `location`: the operator's URL as written. */
  | { readonly action: 'redirect'; readonly mode: 'prefix' | 'location'; readonly to: string };

export type HostnameRole = 'name' | 'altname' | 'alias' | 'www';

export interface HostnameRoute {
  readonly hostname: string;
  /** The container (site) this name belongs to. */
  readonly site: string;
  readonly role: HostnameRole;
  readonly http: PortRule;
  readonly https: PortRule;
  /** The certificate served for this name on 443, if one covers it. */
  readonly certificate?: { readonly path: string; readonly source: 'operator' | 'acme'; readonly notAfter: string };
}

export interface ProxyBackend {
  /** HAProxy backend name: `site_<container>` (plain http) or `site_<container>_tls`. */
  readonly id: string;
  readonly site: string;
  readonly address: string;
  readonly port: number;
  /** TLS to the container (its explicit `https_port`). */
  readonly tls: boolean;
  /** The host the container runs on; `local` when that is this host. */
  readonly host: string;
  readonly local: boolean;
}

export interface ProxyRoutes {
  readonly backends: readonly ProxyBackend[];
  /** Sorted by hostname. */
  readonly hostnames: readonly HostnameRoute[];
  /** PEM paths to load on 443, sorted, each once. */
  readonly certificates: readonly string[];
  /** Names two sites claim; the first claim (names before altnames before aliases, then by site) keeps it. */
  readonly problems: readonly string[];
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Whether a certificate name (`a.example.com` or `*.example.com`) covers a hostname. */
export function certificateCovers(certName: string, hostname: string): boolean {
  if (certName === hostname) return true;
  if (!certName.startsWith('*.')) return false;
  const dot = hostname.indexOf('.');
  return dot > 0 && hostname.slice(dot + 1) === certName.slice(2);
}

const baseName = (p: string): string => p.slice(p.lastIndexOf('/') + 1);

/**
 * The certificate for a hostname, in the order: the operator's `NAME.pem`, then any other
 * operator PEM covering the name (a wildcard in `/etc/srvctl/cert/DOMAIN/`), then an ACME one.
 * Only usable certificates count: a name is never redirected into a broken https.
 */
export function pickCertificate(hostname: string, inventory: readonly CertificateInfo[]): CertificateInfo | undefined {
  const usable = inventory.filter((c) => c.usable && c.names.some((n) => certificateCovers(n, hostname)));
  const sorted = [...usable].sort((a, b) => byText(a.path, b.path));
  return (
    sorted.find((c) => c.source === 'operator' && baseName(c.path) === `${hostname}.pem`) ??
    sorted.find((c) => c.source === 'operator' && c.names.includes(hostname)) ??
    sorted.find((c) => c.source === 'operator') ??
    sorted.find((c) => c.source === 'acme' && c.names.includes(hostname)) ??
    sorted.find((c) => c.source === 'acme')
  );
}

const portOf = (value: number | string | undefined, fallback: number): number => (value === undefined ? fallback : Number(value));

/** What the proxy needs of a site: the fields of its container that shape its routes, nothing else. */
export type SiteInput = Pick<Container, 'host' | 'aliases' | 'altnames' | 'http_port' | 'https_port' | 'http-redirect' | 'https-redirect'> & {
  readonly name: string;
  readonly ip: string;
};

const ROUTE_FIELDS = ['aliases', 'altnames', 'http_port', 'https_port', 'http-redirect', 'https-redirect'] as const;

/** Enabled containers with an address on any host of the cluster: the sites every host routes. */
export function proxySites(model: Model, cluster: string): SiteInput[] {
  const hosts = new Set(Object.keys(model.clusters[cluster] ?? {}));
  return Object.entries(model.containers)
    .filter(([, c]) => hosts.has(c.host) && c.enabled !== false && typeof c.ip === 'string')
    .sort(([a], [b]) => byText(a, b))
    .map(([name, c]) => {
      const site: Record<string, unknown> = { name, host: c.host, ip: c.ip };
      for (const field of ROUTE_FIELDS) if (c[field] !== undefined) site[field] = c[field];
      return site as SiteInput;
    });
}

/** Whether sc runs a proxy on this host: on unless settings or the host entry say otherwise. */
export function proxyEnabledOn(model: Model, cluster: string, hostName: string): boolean {
  if (model.settings.proxy?.enabled === false) return false;
  const hostEntry = model.clusters[cluster]?.[hostName];
  const kind = hostEntry?.reverse_proxy;
  return kind === undefined || kind === 'haproxy';
}

interface Claim {
  readonly hostname: string;
  readonly site: string;
  readonly role: HostnameRole;
}

const ROLE_RANK: Readonly<Record<HostnameRole, number>> = { name: 0, altname: 1, alias: 2, www: 3 };

/** Every hostname each site claims, one owner per name; the losers of a clash become problems. */
function assignHostnames(sites: readonly SiteInput[]): { claims: Claim[]; problems: string[] } {
  const all: Claim[] = [];
  for (const c of sites) {
    const site = c.name;
    all.push({ hostname: site, site, role: 'name' });
    for (const n of c.altnames ?? []) all.push({ hostname: n, site, role: 'altname' });
    for (const n of c.aliases ?? []) all.push({ hostname: n, site, role: 'alias' });
    if (!site.startsWith('www.')) all.push({ hostname: `www.${site}`, site, role: 'www' });
  }
  all.sort((a, b) => ROLE_RANK[a.role] - ROLE_RANK[b.role] || byText(a.site, b.site) || byText(a.hostname, b.hostname));
  const owner = new Map<string, Claim>();
  const problems: string[] = [];
  for (const claim of all) {
    const first = owner.get(claim.hostname);
    if (!first) {
      owner.set(claim.hostname, claim);
    } else if (first.site !== claim.site && claim.role !== 'www') {
      // A www. name someone else claims explicitly is simply not added: only real clashes are errors.
      problems.push(`${claim.hostname} is claimed by ${first.site} (${first.role}) and by ${claim.site} (${claim.role}); ${first.site} keeps it`);
    }
  }
  return { claims: [...owner.values()].sort((a, b) => byText(a.hostname, b.hostname)), problems };
}

/** The route model for one host of a cluster, from the model. */
export function proxyRoutes(model: Model, cluster: string, hostName: string, inventory: readonly CertificateInfo[]): ProxyRoutes {
  return routesFor(proxySites(model, cluster), hostName, inventory);
}

/** The route model for one host, from the sites of its cluster and the certificates it has. */
export function routesFor(sites: readonly SiteInput[], hostName: string, inventory: readonly CertificateInfo[]): ProxyRoutes {
  const containers = new Map(sites.map((s) => [s.name, s]));
  const backends: ProxyBackend[] = [];
  for (const c of sites) {
    const site = c.name;
    const common = { site, address: c.ip, host: c.host, local: c.host === hostName };
    backends.push({ id: `site_${site}`, port: portOf(c.http_port, 80), tls: false, ...common });
    if (c.https_port !== undefined) backends.push({ id: `site_${site}_tls`, port: portOf(c.https_port, 443), tls: true, ...common });
  }
  const { claims, problems } = assignHostnames(sites);
  const certificateOf = new Map(claims.map((cl) => [cl.hostname, pickCertificate(cl.hostname, inventory)]));

  // What a served name does on each port; redirecting names (www., aliases) follow their site's name.
  const servingRules = (hostname: string, c: SiteInput, site: string): { http: PortRule; https: PortRule } => {
    const httpBackend = `site_${site}`;
    const httpsBackend = c.https_port !== undefined ? `site_${site}_tls` : httpBackend;
    const hr = c['http-redirect'];
    const sr = c['https-redirect'];
    let https: PortRule = { action: 'serve', backend: httpsBackend };
    if (sr === 'http') https = { action: 'redirect', mode: 'prefix', to: `http://${hostname}` };
    else if (sr !== undefined && sr !== 'none') https = { action: 'redirect', mode: 'location', to: sr };
    let http: PortRule = { action: 'serve', backend: httpBackend };
    if (hr !== undefined && hr !== 'none' && hr !== 'https') http = { action: 'redirect', mode: 'location', to: hr };
    // Default (and `https`): to https only when a usable certificate covers the name, and never
    // when https sends it back to http (a loop).
    else if (hr !== 'none' && sr !== 'http' && certificateOf.get(hostname) !== undefined) {
      http = { action: 'redirect', mode: 'prefix', to: `https://${hostname}` };
    }
    return { http, https };
  };

  const hostnames: HostnameRoute[] = claims.map((claim) => {
    const c = containers.get(claim.site) as SiteInput;
    const cert = certificateOf.get(claim.hostname);
    const certificate = cert ? { certificate: { path: cert.path, source: cert.source, notAfter: cert.notAfter } } : {};
    if (claim.role === 'name' || claim.role === 'altname') {
      return { hostname: claim.hostname, site: claim.site, role: claim.role, ...servingRules(claim.hostname, c, claim.site), ...certificate };
    }
    // One hop to wherever the site's own name ends up on that port.
    const target = servingRules(claim.site, c, claim.site);
    const follow = (rule: PortRule, scheme: 'http' | 'https'): PortRule =>
      rule.action === 'redirect' ? rule : { action: 'redirect', mode: 'prefix', to: `${scheme}://${claim.site}` };
    return {
      hostname: claim.hostname,
      site: claim.site,
      role: claim.role,
      http: follow(target.http, 'http'),
      https: follow(target.https, 'https'),
      ...certificate,
    };
  });

  const certificates = [...new Set(hostnames.flatMap((h) => (h.certificate ? [h.certificate.path] : [])))].sort(byText);
  return { backends, hostnames, certificates, problems };
}
