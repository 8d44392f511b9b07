// The user VPN server of one host (issue 18), as pure text: who may connect (the devices of the
// users with containers here), the address each gets (.host_part of its user's /24 here), the
// OpenVPN server config, one client-config-dir file per device (named by its certificate's CN,
// with `ccd-exclusive`: a certificate without a file — a host's — is refused), and the sc-owned
// nftables filter: a device reaches only its own user's /24s (here and, over the mesh, on the other
// hosts of the cluster), never the host itself through the tunnel, and nothing reaches a device
// that it did not ask for. Verified by hand in namespaces before it was written down.
import { createHash } from 'node:crypto';
import { findHost, type Model } from '../datastore/model.js';
import type { HostContext } from '../host-context.js';
import { userSubnet, VPN_CLIENTS } from '../network/address-plan.js';
import { bridgeName } from '../network/interface-names.js';
import { resolveUserNet } from '../network/user-network.js';
import { vpnClientAddress, vpnClientCommonName } from '../network/vpn-clients.js';
import { userVpnPort } from '../access/vpn-client-config.js';
import { USER_VPN_CLIENT_EKU } from '../drivers/openssl.js';
import { USER_VPN_MARK } from '../drivers/openvpn.js';
import { routeArgs } from './vpn-config.js';

/** sc owns this nftables table by its name. */
export const USER_VPN_TABLE = { family: 'inet', name: 'srvctl_user_vpn' } as const;

/** `scu-<hostnet>`: the server's tun device (≤ 15 characters). */
export const userVpnDevice = (hostnet: number): string => `scu-${hostnet}`;

/** The server's end of every point-to-point client link: 10.0.H.1 (10.0.0.0/16 is unused by the host links, which are 10.a.b.0/24 with a ≥ 1). */
export const userVpnServerAddress = (hostnet: number): { local: string; remote: string } => ({
  local: `10.0.${hostnet}.1`,
  remote: `10.0.${hostnet}.2`,
});

export interface UserVpnClient {
  readonly user: string;
  readonly device: string;
  /** The certificate CN, `USER@DEVICE`, and the name of its client-config-dir file. */
  readonly commonName: string;
  /** Its address behind this host. */
  readonly address: string;
  /** The user's /24s: here and on every other host of this cluster with the user's containers. */
  readonly subnets: readonly string[];
}

export interface UserVpnPlan {
  readonly device: string;
  readonly port: number;
  readonly clients: readonly UserVpnClient[];
  /** The bridges of these users here: proxy ARP on them answers the containers for the devices' addresses. */
  readonly bridges: readonly string[];
  /**
   * Routed into the tun: the whole .201–.250 range of each of these users' /24 here, not each
   * device's address, so adding or removing a device never changes the server's config (and never
   * restarts it under the other devices).
   */
  readonly routes: readonly string[];
}

/** The aligned CIDR blocks that cover host parts `first`–`last` of the /24 at `network` (a.b.c.0). */
export function rangeBlocks(network: string, first: number, last: number): string[] {
  const prefix = network.replace(/\.0$/, '');
  const blocks: string[] = [];
  for (let at = first; at <= last;) {
    let size = 1;
    while (at % (size * 2) === 0 && at + size * 2 - 1 <= last) size *= 2;
    blocks.push(`${prefix}.${at}/${32 - Math.log2(size)}`);
    at += size;
  }
  return blocks;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The devices this host serves: those of the users with containers on it. Undefined when none. */
export function userVpnPlan(model: Model, host: HostContext): UserVpnPlan | undefined {
  const clusterHosts = Object.keys(model.clusters[host.cluster] ?? {});
  const containers = Object.values(model.containers);
  const usersHere = [...new Set(containers.filter((c) => c.host === host.name).map((c) => c.user))].sort(byText);
  const clients: UserVpnClient[] = [];
  const bridges: string[] = [];
  const routes: string[] = [];
  for (const user of usersHere) {
    const devices = (Object.hasOwn(model.users, user) ? model.users[user]?.vpn_clients : undefined) ?? [];
    if (devices.length === 0) continue;
    const net = resolveUserNet(model.users, user, host.host.hostnet);
    if ('problem' in net) continue; // validation refuses such a datastore before any handler runs
    const subnets = clusterHosts
      .filter((h) => containers.some((c) => c.user === user && c.host === h))
      .map((h) => findHost(model, h))
      .flatMap((ref) => {
        const there = ref ? resolveUserNet(model.users, user, ref.host.hostnet) : { problem: 'unknown host' };
        return 'problem' in there ? [] : [userSubnet(there).cidr];
      })
      .sort(byText);
    bridges.push(bridgeName(net));
    routes.push(...rangeBlocks(userSubnet(net).network, VPN_CLIENTS.first, VPN_CLIENTS.last));
    for (const device of [...devices].sort((a, b) => a.host_part - b.host_part)) {
      clients.push({
        user,
        device: device.device,
        commonName: vpnClientCommonName(user, device.device),
        address: vpnClientAddress(net, device.host_part),
        subnets,
      });
    }
  }
  if (clients.length === 0) return undefined;
  return { device: userVpnDevice(host.host.hostnet), port: userVpnPort(model), clients, bridges: bridges.sort(byText), routes };
}

export interface UserVpnPaths {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
  /** The cluster's CRL as installed here. */
  readonly crl: string;
  readonly ccdDir: string;
  /** The management socket: sc drops the session of a device that was removed. */
  readonly management: string;
  readonly pid: string;
  readonly status: string;
  readonly log: string;
}

/**
 * The OpenVPN TLS server: point-to-point per client, the users' device ranges routed into the tun.
 * Who may connect, three checks: a certificate of the cluster CA with the user VPN EKU (host
 * certificates lack it), not revoked (the CRL, re-read by OpenVPN when the file changes), and with a
 * client-config-dir file for its name (ccd-exclusive: only the devices in the datastore).
 */
export function renderUserVpnServerConfig(plan: UserVpnPlan, host: HostContext, paths: UserVpnPaths): string {
  const server = userVpnServerAddress(host.host.hostnet);
  const lines = [
    `${USER_VPN_MARK} device=${plan.device}`,
    '# Written by sc (srvctl): changes here are overwritten on the next apply.',
    'mode server',
    'tls-server',
    `dev ${plan.device}`,
    'dev-type tun',
    'topology p2p',
    'proto udp',
    `local ${host.host.host_ip}`,
    `lport ${plan.port}`,
    `ifconfig ${server.local} ${server.remote}`,
    ...plan.routes.map((cidr) => `route ${routeArgs(cidr)}`),
    `client-config-dir ${paths.ccdDir}`,
    'ccd-exclusive',
    `remote-cert-eku ${USER_VPN_CLIENT_EKU}`,
    'dh none',
    `ca ${paths.caCert}`,
    `cert ${paths.cert}`,
    `key ${paths.key}`,
    `crl-verify ${paths.crl}`,
    `management ${paths.management} unix`,
    'tls-version-min 1.2',
    'data-ciphers AES-256-GCM:CHACHA20-POLY1305',
    'keepalive 10 60',
    'persist-tun',
    `writepid ${paths.pid}`,
    `status ${paths.status} 10`,
    'status-version 2',
    `log-append ${paths.log}`,
    'machine-readable-output',
    'verb 3',
  ];
  return `${lines.join('\n')}\n`;
}

/** The client-config-dir file of one device: its fixed address and the routes to its user's /24s. */
export function renderClientConfigFile(client: UserVpnClient, host: HostContext): string {
  const server = userVpnServerAddress(host.host.hostnet);
  return [
    `# srvctl user-vpn client ${client.commonName}`,
    `ifconfig-push ${client.address} ${server.local}`,
    ...client.subnets.map((cidr) => `push "route ${routeArgs(cidr)}"`),
    '',
  ].join('\n');
}

/** The sc-owned filter (replaced whole on load): per device, its own source address to its user's /24s only. */
export function renderUserVpnFilter(plan: UserVpnPlan): string {
  const dev = JSON.stringify(plan.device);
  const { family, name } = USER_VPN_TABLE;
  return [
    `table ${family} ${name}`,
    `delete table ${family} ${name}`,
    `table ${family} ${name} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${dev} drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    ...plan.clients.map((c) => `    iifname ${dev} ip saddr ${c.address} ip daddr { ${c.subnets.join(', ')} } accept`),
    `    iifname ${dev} drop`,
    `    oifname ${dev} ct state established,related accept`,
    `    oifname ${dev} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export const textDigest = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;

/** One connected device, as the server's status file (status-version 2) lists it. */
export interface ConnectedClient {
  readonly common_name: string;
  /** Its address in the tunnel. */
  readonly address: string;
  /** Where it connects from (address:port). */
  readonly real_address: string;
  /** UTC, ISO 8601. */
  readonly connected_since: string | null;
  /** The last packet from it (the routing table's "Last Ref"), UTC. */
  readonly last_seen: string | null;
}

const isoOf = (epoch: string | undefined): string | null => {
  const n = Number(epoch);
  return epoch !== undefined && /^\d+$/.test(epoch) && n > 0 ? new Date(n * 1000).toISOString() : null;
};

/** The connected devices in an OpenVPN `status-version 2` file, by common name. */
export function parseUserVpnStatus(text: string): ConnectedClient[] {
  const lastRef = new Map<string, string | null>();
  const clients: { cn: string; real: string; address: string; since: string | null }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trimEnd().split(',');
    // CLIENT_LIST,CN,Real Address,Virtual Address,Virtual IPv6 Address,Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),…
    if (f[0] === 'CLIENT_LIST' && f.length >= 9) clients.push({ cn: f[1] ?? '', real: f[2] ?? '', address: f[3] ?? '', since: isoOf(f[8]) });
    // ROUTING_TABLE,Virtual Address,Common Name,Real Address,Last Ref,Last Ref (time_t)
    if (f[0] === 'ROUTING_TABLE' && f.length >= 6) lastRef.set(`${f[2] ?? ''}\0${f[1] ?? ''}`, isoOf(f[5]));
  }
  return clients
    .filter((c) => c.cn !== '' && c.cn !== 'UNDEF')
    .map((c) => ({
      common_name: c.cn,
      address: c.address,
      real_address: c.real,
      connected_since: c.since,
      last_seen: lastRef.get(`${c.cn}\0${c.address}`) ?? null,
    }))
    .sort((a, b) => (a.common_name < b.common_name ? -1 : a.common_name > b.common_name ? 1 : 0));
}
