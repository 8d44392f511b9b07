// vpn-link: desired tunnels per peer of our cluster (one per pair, roles and addresses from the
// pair), the rendered config, and observation from the openvpn driver's records.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import type { OpenvpnDriver, TunnelRecord } from '../../../src/drivers/openvpn.js';
import type { HostContext } from '../../../src/host-context.js';
import { vpnLink } from '../../../src/network/vpn-plan.js';
import { configDigest, renderTunnelConfig, routeArgs } from '../../../src/resources/vpn-config.js';
import { pkiHandler } from '../../../src/resources/pki.js';
import { vpnLinkHandler } from '../../../src/resources/vpn-link.js';
import { recordingDrivers } from './recording-drivers.js';
import { createFilesDriver } from '../../../src/drivers/files.js';

const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
    'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
    'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
  },
  other: { 'x9.test': { hostnet: 9, host_ip: '198.51.100.9' } },
};
const model = { clusters, users: {}, containers: {}, settings: {} } as unknown as Model;
const hostCtx = (name: 'h1.test' | 'h2.test' | 'h3.test'): HostContext => ({
  name,
  cluster: 'test',
  host: clusters.test[name],
  root: '/r',
});

describe('vpn-link desired', () => {
  it('one tunnel per peer of our cluster, none to other clusters; depends on the host certificate', () => {
    const links = vpnLinkHandler.desired(model, hostCtx('h2.test'));
    expect(links.map((l) => [l.ref.id, l.spec.device, l.spec.role])).toEqual([
      ['h1.test', 'scv-1-2', 'client'],
      ['h3.test', 'scv-2-3', 'server'],
    ]);
    expect(links[0]?.dependsOn).toEqual([{ kind: 'pki', id: 'host-cert' }]);
  });

  it('no tunnels (and no PKI) for a host alone in its cluster, or in a cluster without a CA host', () => {
    const alone = { ...model, clusters: { solo: { 'h1.test': clusters.test['h1.test'] } } } as unknown as Model;
    const soloHost = { ...hostCtx('h1.test'), cluster: 'solo' };
    expect(vpnLinkHandler.desired(alone, soloHost)).toEqual([]);
    expect(pkiHandler.desired(alone, soloHost)).toEqual([]);
    const noCa = { ...model, clusters: { test: { ...clusters.test, 'h1.test': { hostnet: 1, host_ip: '192.0.2.11' } } } } as unknown as Model;
    expect(vpnLinkHandler.desired(noCa, hostCtx('h2.test'))).toEqual([]);
    expect(pkiHandler.desired(noCa, hostCtx('h2.test'))).toEqual([]);
  });

  it('both ends of a pair agree on device, port and addresses, with swapped roles', () => {
    const a = vpnLinkHandler.desired(model, hostCtx('h1.test')).find((l) => l.ref.id === 'h3.test')?.spec.configText ?? '';
    const b = vpnLinkHandler.desired(model, hostCtx('h3.test')).find((l) => l.ref.id === 'h1.test')?.spec.configText ?? '';
    expect(a).toContain('dev scv-1-3\n');
    expect(b).toContain('dev scv-1-3\n');
    expect(a).toContain(
      'lport 11019\nremote 192.0.2.13 11019\nifconfig 10.1.3.1 10.1.3.2\nroute 10.48.0.0 255.240.0.0\ntls-server\ndh none\nremote-cert-eku 1.3.6.1.5.5.7.3.1\n',
    );
    expect(b).toContain(
      'lport 11019\nremote 192.0.2.11 11019\nifconfig 10.1.3.2 10.1.3.1\nroute 10.16.0.0 255.240.0.0\ntls-client\nremote-cert-tls server\n',
    );
    expect(a).toContain('verify-x509-name h3.test name\n');
    expect(b).toContain('verify-x509-name h1.test name\n');
  });
});

describe('renderTunnelConfig', () => {
  const paths = {
    caCert: '/r/etc/srvctl/pki/ca.crt',
    cert: '/r/etc/srvctl/pki/host.crt',
    key: '/r/etc/srvctl/pki/host.key',
    pid: '/r/p',
    status: '/r/s',
    log: '/r/l',
  };
  const text = renderTunnelConfig(
    vpnLink(1, 2),
    { fqdn: 'h1.test', hostnet: 1, hostIp: '192.0.2.11' },
    { fqdn: 'h2.test', hostnet: 2, hostIp: '192.0.2.12' },
    paths,
  );

  it("carries sc's mark, modern ciphers, TLS only (no shared tls-crypt secret), writepid and status", () => {
    expect(text.startsWith('# srvctl vpn-link peer=h2.test role=server\n')).toBe(true);
    expect(text).toContain('data-ciphers AES-256-GCM:CHACHA20-POLY1305\n');
    expect(text).toContain('local 192.0.2.11\n');
    expect(text).toContain('key /r/etc/srvctl/pki/host.key\n');
    expect(text).toContain('writepid /r/p\n');
    expect(text).toContain('status /r/s 10\n');
    expect(text).toContain('log-append /r/l\nmachine-readable-output\n');
    expect(text).not.toMatch(/tls-crypt|tls-auth|secret /);
  });

  it("route arguments in openvpn's network-netmask form", () => {
    expect(routeArgs('10.32.0.0/12')).toBe('10.32.0.0 255.240.0.0');
    expect(routeArgs('10.0.0.0/8')).toBe('10.0.0.0 255.0.0.0');
  });
});

describe('vpn-link observe', () => {
  const want = vpnLinkHandler.desired(model, hostCtx('h1.test'))[0];
  const record = (over: Partial<TunnelRecord>): TunnelRecord => ({
    device: 'scv-1-2',
    peer: 'h2.test',
    role: 'server',
    configText: want?.spec.configText ?? '',
    running: true,
    pid: 4242,
    connected: true,
    lastHandshake: '2025-11-25 11:41:01',
    ...over,
  });
  const driversWith = (records: TunnelRecord[], devices: string[], root = '/fake-root') => {
    const recorded = recordingDrivers({ links: devices.map((ifname, i) => ({ ifindex: i + 1, ifname, flags: ['UP'] })), addresses: [] });
    const base = { ...recorded, files: createFilesDriver(root) };
    const openvpn: OpenvpnDriver = {
      runtime: 'direct',
      list: async () => records,
      writeConfig: async () => true,
      start: async () => undefined,
      stop: async () => undefined,
      remove: async () => undefined,
      manage: async () => [],
    };
    return { ...base, openvpn };
  };

  it('a running tunnel started by sc with the desired config and the installed certificates compares equal; state and handshake are for status only', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sc-vpn-'));
    try {
      await mkdir(path.join(root, 'etc/srvctl/pki'), { recursive: true });
      await writeFile(path.join(root, 'etc/srvctl/pki/host.crt'), 'cert v1');
      await writeFile(path.join(root, 'etc/srvctl/pki/ca.crt'), 'ca');
      const drivers = driversWith([record({})], ['scv-1-2'], root);
      await vpnLinkHandler.create(drivers, hostCtx('h1.test'), want!);
      const [seen] = await vpnLinkHandler.observe(drivers);
      expect(seen?.owned).toBe(true);
      expect(seen?.spec.state).toBe('up');
      expect(vpnLinkHandler.normalize(seen!.spec)).toEqual(vpnLinkHandler.normalize(want!.spec));

      // A renewed certificate is installed: the running tunnel still has the old one loaded.
      await writeFile(path.join(root, 'etc/srvctl/pki/host.crt'), 'cert v2');
      const [renewed] = await vpnLinkHandler.observe(drivers);
      expect(renewed?.spec.credentials).toBe('stale');
      expect(vpnLinkHandler.normalize(renewed!.spec)).not.toEqual(vpnLinkHandler.normalize(want!.spec));
      await vpnLinkHandler.update(drivers, hostCtx('h1.test'), want!, renewed!);
      expect((await vpnLinkHandler.observe(drivers))[0]?.spec.credentials).toBe('current');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('down without its device; a foreign config is not owned; a changed config differs by digest', async () => {
    const observed = await vpnLinkHandler.observe(
      driversWith([record({ configText: 'dev scv-1-2\n' }), record({ device: 'scv-1-3', peer: undefined, role: undefined })], []),
    );
    expect(observed[0]?.spec.state).toBe('down');
    expect(observed[0]?.spec.config).toBe(configDigest('dev scv-1-2\n'));
    expect(observed[1]?.owned).toBe(false);
    expect(vpnLinkHandler.conflict({ ...want!, spec: { ...want!.spec, device: 'scv-1-3' } }, observed)).toMatch(/not written by sc/);
  });
});
