// user-vpn: which devices a host serves (users with containers here), each device's fixed address
// and routes, the server config, the client-config-dir files and the filter — pure functions of a
// small model; and the handler's desired object.
import type { Model } from '../../../src/datastore/model.js';
import type { HostContext } from '../../../src/host-context.js';
import {
  parseUserVpnStatus,
  rangeBlocks,
  renderClientConfigFile,
  renderUserVpnFilter,
  renderUserVpnServerConfig,
  userVpnPlan,
} from '../../../src/resources/user-vpn-config.js';
import { userVpnHandler } from '../../../src/resources/user-vpn.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseMark, type OpenvpnDriver } from '../../../src/drivers/openvpn.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import { credentialsDigest } from '../../../src/resources/vpn-link.js';
import { recordingDrivers } from './recording-drivers.js';
import { USER_VPN_CLIENT_EKU } from '../../../src/drivers/openssl.js';

const clusters = {
  test: {
    'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
    'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
    'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
  },
  other: { 'x9.test': { hostnet: 9, host_ip: '198.51.100.9' } },
};
const model = {
  clusters,
  users: {
    ua: {
      reseller: 'root',
      user_id: 1,
      uid: 2001,
      vpn_clients: [
        { device: 'phone', host_part: 202 },
        { device: 'laptop', host_part: 201 },
      ],
    },
    ub: { reseller: 'root', user_id: 2, uid: 2002, vpn_clients: [{ device: 'pc', host_part: 201 }] },
    uc: { reseller: 'root', user_id: 3, uid: 2003 },
  },
  containers: {
    'a1.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: '10.16.1.20' },
    'a2.test': { user: 'ua', host: 'h2.test', type: 'busybox', ip: '10.32.1.20' },
    'a9.test': { user: 'ua', host: 'x9.test', type: 'busybox', ip: '10.144.1.20' },
    'b2.test': { user: 'ub', host: 'h2.test', type: 'busybox', ip: '10.32.2.20' },
    'c1.test': { user: 'uc', host: 'h1.test', type: 'busybox', ip: '10.16.3.20' },
  },
  settings: {},
} as unknown as Model;
const hostCtx = (name: 'h1.test' | 'h2.test' | 'h3.test'): HostContext => ({ name, cluster: 'test', host: clusters.test[name], root: '/r' });

describe('user-vpn plan', () => {
  it("serves the devices of the users with containers here, at .host_part of the user's /24 here, routing the user's /24s of this cluster", () => {
    const plan = userVpnPlan(model, hostCtx('h1.test'));
    expect(plan?.device).toBe('scu-1');
    expect(plan?.port).toBe(1194);
    expect(plan?.bridges).toEqual(['sc-16-1']);
    expect(plan?.clients).toEqual([
      { user: 'ua', device: 'laptop', commonName: 'ua@laptop', address: '10.16.1.201', subnets: ['10.16.1.0/24', '10.32.1.0/24'] },
      { user: 'ua', device: 'phone', commonName: 'ua@phone', address: '10.16.1.202', subnets: ['10.16.1.0/24', '10.32.1.0/24'] },
    ]);
    const h2 = userVpnPlan(model, hostCtx('h2.test'));
    expect(h2?.clients.map((c) => [c.commonName, c.address])).toEqual([
      ['ua@laptop', '10.32.1.201'],
      ['ua@phone', '10.32.1.202'],
      ['ub@pc', '10.32.2.201'],
    ]);
    expect(h2?.bridges).toEqual(['sc-32-1', 'sc-32-2']);
    // No user of h3 has containers there: no server.
    expect(userVpnPlan(model, hostCtx('h3.test'))).toBeUndefined();
  });

  it('the server config: p2p per client, each address routed into the tun, ccd-exclusive, the port from settings', () => {
    const withPort = { ...model, settings: { user_vpn: { port: 1300 } } } as unknown as Model;
    const plan = userVpnPlan(withPort, hostCtx('h1.test'));
    if (!plan) throw new Error('no plan');
    const text = renderUserVpnServerConfig(plan, hostCtx('h1.test'), {
      caCert: '/r/ca.crt',
      cert: '/r/host.crt',
      key: '/r/host.key',
      crl: '/r/crl.pem',
      ccdDir: '/r/ccd',
      management: '/r/m',
      pid: '/r/p',
      status: '/r/s',
      log: '/r/l',
    });
    expect(parseMark(text)).toBeUndefined(); // never mistaken for a host tunnel
    expect(text).not.toContain('remote-cert-tls');
    // The whole device range of each user here, in aligned blocks: a device added or removed never changes the config.
    expect(rangeBlocks('10.16.1.0', 201, 250)).toEqual([
      '10.16.1.201/32',
      '10.16.1.202/31',
      '10.16.1.204/30',
      '10.16.1.208/28',
      '10.16.1.224/28',
      '10.16.1.240/29',
      '10.16.1.248/31',
      '10.16.1.250/32',
    ]);
    expect(plan.routes).toEqual(rangeBlocks('10.16.1.0', 201, 250));
    const oneDevice = {
      ...withPort,
      users: { ...withPort.users, ua: { ...withPort.users.ua, vpn_clients: [{ device: 'laptop', host_part: 201 }] } },
    } as unknown as Model;
    const fewer = userVpnPlan(oneDevice, hostCtx('h1.test'));
    if (!fewer) throw new Error('no plan');
    const paths = { caCert: '/a', cert: '/b', key: '/c', crl: '/d', ccdDir: '/e', management: '/f', pid: '/g', status: '/h', log: '/i' };
    expect(renderUserVpnServerConfig(fewer, hostCtx('h1.test'), paths)).toBe(renderUserVpnServerConfig(plan, hostCtx('h1.test'), paths));
    expect(text.split('\n')[0]).toBe('# srvctl user-vpn device=scu-1');
    for (const line of [
      'mode server',
      'dev scu-1',
      'topology p2p',
      'local 192.0.2.11',
      'lport 1300',
      'ifconfig 10.0.1.1 10.0.1.2',
      'route 10.16.1.201 255.255.255.255',
      'route 10.16.1.202 255.255.255.254',
      'route 10.16.1.224 255.255.255.240',
      'route 10.16.1.250 255.255.255.255',
      'client-config-dir /r/ccd',
      'ccd-exclusive',
      `remote-cert-eku ${USER_VPN_CLIENT_EKU}`,
      'key /r/host.key',
      'crl-verify /r/crl.pem',
      'management /r/m unix',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    expect(renderClientConfigFile(plan.clients[0] as never, hostCtx('h1.test'))).toBe(
      '# srvctl user-vpn client ua@laptop\nifconfig-push 10.16.1.201 10.0.1.1\npush "route 10.16.1.0 255.255.255.0"\npush "route 10.32.1.0 255.255.255.0"\n',
    );
  });

  it("the filter: a device's own address to its user's /24s only; nothing to the host through the tunnel; replies only towards the devices", () => {
    const plan = userVpnPlan(model, hostCtx('h2.test'));
    if (!plan) throw new Error('no plan');
    const text = renderUserVpnFilter(plan);
    expect(text.startsWith('table inet srvctl_user_vpn\ndelete table inet srvctl_user_vpn\n')).toBe(true);
    expect(text).toContain('    iifname "scu-2" drop\n  }\n  chain forward');
    expect(text).toContain(
      'iifname "scu-2" ip saddr 10.32.1.201 ip daddr { 10.32.1.0/24, 10.16.1.0/24 } accept'.replace(
        '10.32.1.0/24, 10.16.1.0/24',
        '10.16.1.0/24, 10.32.1.0/24',
      ),
    );
    expect(text).toContain('iifname "scu-2" ip saddr 10.32.2.201 ip daddr { 10.32.2.0/24 } accept');
    expect(text).toContain('oifname "scu-2" ct state established,related accept\n    oifname "scu-2" drop\n');
  });

  it('the handler: one object per host, after the host certificate and the bridges; none without the cluster PKI', () => {
    const [server] = userVpnHandler.desired(model, hostCtx('h2.test'));
    expect(server?.ref).toEqual({ kind: 'user-vpn', id: 'server' });
    expect(server?.dependsOn).toEqual([
      { kind: 'pki', id: 'host-cert' },
      { kind: 'bridge', id: 'sc-32-1' },
      { kind: 'bridge', id: 'sc-32-2' },
    ]);
    expect(Object.keys(server?.spec.clients ?? {})).toEqual(['ua@laptop', 'ua@phone', 'ub@pc']);
    // On the CA host the CRL is brought up to date before the server installs it.
    expect(userVpnHandler.desired(model, hostCtx('h1.test'))[0]?.dependsOn).toContainEqual({ kind: 'pki', id: 'clients' });
    expect(server?.spec.configText).toContain('ca /r/etc/srvctl/pki/ca.crt');
    const alone = { ...model, clusters: { test: { 'h1.test': clusters.test['h1.test'] } } } as unknown as Model;
    expect(userVpnHandler.desired(alone, hostCtx('h1.test'))).toEqual([]);
  });
});

describe('user-vpn status file', () => {
  it('lists the connected devices with their tunnel address, where they connect from, since when and the last packet', () => {
    const text = [
      'TITLE,OpenVPN 2.6.3 x86_64-pc-linux-gnu',
      'TIME,2026-12-06 21:40:00,1796593200',
      'HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher',
      'CLIENT_LIST,ua@phone,192.0.2.14:40000,10.16.1.202,,100,200,2026-12-06 21:39:00,1796593140,UNDEF,1,1,AES-256-GCM',
      'CLIENT_LIST,ua@laptop,192.0.2.13:50000,10.16.1.201,,100,200,2026-12-06 21:38:00,1796593080,UNDEF,0,0,AES-256-GCM',
      'HEADER,ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)',
      'ROUTING_TABLE,10.16.1.201,ua@laptop,192.0.2.13:50000,2026-12-06 21:39:59,1796593199',
      'GLOBAL_STATS,Max bcast/mcast queue length,0',
      'END',
    ].join('\n');
    expect(parseUserVpnStatus(text)).toEqual([
      {
        common_name: 'ua@laptop',
        address: '10.16.1.201',
        real_address: '192.0.2.13:50000',
        connected_since: new Date(1796593080 * 1000).toISOString(),
        last_seen: new Date(1796593199 * 1000).toISOString(),
      },
      {
        common_name: 'ua@phone',
        address: '10.16.1.202',
        real_address: '192.0.2.14:40000',
        connected_since: new Date(1796593140 * 1000).toISOString(),
        last_seen: null,
      },
    ]);
    expect(parseUserVpnStatus('')).toEqual([]);
  });
});

describe('user-vpn handler: sessions and the CRL', () => {
  const statusLines = (cns: string[]) => [
    'TITLE,OpenVPN 2.6',
    'HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,Peer ID,Data Channel Cipher',
    ...cns.map(
      (cn, i) => `CLIENT_LIST,${cn},192.0.2.9:${40000 + i},10.32.1.${201 + i},,1,1,2026-12-06 10:00:00,1796551200,UNDEF,${i},${i},AES-256-GCM`,
    ),
    'END',
  ];

  async function setUp(connected: string[], crl: string | undefined) {
    const root = await mkdtemp(path.join(tmpdir(), 'sc-user-vpn-'));
    const host: HostContext = {
      ...hostCtx('h2.test'),
      root,
      pki: {
        where: 'in the datastore',
        read: async (rel) => (rel === 'pki/crl.pem' ? crl : undefined),
        requestHosts: async () => [],
        clientCertNames: async () => [],
        publish: async () => undefined,
      },
    };
    const [want] = userVpnHandler.desired(model, host);
    if (!want) throw new Error('no server');
    let sessions = [...connected];
    const commands: string[] = [];
    const openvpn: OpenvpnDriver = {
      runtime: 'direct',
      list: async () => [{ device: 'scu-2', userVpn: true, configText: want.spec.configText ?? '', running: true, connected: false, pid: 1 }],
      writeConfig: async () => false,
      start: async () => {
        commands.push('start');
      },
      stop: async () => undefined,
      remove: async () => undefined,
      manage: async (_device, command) => {
        commands.push(command);
        if (command.startsWith('kill ')) sessions = sessions.filter((cn) => cn !== command.slice(5));
        return command === 'status 2' ? statusLines(sessions).filter((l) => l !== 'END') : ['SUCCESS: common name found, 1 client(s) killed'];
      },
    };
    const drivers = {
      ...recordingDrivers(),
      files: createFilesDriver(root),
      nft: { listTable: async () => [], load: async () => undefined },
      sysctl: { read: async () => '1', write: async () => undefined },
      openvpn,
    };
    await drivers.files.write('/run/srvctl/openvpn/scu-2.credentials', `${await credentialsDigest(drivers)}\n`);
    return { root, host, want, drivers, commands };
  }

  it('observes the devices connected that may no longer connect, and drops only them by name, without a restart', async () => {
    const { root, host, want, drivers, commands } = await setUp(['ua@laptop', 'ua@gone', 'ub@pc'], 'CRL');
    try {
      const [observed] = await userVpnHandler.observe(drivers, host, { model, desired: [want] });
      expect(observed?.spec.strays).toEqual(['ua@gone']);
      expect(observed?.spec.crl).toBe('absent');
      await userVpnHandler.create(drivers, host, want);
      expect(commands.filter((c) => c !== 'status 2')).toEqual(['kill ua@gone']);
      expect(await drivers.files.read('/etc/srvctl/pki/crl.pem')).toBe('CRL');
      const [after] = await userVpnHandler.observe(drivers, host, { model, desired: [want] });
      expect(after?.spec).toMatchObject({ strays: [], crl: 'current' });
      expect(after?.spec.connected?.map((c) => c.common_name)).toEqual(['ua@laptop', 'ub@pc']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('without a published CRL the server is not started: it waits for the CA host', async () => {
    const { root, host, want, drivers, commands } = await setUp([], undefined);
    try {
      await expect(userVpnHandler.create(drivers, host, want)).rejects.toThrow(/waiting for the cluster's CRL \(pki\/crl\.pem\)/);
      expect(commands).not.toContain('start');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
