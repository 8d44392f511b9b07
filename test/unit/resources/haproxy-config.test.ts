// The HAProxy renderer: deterministic text with sc's mark, every host lookup one map (so the cost
// per request does not grow with the number of sites), redirects before backends, the 404 page as
// default, TLS only with certificates, map files named after their content.
import type { Container, Model } from '../../../src/datastore/model.js';
import { HAPROXY_CONFIG_MARK, haproxyConfigDigest, renderHaproxy } from '../../../src/resources/haproxy-config.js';
import { proxyRoutes, type CertificateInfo } from '../../../src/resources/proxy-routes.js';

const H1 = 'web1.example.net';
const H2 = 'web2.example.net';
const paths = { adminSocket: '/r/run/srvctl/haproxy/admin.sock', resolve: (p: string) => `/r${p}`, mapDir: '/etc/haproxy/srvctl-maps' };

function model(containers: Record<string, Partial<Container>>): Model {
  const full: Record<string, Container> = {};
  let n = 20;
  for (const [name, c] of Object.entries(containers)) full[name] = { user: 'alice', host: H1, type: 'busybox', ip: `10.17.1.${n++}`, ...c };
  return {
    clusters: { main: { [H1]: { hostnet: 1, host_ip: '192.0.2.11' }, [H2]: { hostnet: 2, host_ip: '192.0.2.12' } } },
    users: {},
    containers: full,
    settings: {},
  };
}

const wildcard: CertificateInfo = {
  path: '/etc/srvctl/cert/example.com/wild.pem',
  source: 'operator',
  names: ['*.example.com'],
  notAfter: '2027-01-01T00:00:00.000Z',
  usable: true,
};

describe('renderHaproxy', () => {
  const golden = () =>
    renderHaproxy(
      proxyRoutes(
        model({
          'a.example.com': { aliases: ['a.example.org'] },
          'b.example.com': { host: H2, ip: '10.33.1.20', 'http-redirect': 'none' },
          'u.example.com': { 'http-redirect': 'https://x.example.org/a?b=1&c=%20' },
        }),
        'main',
        H1,
        [wildcard],
      ),
      paths,
    );

  it('renders a complete config: mark, global, frontends of map lookups, backends, 404 default', () => {
    expect(golden().config).toBe(`${HAPROXY_CONFIG_MARK}
# 7 names, 3 backends, 1 certificates
global
    stats socket '/r/run/srvctl/haproxy/admin.sock' mode 600 level admin expose-fd listeners

defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 30s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s

frontend sc_http
    bind :80
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-header X-Forwarded-Proto http
    http-request redirect location %[var(txn.host),map(/r/etc/haproxy/srvctl-maps/http-location-4d6a15da918e6298.map)] code 301 if { var(txn.host),map(/r/etc/haproxy/srvctl-maps/http-location-4d6a15da918e6298.map) -m found }
    http-request redirect prefix %[var(txn.host),map(/r/etc/haproxy/srvctl-maps/http-prefix-a3ecb8bcb708b54f.map)] code 301 if { var(txn.host),map(/r/etc/haproxy/srvctl-maps/http-prefix-a3ecb8bcb708b54f.map) -m found }
    use_backend %[var(txn.host),map(/r/etc/haproxy/srvctl-maps/http-backend-049668bcfbba7d16.map,sc_unknown_host)]
    default_backend sc_unknown_host

frontend sc_https
    bind :443 ssl crt '/r/etc/srvctl/cert/example.com/wild.pem'
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-header X-Forwarded-Proto https
    http-request redirect prefix %[var(txn.host),map(/r/etc/haproxy/srvctl-maps/https-prefix-cbdd633d29195b40.map)] code 301 if { var(txn.host),map(/r/etc/haproxy/srvctl-maps/https-prefix-cbdd633d29195b40.map) -m found }
    use_backend %[var(txn.host),map(/r/etc/haproxy/srvctl-maps/https-backend-d8b90e6a31ecae20.map,sc_unknown_host)]
    default_backend sc_unknown_host

backend site_a.example.com
    # a.example.com on this host
    server site 10.17.1.20:80

backend site_b.example.com
    # b.example.com on web2.example.net, over the VPN mesh
    server site 10.33.1.20:80

backend site_u.example.com
    # u.example.com on this host
    server site 10.17.1.22:80

backend sc_unknown_host
    http-request return status 404 content-type "text/html; charset=utf-8" string "<!doctype html><html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1><p>No site is served under this name here.</p></body></html>"
`);
  });

  it('puts every name in the map of what it gets on each port, URLs as written', () => {
    const maps = Object.fromEntries(golden().maps.map((m) => [m.path.replace(/-[0-9a-f]{16}\.map$/, ''), m.text]));
    expect(maps).toEqual({
      '/etc/haproxy/srvctl-maps/http-location':
        'u.example.com https://x.example.org/a?b=1&c=%20\nwww.u.example.com https://x.example.org/a?b=1&c=%20\n',
      '/etc/haproxy/srvctl-maps/http-prefix':
        'a.example.com https://a.example.com\na.example.org https://a.example.com\nwww.a.example.com https://a.example.com\nwww.b.example.com http://b.example.com\n',
      '/etc/haproxy/srvctl-maps/http-backend': 'b.example.com site_b.example.com\n',
      '/etc/haproxy/srvctl-maps/https-prefix':
        'a.example.org https://a.example.com\nwww.a.example.com https://a.example.com\nwww.b.example.com https://b.example.com\nwww.u.example.com https://u.example.com\n',
      '/etc/haproxy/srvctl-maps/https-backend':
        'a.example.com site_a.example.com\nb.example.com site_b.example.com\nu.example.com site_u.example.com\n',
    });
    for (const m of golden().maps) expect(golden().config).toContain(`/r${m.path}`);
  });

  it('has no TLS listener without certificates, and is byte-identical for the same input in any order', () => {
    const a = model({ 'a.example.com': {}, 'b.example.com': {} });
    const b: Model = { ...a, containers: Object.fromEntries(Object.entries(a.containers).reverse()) };
    const one = renderHaproxy(proxyRoutes(a, 'main', H1, []), paths);
    const two = renderHaproxy(proxyRoutes(b, 'main', H1, []), paths);
    expect(one).toEqual(two);
    expect(haproxyConfigDigest(one.config)).toBe(haproxyConfigDigest(two.config));
    expect(one.config).not.toContain('frontend sc_https');
    expect(one.config).not.toContain(':443');
  });

  it('keeps the config the same size whatever the number of names: they live in the maps', () => {
    const few = renderHaproxy(proxyRoutes(model({ 'a.example.com': { aliases: ['x.example.org'] } }), 'main', H1, []), paths);
    const many = renderHaproxy(
      proxyRoutes(model({ 'a.example.com': { aliases: Array.from({ length: 500 }, (_, i) => `alias${i}.example.org`) } }), 'main', H1, []),
      paths,
    );
    const frontendOf = (text: string) => text.slice(text.indexOf('frontend sc_http'), text.indexOf('backend '));
    expect(frontendOf(many.config).split('\n')).toHaveLength(frontendOf(few.config).split('\n').length);
    expect(
      many.maps
        .find((m) => m.path.includes('http-prefix'))
        ?.text.split('\n')
        .filter(Boolean),
    ).toHaveLength(501);
  });

  it('refuses a root path HAProxy could not take inside a sample expression', () => {
    expect(() =>
      renderHaproxy(proxyRoutes(model({ 'a.example.com': {} }), 'main', H1, []), { ...paths, resolve: (p: string) => `/my root${p}` }),
    ).toThrow(/map path/);
  });

  it("with ACME on, port 80 sends challenges to sc's responder before any redirect", () => {
    const m = model({ 'a.example.com': {} });
    const text = renderHaproxy(proxyRoutes(m, 'main', H1, [wildcard]), { ...paths, acmeResponder: '127.0.0.1:8402' }).config;
    const http = text.slice(text.indexOf('frontend sc_http'), text.indexOf('frontend sc_https'));
    const lines = http.split('\n').map((l) => l.trim());
    expect(lines[4]).toBe('acl acme_challenge path_beg /.well-known/acme-challenge/');
    expect(lines[5]).toMatch(/^http-request redirect prefix .* -m found } !acme_challenge$/);
    expect(lines[6]).toBe('use_backend sc_acme if acme_challenge');
    expect(text.slice(text.indexOf('frontend sc_https'))).not.toContain('acme_challenge');
    expect(text).toContain("backend sc_acme\n    # sc's ACME responder, up while sc orders certificates\n    server acme 127.0.0.1:8402\n");
  });
});
