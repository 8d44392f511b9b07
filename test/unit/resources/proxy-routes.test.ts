// The reverse proxy's route model with plain data: which names route where on each host of a
// cluster, the redirects of www./aliases/altnames/http-redirect/https-redirect, and the choice of
// certificate (operator NAME.pem, operator wildcard, ACME; only usable ones).
import type { Container, Model } from '../../../src/datastore/model.js';
import {
  certificateCovers,
  pickCertificate,
  proxyEnabledOn,
  proxyRoutes,
  type CertificateInfo,
  type HostnameRoute,
} from '../../../src/resources/proxy-routes.js';

const H1 = 'web1.example.net';
const H2 = 'web2.example.net';

function model(containers: Record<string, Partial<Container>>, extra: Partial<Model> = {}): Model {
  const full: Record<string, Container> = {};
  let n = 20;
  for (const [name, c] of Object.entries(containers)) full[name] = { user: 'alice', host: H1, type: 'busybox', ip: `10.17.1.${n++}`, ...c };
  return {
    clusters: {
      main: { [H1]: { hostnet: 1, host_ip: '192.0.2.11' }, [H2]: { hostnet: 2, host_ip: '192.0.2.12' } },
      other: { 'far.example.net': { hostnet: 3, host_ip: '192.0.2.13' } },
    },
    users: { alice: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 2001 } },
    containers: full,
    settings: {},
    ...extra,
  };
}

const cert = (path: string, names: string[], extra: Partial<CertificateInfo> = {}): CertificateInfo => ({
  path,
  source: 'operator',
  names,
  notAfter: '2027-06-01T00:00:00.000Z',
  usable: true,
  ...extra,
});

const byName = (routes: readonly HostnameRoute[]) => Object.fromEntries(routes.map((r) => [r.hostname, r]));

describe('certificate choice', () => {
  it('covers exact names and one label under a wildcard', () => {
    expect(certificateCovers('a.example.com', 'a.example.com')).toBe(true);
    expect(certificateCovers('*.example.com', 'a.example.com')).toBe(true);
    expect(certificateCovers('*.example.com', 'example.com')).toBe(false);
    expect(certificateCovers('*.example.com', 'x.a.example.com')).toBe(false);
    expect(certificateCovers('a.example.com', 'b.example.com')).toBe(false);
  });

  it('prefers the operator NAME.pem, then an operator wildcard, then ACME; never an unusable one', () => {
    const own = cert('/etc/srvctl/cert/a.example.com.pem', ['a.example.com']);
    const wild = cert('/etc/srvctl/cert/example.com/wild.pem', ['*.example.com']);
    const acme = cert('/var/lib/srvctl/acme/certs/a.example.com.pem', ['a.example.com'], { source: 'acme' });
    expect(pickCertificate('a.example.com', [acme, wild, own])?.path).toBe(own.path);
    expect(pickCertificate('a.example.com', [acme, wild])?.path).toBe(wild.path);
    expect(pickCertificate('a.example.com', [acme])?.path).toBe(acme.path);
    expect(pickCertificate('a.example.com', [{ ...own, usable: false }, acme])?.path).toBe(acme.path);
    expect(pickCertificate('b.example.org', [own, wild, acme])).toBeUndefined();
  });
});

describe('proxyRoutes', () => {
  it('routes every enabled site of the cluster: local ones and those on the other host, not other clusters', () => {
    const m = model({
      'a.example.com': {},
      'b.example.com': { host: H2, ip: '10.33.1.20' },
      'off.example.com': { enabled: false },
      'far.example.org': { host: 'far.example.net', ip: '10.49.1.20' },
      'noip.example.com': { ip: undefined },
    });
    const routes = proxyRoutes(m, 'main', H1, []);
    expect(routes.backends).toEqual([
      { id: 'site_a.example.com', site: 'a.example.com', address: '10.17.1.20', port: 80, tls: false, host: H1, local: true },
      { id: 'site_b.example.com', site: 'b.example.com', address: '10.33.1.20', port: 80, tls: false, host: H2, local: false },
    ]);
    expect(routes.hostnames.map((h) => h.hostname)).toEqual(['a.example.com', 'b.example.com', 'www.a.example.com', 'www.b.example.com']);
    // The other host of the cluster routes the same sites, with locality swapped.
    const fromH2 = proxyRoutes(m, 'main', H2, []);
    expect(fromH2.backends.map((b) => [b.site, b.local])).toEqual([
      ['a.example.com', false],
      ['b.example.com', true],
    ]);
    expect(fromH2.hostnames).toEqual(routes.hostnames);
  });

  it('without a certificate: serves over http, www. and aliases 301 to the name, altnames served as they are', () => {
    const m = model({ 'a.example.com': { aliases: ['a.example.org'], altnames: ['alt.example.net'] } });
    const r = byName(proxyRoutes(m, 'main', H1, []).hostnames);
    expect(r['a.example.com']).toEqual({
      hostname: 'a.example.com',
      site: 'a.example.com',
      role: 'name',
      http: { action: 'serve', backend: 'site_a.example.com' },
      https: { action: 'serve', backend: 'site_a.example.com' },
    });
    expect(r['alt.example.net']?.http).toEqual({ action: 'serve', backend: 'site_a.example.com' });
    expect(r['www.a.example.com']?.http).toEqual({ action: 'redirect', mode: 'prefix', to: 'http://a.example.com' });
    expect(r['a.example.org']?.http).toEqual({ action: 'redirect', mode: 'prefix', to: 'http://a.example.com' });
    expect(r['a.example.org']?.https).toEqual({ action: 'redirect', mode: 'prefix', to: 'https://a.example.com' });
  });

  it('with a certificate: port 80 redirects to https by default, and www./aliases go there in one hop', () => {
    const m = model({ 'a.example.com': { aliases: ['a.example.org'], altnames: ['alt.example.net'] } });
    const inventory = [cert('/etc/srvctl/cert/a.example.com.pem', ['a.example.com', 'www.a.example.com'])];
    const routes = proxyRoutes(m, 'main', H1, inventory);
    const r = byName(routes.hostnames);
    expect(r['a.example.com']?.http).toEqual({ action: 'redirect', mode: 'prefix', to: 'https://a.example.com' });
    expect(r['a.example.com']?.certificate).toEqual({
      path: '/etc/srvctl/cert/a.example.com.pem',
      source: 'operator',
      notAfter: '2027-06-01T00:00:00.000Z',
    });
    expect(r['www.a.example.com']?.http).toEqual({ action: 'redirect', mode: 'prefix', to: 'https://a.example.com' });
    expect(r['a.example.org']?.http).toEqual({ action: 'redirect', mode: 'prefix', to: 'https://a.example.com' });
    // The altname has no certificate: it stays on http rather than being sent into a broken https.
    expect(r['alt.example.net']?.http).toEqual({ action: 'serve', backend: 'site_a.example.com' });
    expect(routes.certificates).toEqual(['/etc/srvctl/cert/a.example.com.pem']);
  });

  it('http-redirect none / URL and https-redirect http / URL as srvctl 3 had them', () => {
    const m = model({
      'none.example.com': { 'http-redirect': 'none' },
      'url.example.com': { 'http-redirect': 'https://elsewhere.example.org/landing', 'https-redirect': 'https://elsewhere.example.org/secure' },
      'back.example.com': { 'https-redirect': 'http' },
    });
    const wild = cert('/etc/srvctl/cert/example.com/wild.pem', ['*.example.com']);
    const r = byName(proxyRoutes(m, 'main', H1, [wild]).hostnames);
    expect(r['none.example.com']?.http).toEqual({ action: 'serve', backend: 'site_none.example.com' });
    expect(r['none.example.com']?.https).toEqual({ action: 'serve', backend: 'site_none.example.com' });
    expect(r['url.example.com']?.http).toEqual({ action: 'redirect', mode: 'location', to: 'https://elsewhere.example.org/landing' });
    expect(r['url.example.com']?.https).toEqual({ action: 'redirect', mode: 'location', to: 'https://elsewhere.example.org/secure' });
    expect(r['www.url.example.com']?.http).toEqual({ action: 'redirect', mode: 'location', to: 'https://elsewhere.example.org/landing' });
    // https → http and http → https would loop: with https-redirect http, port 80 serves.
    expect(r['back.example.com']?.https).toEqual({ action: 'redirect', mode: 'prefix', to: 'http://back.example.com' });
    expect(r['back.example.com']?.http).toEqual({ action: 'serve', backend: 'site_back.example.com' });
  });

  it('an explicit https_port makes 443 go TLS to the container; http_port moves the plain backend', () => {
    const m = model({ 'a.example.com': { http_port: '8080', https_port: 8443 } });
    const routes = proxyRoutes(m, 'main', H1, []);
    expect(routes.backends.map((b) => [b.id, b.port, b.tls])).toEqual([
      ['site_a.example.com', 8080, false],
      ['site_a.example.com_tls', 8443, true],
    ]);
    const r = byName(routes.hostnames);
    expect(r['a.example.com']?.https).toEqual({ action: 'serve', backend: 'site_a.example.com_tls' });
    expect(r['a.example.com']?.http).toEqual({ action: 'serve', backend: 'site_a.example.com' });
  });

  it('a name two sites claim stays with the first claim and is reported; an implicit www. yields quietly', () => {
    const m = model({
      'a.example.com': { aliases: ['shared.example.com'] },
      'b.example.com': { altnames: ['shared.example.com', 'www.a.example.com'] },
      'shared.example.com': {},
    });
    const routes = proxyRoutes(m, 'main', H1, []);
    const r = byName(routes.hostnames);
    expect(r['shared.example.com']?.site).toBe('shared.example.com');
    expect(r['www.a.example.com']).toMatchObject({ site: 'b.example.com', role: 'altname' });
    expect(routes.problems).toEqual([
      'shared.example.com is claimed by shared.example.com (name) and by b.example.com (altname); shared.example.com keeps it',
      'shared.example.com is claimed by shared.example.com (name) and by a.example.com (alias); shared.example.com keeps it',
    ]);
  });

  it('a www. site gets no www.www. name', () => {
    const routes = proxyRoutes(model({ 'www.example.com': {} }), 'main', H1, []);
    expect(routes.hostnames.map((h) => h.hostname)).toEqual(['www.example.com']);
  });

  it('runs on a host unless reverse_proxy names something else or settings switch it off', () => {
    const m = model({});
    expect(proxyEnabledOn(m, 'main', H1)).toBe(true);
    const other = { ...m, clusters: { main: { [H1]: { hostnet: 1, host_ip: '192.0.2.11', reverse_proxy: 'nginx' } } } };
    expect(proxyEnabledOn(other, 'main', H1)).toBe(false);
    expect(proxyEnabledOn({ ...m, settings: { proxy: { enabled: false } } }, 'main', H1)).toBe(false);
  });
});
