// The HAProxy renderer: deterministic text with sc's mark, redirects before backends, the 404
// page as default, TLS only with certificates, URLs quoted, long name lists split.
import type { Container, Model } from '../../../src/datastore/model.js';
import { HAPROXY_CONFIG_MARK, haproxyConfigDigest, renderHaproxyConfig } from '../../../src/resources/haproxy-config.js';
import { proxyRoutes, type CertificateInfo } from '../../../src/resources/proxy-routes.js';

const H1 = 'web1.example.net';
const H2 = 'web2.example.net';
const paths = { adminSocket: '/r/run/srvctl/haproxy/admin.sock', resolve: (p: string) => `/r${p}` };

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

const wildcard: CertificateInfo = { path: '/etc/srvctl/cert/example.com/wild.pem', source: 'operator', names: ['*.example.com'], notAfter: '2027-01-01T00:00:00.000Z', usable: true };

describe('renderHaproxyConfig', () => {
  it('renders a complete config: mark, global, frontends, backends, 404 default', () => {
    const m = model({
      'a.example.com': { aliases: ['a.example.org'] },
      'b.example.com': { host: H2, ip: '10.33.1.20', 'http-redirect': 'none' },
      'u.example.com': { 'http-redirect': 'https://x.example.org/a?b=1&c=%20' },
    });
    const text = renderHaproxyConfig(proxyRoutes(m, 'main', H1, [wildcard]), paths);
    expect(text).toBe(`${HAPROXY_CONFIG_MARK}
# 7 names, 3 backends, 1 certificates
global
    stats socket '/r/run/srvctl/haproxy/admin.sock' mode 600 level admin expose-fd listeners

defaults
    mode http
    option forwardfor
    option http-server-close
    timeout connect 5s
    timeout client 30s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s

frontend sc_http
    bind :80
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-header X-Forwarded-Proto http
    http-request redirect location 'https://x.example.org/a?b=1&c=%%20' code 301 if { var(txn.host) -m str u.example.com www.u.example.com }
    http-request redirect prefix http://b.example.com code 301 if { var(txn.host) -m str www.b.example.com }
    http-request redirect prefix https://a.example.com code 301 if { var(txn.host) -m str a.example.com a.example.org www.a.example.com }
    use_backend site_b.example.com if { var(txn.host) -m str b.example.com }
    default_backend sc_unknown_host

frontend sc_https
    bind :443 ssl crt '/r/etc/srvctl/cert/example.com/wild.pem'
    http-request set-var(txn.host) req.hdr(host),field(1,:),lower
    http-request set-header X-Forwarded-Proto https
    http-request redirect prefix https://a.example.com code 301 if { var(txn.host) -m str a.example.org www.a.example.com }
    http-request redirect prefix https://b.example.com code 301 if { var(txn.host) -m str www.b.example.com }
    http-request redirect prefix https://u.example.com code 301 if { var(txn.host) -m str www.u.example.com }
    use_backend site_a.example.com if { var(txn.host) -m str a.example.com }
    use_backend site_b.example.com if { var(txn.host) -m str b.example.com }
    use_backend site_u.example.com if { var(txn.host) -m str u.example.com }
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

  it('has no TLS listener without certificates, and is byte-identical for the same input in any order', () => {
    const a = model({ 'a.example.com': {}, 'b.example.com': {} });
    const b: Model = { ...a, containers: Object.fromEntries(Object.entries(a.containers).reverse()) };
    const one = renderHaproxyConfig(proxyRoutes(a, 'main', H1, []), paths);
    const two = renderHaproxyConfig(proxyRoutes(b, 'main', H1, []), paths);
    expect(one).toBe(two);
    expect(haproxyConfigDigest(one)).toBe(haproxyConfigDigest(two));
    expect(one).not.toContain('frontend sc_https');
    expect(one).not.toContain(':443');
  });

  it('splits long name lists: HAProxy takes at most 64 words a line', () => {
    const many: Record<string, Partial<Container>> = {};
    const aliases = Array.from({ length: 100 }, (_, i) => `alias${i}.example.org`);
    many['a.example.com'] = { aliases, 'http-redirect': 'none' };
    const text = renderHaproxyConfig(proxyRoutes(model(many), 'main', H1, []), paths);
    const redirectLines = text.split('\n').filter((l) => l.includes('redirect prefix http://a.example.com'));
    expect(redirectLines).toHaveLength(3);
    for (const line of text.split('\n')) expect(line.trim().split(/\s+/).length).toBeLessThanOrEqual(64);
    expect(redirectLines.join(' ').match(/alias\d+\.example\.org/g)).toHaveLength(100);
  });
  it('with ACME on, port 80 sends challenges to sc\'s responder before any redirect', () => {
    const m = model({ 'a.example.com': {} });
    const text = renderHaproxyConfig(proxyRoutes(m, 'main', H1, [wildcard]), { ...paths, acmeResponder: '127.0.0.1:8402' });
    const http = text.slice(text.indexOf('frontend sc_http'), text.indexOf('frontend sc_https'));
    expect(http).toContain('    acl acme_challenge path_beg /.well-known/acme-challenge/\n');
    expect(http).toContain('http-request redirect prefix https://a.example.com code 301 if { var(txn.host) -m str a.example.com www.a.example.com } !acme_challenge');
    expect(http).toContain('    use_backend sc_acme if acme_challenge\n');
    expect(text.slice(text.indexOf('frontend sc_https'))).not.toContain('acme_challenge');
    expect(text).toContain('backend sc_acme\n    # sc\'s ACME responder, up while sc orders certificates\n    server acme 127.0.0.1:8402\n');
  });
});
