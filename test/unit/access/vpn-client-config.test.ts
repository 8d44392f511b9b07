// sc vpn-config: one client config per host of the user's containers, the device's address there,
// the published CA inline, never a key — pure functions of a small model.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deviceProfile, deviceProfileKey, renderVpnClientConfig, vpnClientConfig } from '../../../src/access/vpn-client-config.js';
import type { Model } from '../../../src/datastore/model.js';

const CSR = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/vpn/alice-laptop.csr'), 'utf8');
const CA = '-----BEGIN CERTIFICATE-----\nMIIBfakeCAcertificateForTheRenderer\n-----END CERTIFICATE-----\n';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfakeClientCertificate\n-----END CERTIFICATE-----\n';

const model = (settings: Model['settings'] = {}): Model => ({
  clusters: {
    c: {
      'h1.test': { hostnet: 1, host_ip: '192.0.2.11' },
      'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
      'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
    },
  },
  users: {
    alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 1001 },
    alice: {
      reseller: 'alpha',
      user_id: 3,
      uid: 1002,
      vpn_clients: [
        { device: 'laptop', host_part: 201, csr: CSR },
        { device: 'phone', host_part: 202, certificate: CERT },
      ],
    },
    bob: { reseller: 'root', user_id: 2, uid: 1003, vpn_clients: [{ device: 'pc', host_part: 201 }] },
  },
  containers: {
    'shop.test': { user: 'alice', host: 'h2.test', type: 'busybox', ip: '10.33.3.20' },
    'blog.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.3.20' },
    'more.test': { user: 'alice', host: 'h1.test', type: 'busybox', ip: '10.17.3.21' },
    'bike.test': { user: 'bob', host: 'h3.test', type: 'busybox', ip: '10.48.2.20' },
  },
  settings,
});

describe('vpn-config', () => {
  test("one config per host of the user's containers, with the device's address there", () => {
    const result = vpnClientConfig(model(), 'alice', 'laptop', CA);
    expect(result.commonName).toBe('alice@laptop');
    expect(result.hosts.map((h) => [h.host, h.remote, h.port, h.address])).toEqual([
      ['h1.test', '192.0.2.11', 1194, '10.17.3.201'],
      ['h2.test', '192.0.2.12', 1194, '10.33.3.201'],
    ]);
    const h1 = result.hosts[0]?.config ?? '';
    expect(h1).toContain('\nremote 192.0.2.11 1194\n');
    expect(h1).toContain('\nverify-x509-name h1.test name\n');
    expect(h1).toContain('\nremote-cert-tls server\n');
    expect(h1).toContain(`\n<ca>\n${CA.trim()}\n</ca>\n`);
    expect(h1).toContain('\ncert alice@laptop.crt\nkey alice@laptop.key\n');
    expect(h1).not.toContain('PRIVATE');
    expect(h1).not.toContain(CSR.split('\n')[1]);
  });

  test('the port comes from settings; an issued certificate is inlined; a missing CA is said', () => {
    const result = vpnClientConfig(model({ user_vpn: { port: 1300 } }), 'alice', 'phone', undefined);
    expect(result.caPublished).toBe(false);
    const config = result.hosts[0]?.config ?? '';
    expect(config).toContain('\nremote 192.0.2.11 1300\n');
    expect(result.hosts[0]?.address).toBe('10.17.3.202');
    expect(config).toContain(`\n<cert>\n${CERT.trim()}\n</cert>\n`);
    expect(config).toMatch(/\n# the cluster CA certificate is not published yet.*\nca ca\.crt\n/);
  });

  test('the text: the one openssl command (key made on the device), then the configs', () => {
    const text = renderVpnClientConfig(vpnClientConfig(model(), 'alice', 'laptop', CA));
    expect(text).toContain(
      '#   openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout alice@laptop.key -subj /CN=alice@laptop -out alice@laptop.csr\n',
    );
    expect(text).toContain('sc add-vpn-client alice laptop --csr alice@laptop.csr');
    expect(text.match(/^### /gm)).toHaveLength(2);
    expect(text).toContain('### h1.test.ovpn\n');
    expect(text).toContain('### h2.test.ovpn\n');
  });

  test('a user without containers gets the openssl command and no config; unknown user or device is an error', () => {
    const m = model();
    const noContainers: Model = { ...m, containers: {} };
    const text = renderVpnClientConfig(vpnClientConfig(noContainers, 'alice', 'laptop', CA));
    expect(text).toContain('alice has no containers yet');
    expect(text).not.toContain('### ');
    expect(() => vpnClientConfig(m, 'carol', 'laptop', CA)).toThrow(/unknown user "carol"/);
    expect(() => vpnClientConfig(m, 'alice', 'tablet', CA)).toThrow(
      /alice has no VPN client "tablet" \(add it with "sc add-vpn-client alice tablet"\)/,
    );
    expect(vpnClientConfig(m, 'bob', 'pc', CA).hosts.map((h) => h.address)).toEqual(['10.48.2.201']);
  });
});

describe('device profile (add-vpn-client --out, vpn-config --update)', () => {
  const KEY = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfakefakefake\n-----END PRIVATE KEY-----\n';

  it('before the certificate: marked NOT READY, the key inline in place of the key file line; the key reads back', () => {
    const result = vpnClientConfig(model(), 'alice', 'laptop', CA);
    expect(result.certificatePublished).toBe(false);
    const profile = deviceProfile(result, KEY);
    expect(profile.host).toBe('h1.test');
    expect(profile.text.split('\n')[0]).toMatch(/^# srvctl device profile alice@laptop/);
    expect(profile.text).toContain('NOT READY');
    expect(profile.text).toContain('sc vpn-config alice laptop --update FILE');
    expect(profile.text).toContain('# other hosts of alice');
    expect(profile.text).not.toMatch(/^key /m);
    expect(profile.text).toContain(`<key>\n${KEY}</key>`);
    expect(deviceProfileKey(profile.text)).toBe(KEY);
    expect(deviceProfileKey(profile.text.replace('# srvctl device profile', '# something'))).toBeUndefined();
  });

  it('with the issued certificate: ready, the certificate inline', () => {
    const result = vpnClientConfig(model(), 'alice', 'laptop', CA, CERT);
    expect(result.certificatePublished).toBe(true);
    const profile = deviceProfile(result, KEY);
    expect(profile.text).not.toContain('NOT READY');
    expect(profile.text).toContain('<cert>\n-----BEGIN CERTIFICATE-----');
    expect(deviceProfileKey(profile.text)).toBe(KEY);
  });
});
