// The openvpn driver's pure parts: unit command lines (systemd), the direct start, the mark, the log.
import {
  directStartArgs,
  parseMark,
  parseTunnelLog,
  systemdRestartArgs,
  systemdStartArgs,
  systemdStopArgs,
  tunnelFiles,
  unitName,
} from '../../../src/drivers/openvpn.js';

describe('openvpn driver command lines', () => {
  it('the lower end runs as openvpn-server@, the higher as openvpn-client@', () => {
    expect(unitName('scv-1-2', 'server')).toBe('openvpn-server@scv-1-2.service');
    expect(systemdStartArgs('scv-1-2', 'server')).toEqual(['enable', '--now', 'openvpn-server@scv-1-2.service']);
    expect(systemdRestartArgs('scv-1-2', 'client')).toEqual(['restart', 'openvpn-client@scv-1-2.service']);
    expect(systemdStopArgs('scv-2-3', 'client')).toEqual(['disable', '--now', 'openvpn-client@scv-2-3.service']);
  });

  it('the direct runtime daemonizes with its own log, files under /etc/openvpn/srvctl and /run/srvctl/openvpn', () => {
    const files = tunnelFiles('scv-1-2');
    expect(files).toEqual({
      config: '/etc/openvpn/srvctl/scv-1-2.conf',
      pid: '/run/srvctl/openvpn/scv-1-2.pid',
      status: '/run/srvctl/openvpn/scv-1-2.status',
      log: '/run/srvctl/openvpn/scv-1-2.log',
      management: '/run/srvctl/openvpn/scv-1-2.mgmt',
    });
    expect(directStartArgs('/r/etc/openvpn/srvctl/scv-1-2.conf', 'scv-1-2')).toEqual([
      '--config',
      '/r/etc/openvpn/srvctl/scv-1-2.conf',
      '--daemon',
      'sc-scv-1-2',
    ]);
  });
});

describe('parseMark', () => {
  it("reads peer and role from sc's first line, nothing from a foreign config", () => {
    expect(parseMark('# srvctl vpn-link peer=h2.test role=server\ndev scv-1-2\n')).toEqual({ peer: 'h2.test', role: 'server' });
    expect(parseMark('dev tun0\n# srvctl vpn-link peer=h2.test role=server\n')).toBeUndefined();
    expect(parseMark('# srvctl vpn-link peer=h2.test role=boss\n')).toBeUndefined();
  });
});

describe('parseTunnelLog', () => {
  it('connected after a completed handshake, with its time', () => {
    const log = [
      '2025-11-25 11:41:00 OpenVPN 2.6.3 x86_64-pc-linux-gnu',
      '2025-11-25 11:41:01 [h2.test] Peer Connection Initiated with [AF_INET]192.0.2.12:11018',
      '2025-11-25 11:41:01 Initialization Sequence Completed',
    ].join('\n');
    expect(parseTunnelLog(log)).toEqual({ connected: true, lastHandshake: '2025-11-25 11:41:01' });
  });

  it('down again after an inactivity timeout; the last handshake time stays', () => {
    const log = [
      '2025-11-25 11:41:01 [h2.test] Peer Connection Initiated with [AF_INET]192.0.2.12:11018',
      '2025-11-25 11:43:01 [h2.test] Inactivity timeout (--ping-restart), restarting',
    ].join('\n');
    expect(parseTunnelLog(log)).toEqual({ connected: false, lastHandshake: '2025-11-25 11:41:01' });
  });

  it('reads --machine-readable-output lines (the systemd units suppress plain timestamps) as UTC', () => {
    const log = [
      '1764589261.123456 1 OpenVPN 2.6.3 x86_64-pc-linux-gnu',
      '1764589262.000001 1 [h2.test] Peer Connection Initiated with [AF_INET]192.0.2.12:11018',
    ].join('\n');
    expect(parseTunnelLog(log)).toEqual({ connected: true, lastHandshake: '2025-12-01T11:41:02.000Z' });
  });

  it('never connected: down, no handshake', () => {
    expect(parseTunnelLog('2025-11-25 11:41:00 UDPv4 link remote: [AF_INET]192.0.2.12:11018\n')).toEqual({ connected: false });
  });
});
