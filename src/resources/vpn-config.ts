// The OpenVPN config of one host-to-host tunnel (SPEC §2, sandbox.md §6): plain TLS point-to-point,
// certificates from the cluster CA, the peer pinned by name, routes to the peer's /12. Pure text.
import { createHash } from 'node:crypto';
import type { TunnelRole } from '../drivers/openvpn.js';
import type { VpnLink } from '../network/vpn-plan.js';

/** id-kp-serverAuth: only host certificates have it. */
export const SERVER_AUTH_EKU = '1.3.6.1.5.5.7.3.1';

export interface TunnelEnd {
  readonly fqdn: string;
  readonly hostnet: number;
  readonly hostIp: string;
}

export interface TunnelPaths {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
  readonly pid: string;
  readonly status: string;
  /** openvpn's own log (both runtimes): `sc status` reads the peer's handshakes from it. */
  readonly log: string;
}

/** The lower hostnet of the pair is the TLS server, the higher one the client. */
export const roleOf = (link: VpnLink, hostnet: number): TunnelRole => (link.low === hostnet ? 'server' : 'client');

function netmaskOf(prefixLength: number): string {
  const mask = prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
  return [24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join('.');
}

/** `10.32.0.0/12` → `10.32.0.0 255.240.0.0`, the form openvpn's `route` takes. */
export function routeArgs(cidr: string): string {
  const [network, length] = cidr.split('/');
  return `${network} ${netmaskOf(Number(length))}`;
}

export function renderTunnelConfig(link: VpnLink, self: TunnelEnd, peer: TunnelEnd, paths: TunnelPaths): string {
  const role = roleOf(link, self.hostnet);
  const lines = [
    `# srvctl vpn-link peer=${peer.fqdn} role=${role}`,
    '# Written by sc (srvctl): changes here are overwritten on the next apply.',
    `dev ${link.device}`,
    'dev-type tun',
    'topology p2p',
    'proto udp',
    `local ${self.hostIp}`,
    `lport ${link.port}`,
    `remote ${peer.hostIp} ${link.port}`,
    `ifconfig ${link.addressOf(self.hostnet)} ${link.peerAddressOf(self.hostnet)}`,
    `route ${routeArgs(link.routeVia(self.hostnet))}`,
    // Both ends require the peer's certificate to be a host's: serverAuth, which host certificates
    // carry and user VPN device certificates never do (and the peer's name, below).
    ...(role === 'server' ? ['tls-server', 'dh none', `remote-cert-eku ${SERVER_AUTH_EKU}`] : ['tls-client', 'remote-cert-tls server']),
    `ca ${paths.caCert}`,
    `cert ${paths.cert}`,
    `key ${paths.key}`,
    `verify-x509-name ${peer.fqdn} name`,
    'tls-version-min 1.2',
    'data-ciphers AES-256-GCM:CHACHA20-POLY1305',
    'keepalive 10 60',
    'persist-tun',
    `writepid ${paths.pid}`,
    `status ${paths.status} 10`,
    // A file in both runtimes, and timestamped even under the systemd units' --suppress-timestamps.
    `log-append ${paths.log}`,
    'machine-readable-output',
    'verb 3',
  ];
  return `${lines.join('\n')}\n`;
}

/** What a change of the config is compared by (the text itself stays out of plans and status). */
export const configDigest = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
