// port-map's validate: a mapped UDP host port must not be one of the tunnel ports sc listens on at
// the container's host (its VPN links to the cluster's other hosts, its user VPN server); the port
// map would DNAT that traffic to the container and cut the host off the tunnel.
import type { Model } from '../../../src/datastore/model.js';
import { portMapHandler } from '../../../src/resources/port-map.js';
import { portMapProblems, tunnelPortsOf } from '../../../src/resources/port-map-checks.js';

type MappedPort = { proto: 'tcp' | 'udp'; host_port: number; container_port: number };

function model(ports: MappedPort[], options: { ca?: boolean; vpnClients?: boolean; userVpnPort?: number } = {}): Model {
  return {
    clusters: {
      test: {
        'h1.test': { hostnet: 1, host_ip: '192.0.2.11', ...(options.ca === false ? {} : { ca: true }) },
        'h2.test': { hostnet: 2, host_ip: '192.0.2.12' },
        'h3.test': { hostnet: 3, host_ip: '192.0.2.13' },
      },
      other: { 'x9.test': { hostnet: 9, host_ip: '198.51.100.9' } },
    },
    users: {
      ua: { reseller: 'root', user_id: 1, uid: 2001, ...(options.vpnClients ? { vpn_clients: [{ device: 'laptop', host_part: 201 }] } : {}) },
    },
    containers: {
      'a1.test': { user: 'ua', host: 'h1.test', type: 'busybox', ip: '10.16.1.20', mapped_ports: ports },
      'a9.test': { user: 'ua', host: 'x9.test', type: 'busybox', ip: '10.144.1.20', mapped_ports: ports },
    },
    settings: options.userVpnPort !== undefined ? { user_vpn: { port: options.userVpnPort } } : {},
  };
}

describe('the tunnel ports of a host', () => {
  it('its links to the other hosts of its cluster (11000 + 16·low + high), and its user VPN server when it serves devices', () => {
    expect([...tunnelPortsOf(model([], { vpnClients: true }), 'h1.test')]).toEqual([
      [11018, 'the port of its VPN link scv-1-2 to h2.test'],
      [11019, 'the port of its VPN link scv-1-3 to h3.test'],
      [1194, 'the port of its user VPN server (settings.user_vpn.port)'],
    ]);
    expect([...tunnelPortsOf(model([]), 'h1.test').keys()]).toEqual([11018, 11019]);
  });

  it('none on a host alone in its cluster, in a cluster without a CA, or for an unknown host', () => {
    expect(tunnelPortsOf(model([], { vpnClients: true }), 'x9.test').size).toBe(0);
    expect(tunnelPortsOf(model([], { ca: false, vpnClients: true }), 'h1.test').size).toBe(0);
    expect(tunnelPortsOf(model([]), 'nowhere.test').size).toBe(0);
  });
});

describe('portMapHandler.validate', () => {
  it('is the registered check of the kind', () => {
    expect(portMapHandler.validate).toBe(portMapProblems);
  });

  it("refuses a mapped udp port that is one of the host's link ports, at the port's JSON path", () => {
    const ports: MappedPort[] = [
      { proto: 'tcp', host_port: 2022, container_port: 22 },
      { proto: 'udp', host_port: 11019, container_port: 1194 },
    ];
    expect(portMapProblems(model(ports))).toEqual([
      {
        severity: 'error',
        document: 'containers',
        path: ['a1.test', 'mapped_ports', 1, 'host_port'],
        message:
          'udp port 11019 on h1.test is the port of its VPN link scv-1-3 to h3.test; mapped to a1.test it would cut the host off that tunnel: choose another host port',
      },
    ]);
  });

  it("refuses the user VPN's port where it serves devices (its own setting or the default 1194), not elsewhere", () => {
    const on = (port: number): MappedPort[] => [{ proto: 'udp', host_port: port, container_port: 53 }];
    expect(portMapProblems(model(on(1194), { vpnClients: true })).map((p) => p.path)).toEqual([['a1.test', 'mapped_ports', 0, 'host_port']]);
    expect(portMapProblems(model(on(1194), { vpnClients: true, userVpnPort: 1300 }))).toEqual([]);
    expect(portMapProblems(model(on(1300), { vpnClients: true, userVpnPort: 1300 }))).toHaveLength(1);
    expect(portMapProblems(model(on(1194)))).toEqual([]);
  });

  it('leaves tcp, other ports and hosts without tunnels alone', () => {
    expect(portMapProblems(model([{ proto: 'tcp', host_port: 11018, container_port: 80 }], { vpnClients: true }))).toEqual([]);
    expect(portMapProblems(model([{ proto: 'udp', host_port: 11020, container_port: 80 }]))).toEqual([]);
    expect(portMapProblems(model([{ proto: 'udp', host_port: 11018, container_port: 80 }], { ca: false }))).toEqual([]);
  });
});
