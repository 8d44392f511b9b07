// What a mapped port must not take on its host: the UDP ports sc's own tunnels listen on there —
// the VPN link to each other host of the cluster (11000 + 16·low + high) and the user VPN server
// (settings.user_vpn.port). The port map DNATs every local destination of a mapped port to the
// container, so such a mapping would silently cut the host off its tunnels; found by validate.
import { userVpnPort } from '../access/vpn-client-config.js';
import { findHost, type Model } from '../datastore/model.js';
import type { HostContext } from '../host-context.js';
import { vpnLink } from '../network/vpn-plan.js';
import type { ModelProblem } from './contract.js';
import { needsClusterPki } from './pki.js';
import { userVpnPlan } from './user-vpn-config.js';

/** The UDP ports sc's tunnels listen on at `hostName`, each with what it is. */
export function tunnelPortsOf(model: Model, hostName: string): Map<number, string> {
  const ports = new Map<number, string>();
  const ref = findHost(model, hostName);
  if (!ref) return ports;
  // Only what these pure checks read of a host: its entry in the model.
  const host: HostContext = { ...ref, root: '/' };
  if (!needsClusterPki(model, host)) return ports;
  for (const [peer, peerHost] of Object.entries(model.clusters[ref.cluster] ?? {})) {
    if (peer === hostName || peerHost.hostnet === ref.host.hostnet) continue;
    try {
      const link = vpnLink(ref.host.hostnet, peerHost.hostnet);
      ports.set(link.port, `the port of its VPN link ${link.device} to ${peer}`);
    } catch {
      // A hostnet out of range is the schema's error, reported before any kind's check runs.
    }
  }
  if (userVpnPlan(model, host) !== undefined) ports.set(userVpnPort(model), 'the port of its user VPN server (settings.user_vpn.port)');
  return ports;
}

/** Mapped UDP host ports that are one of sc's tunnel ports on the container's host: errors at the port. */
export function portMapProblems(model: Model): ModelProblem[] {
  const problems: ModelProblem[] = [];
  const byHost = new Map<string, Map<number, string>>();
  for (const [name, container] of Object.entries(model.containers)) {
    for (const [index, mapped] of (container.mapped_ports ?? []).entries()) {
      if (mapped.proto !== 'udp') continue;
      let taken = byHost.get(container.host);
      if (taken === undefined) byHost.set(container.host, (taken = tunnelPortsOf(model, container.host)));
      const what = taken.get(mapped.host_port);
      if (what === undefined) continue;
      problems.push({
        severity: 'error',
        document: 'containers',
        path: [name, 'mapped_ports', index, 'host_port'],
        message: `udp port ${mapped.host_port} on ${container.host} is ${what}; mapped to ${name} it would cut the host off that tunnel: choose another host port`,
      });
    }
  }
  return problems;
}
