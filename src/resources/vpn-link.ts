// The vpn-link resource: one OpenVPN tunnel to each other host of our cluster (SPEC §2, §5),
// `vpn-link/<peer fqdn>`. Its spec is the config's digest, whether it runs and whether it runs
// with the certificates installed now, so a changed config or a renewed certificate restarts only
// that tunnel; a peer gone from the datastore loses its tunnel.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Model } from '../datastore/model.js';
import { OPENVPN_RUN_DIR, tunnelFiles, type OpenvpnDriver, type TunnelRole } from '../drivers/openvpn.js';
import type { Drivers } from '../drivers/types.js';
import { ConflictError, ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { vpnLink } from '../network/vpn-plan.js';
import type { DesiredObject, ObservedObject, ResourceHandler } from './contract.js';
import { CA_CERT_PATH, HOST_CERT_PATH, HOST_KEY_PATH } from './pki-files.js';
import { HOST_CERT_REF, PKI_KIND, needsClusterPki } from './pki.js';
import { configDigest, renderTunnelConfig, roleOf } from './vpn-config.js';

export const VPN_LINK_KIND = 'vpn-link';

export interface VpnLinkSpec {
  readonly device: string;
  readonly role: TunnelRole;
  /** Digest of the config text. */
  readonly config: string;
  readonly running: boolean;
  /** Desired only: the config to write. */
  readonly configText?: string;
  /** `current`: the tunnel was started with the certificates installed now; `stale`: they changed since (renewal). */
  readonly credentials: 'current' | 'stale';
  /** Observed only (status, never compared): the peer completed a handshake and was not lost since. */
  readonly state?: 'up' | 'down';
  readonly lastHandshake?: string;
  readonly pid?: number;
}

/** Digest of the host and CA certificates as installed: what a tunnel started now would load. */
export async function credentialsDigest(drivers: Drivers): Promise<string> {
  const texts = await Promise.all(
    [HOST_CERT_PATH, CA_CERT_PATH].map((p) =>
      drivers.files
        .read(p)
        .then((t) => t ?? '')
        .catch(() => ''),
    ),
  );
  return createHash('sha256').update(texts.join('\0')).digest('hex').slice(0, 16);
}

/** Where sc notes the certificates a tunnel was started with. */
/** Host path of the record of which credentials a tunnel was started with. */
const credentialsRecord = (device: string): string => `${OPENVPN_RUN_DIR}/${device}.credentials`;

function openvpnOf(drivers: Drivers): OpenvpnDriver {
  if (!drivers.openvpn) throw new ScError('this driver set has no openvpn driver');
  return drivers.openvpn;
}

export function desiredVpnLinks(model: Model, host: HostContext, hostPath: (p: string) => string): DesiredObject<VpnLinkSpec>[] {
  const self = { fqdn: host.name, hostnet: host.host.hostnet, hostIp: host.host.host_ip };
  const peers = Object.entries(model.clusters[host.cluster] ?? {}).filter(([fqdn]) => fqdn !== host.name);
  return peers
    .sort(([, a], [, b]) => a.hostnet - b.hostnet)
    .map(([fqdn, peerHost]) => {
      const link = vpnLink(self.hostnet, peerHost.hostnet);
      const files = tunnelFiles(link.device);
      const configText = renderTunnelConfig(
        link,
        self,
        { fqdn, hostnet: peerHost.hostnet, hostIp: peerHost.host_ip },
        {
          caCert: hostPath(CA_CERT_PATH),
          cert: hostPath(HOST_CERT_PATH),
          key: hostPath(HOST_KEY_PATH),
          pid: hostPath(files.pid),
          status: hostPath(files.status),
          log: hostPath(files.log),
        },
      );
      return {
        ref: { kind: VPN_LINK_KIND, id: fqdn },
        spec: {
          device: link.device,
          role: roleOf(link, self.hostnet),
          config: configDigest(configText),
          running: true,
          credentials: 'current',
          configText,
        },
        dependsOn: [HOST_CERT_REF],
        description: `${link.device} ${link.addressOf(self.hostnet)} ↔ ${link.peerAddressOf(self.hostnet)}, udp ${link.port}, routes ${link.routeVia(self.hostnet)}`,
      };
    });
}

export const vpnLinkHandler = {
  kind: VPN_LINK_KIND,
  dependsOnKinds: [PKI_KIND],

  desired(model: Model, host: HostContext): DesiredObject<VpnLinkSpec>[] {
    if (!needsClusterPki(model, host)) return [];
    // The config names files under --root; the same resolution the files driver does.
    const root = path.resolve(host.root);
    return desiredVpnLinks(model, host, (p) => path.join(root, p));
  },

  async observe(drivers: Drivers): Promise<ObservedObject<VpnLinkSpec>[]> {
    const [all, links, current] = await Promise.all([openvpnOf(drivers).list(), drivers.ip.listLinks(), credentialsDigest(drivers)]);
    // The user VPN server's config lives beside the tunnels' and belongs to the user-vpn kind.
    const tunnels = all.filter((t) => t.userVpn !== true);
    const devices = new Set(links.map((l) => l.ifname));
    const started = await Promise.all(tunnels.map((t) => drivers.files.read(credentialsRecord(t.device)).catch(() => undefined)));
    return tunnels.map((t, i) => ({
      ref: { kind: VPN_LINK_KIND, id: t.peer ?? `foreign:${t.device}` },
      spec: {
        device: t.device,
        role: t.role ?? 'server',
        config: configDigest(t.configText),
        running: t.running,
        // A stopped tunnel loads whatever is installed when it starts.
        credentials: !t.running || started[i]?.trim() === current ? 'current' : 'stale',
        state: t.running && t.connected && devices.has(t.device) ? 'up' : 'down',
        ...(t.lastHandshake !== undefined ? { lastHandshake: t.lastHandshake } : {}),
        ...(t.pid !== undefined ? { pid: t.pid } : {}),
      },
      owned: t.peer !== undefined,
      description: t.peer !== undefined ? `${t.device} to ${t.peer}` : `config ${t.device}.conf without sc's mark`,
    }));
  },

  normalize(spec: VpnLinkSpec) {
    return { device: spec.device, role: spec.role, config: spec.config, running: spec.running, credentials: spec.credentials };
  },

  conflict(want: DesiredObject<VpnLinkSpec>, observed: readonly ObservedObject<VpnLinkSpec>[]): string | undefined {
    const foreign = observed.find((o) => !o.owned && o.spec.device === want.spec.device);
    return foreign ? `a config ${want.spec.device}.conf not written by sc is in the way; remove it` : undefined;
  },

  canUpdate: () => true,

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<VpnLinkSpec>): Promise<void> {
    const openvpn = openvpnOf(drivers);
    if (want.spec.configText === undefined) throw new ScError(`vpn-link/${want.ref.id} has no config to write`);
    await openvpn.writeConfig(want.spec.device, want.spec.configText);
    const credentials = await credentialsDigest(drivers);
    await openvpn.start(want.spec.device, want.spec.role);
    await drivers.files.write(credentialsRecord(want.spec.device), `${credentials}\n`);
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<VpnLinkSpec>, have: ObservedObject<VpnLinkSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to change ${have.spec.device}: not sc's`);
    const openvpn = openvpnOf(drivers);
    if (have.spec.device !== want.spec.device) await openvpn.remove(have.spec.device, have.spec.role);
    if (have.spec.role !== want.spec.role) await openvpn.stop(want.spec.device, have.spec.role);
    // start() stops a running process first: a config change restarts this tunnel only.
    await vpnLinkHandler.create(drivers, host, want);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<VpnLinkSpec>): Promise<void> {
    if (!have.owned) throw new ConflictError(`refusing to delete ${have.spec.device}: not sc's`);
    await openvpnOf(drivers).remove(have.spec.device, have.spec.role);
    await drivers.files.remove(credentialsRecord(have.spec.device));
  },
} satisfies ResourceHandler<VpnLinkSpec>;
