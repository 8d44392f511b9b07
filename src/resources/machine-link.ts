// A running machine's attachment to its bridge, as the machine kind observes and compares it: the
// host-side veth (`vb-…`, found through host0's peer index, never derived from the machine name —
// nspawn hashes long names) exists, is up, and its master is the container's bridge. Pure.
import type { Host0Link } from '../drivers/runtime.js';
import type { IpLink } from '../drivers/types.js';

export interface MachineLink {
  /** The bridge the host-side veth must be a port of (desired), or is a port of (observed). */
  readonly master: string | null;
  readonly up: boolean;
  /** Observed only: the host-side veth's name. */
  readonly veth?: string;
  /** Observed only: why there is no usable link (no host0, veth gone); only a restart repairs that. */
  readonly missing?: string;
}

/** What `sc diff` compares: master and up, or one line saying the link is missing and why. */
export type MachineLinkView = { readonly master: string | null; readonly up: boolean } | string;

export function machineLinkView(link: MachineLink | undefined): MachineLinkView {
  if (link === undefined) return 'missing: not observed';
  if (link.missing !== undefined) return `missing: ${link.missing}`;
  return { master: link.master, up: link.up };
}

/** The link of one machine from its host0 and the host's links (one `ip -j -d link show`). */
export function observedMachineLink(host0: Host0Link | undefined, linksByIndex: ReadonlyMap<number, IpLink>): MachineLink {
  const gone = (missing: string): MachineLink => ({
    master: null,
    up: false,
    missing,
  });
  if (host0 === undefined) return gone('host0 not looked at');
  if (host0.state === 'unreadable') return gone(`cannot look inside the container (${host0.reason})`);
  if (host0.state === 'missing') return gone('no host0 in the container');
  const peer = host0.peerIndex !== undefined ? linksByIndex.get(host0.peerIndex) : undefined;
  // host0's peer index names a link of this namespace only while the pair is intact; a link that
  // merely reuses the index is not the peer (its own peer index does not point back at host0).
  const isPeer =
    peer !== undefined && peer.linkinfo?.info_kind === 'veth' && (typeof peer.link_index !== 'number' || peer.link_index === host0.ifindex);
  if (!peer || !isPeer) return gone(`host0's veth peer (ifindex ${host0.peerIndex ?? '?'}) is not on this host`);
  return {
    master: peer.master ?? null,
    up: peer.flags.includes('UP'),
    veth: peer.ifname,
  };
}

export function linksByIndex(links: readonly IpLink[]): Map<number, IpLink> {
  return new Map(links.map((l) => [l.ifindex, l]));
}

/** ip commands (without `ip`) that attach a present veth to its bridge and set it up. */
export function reattachCommands(want: MachineLink, have: MachineLink): string[][] {
  if (have.veth === undefined || want.master === null) return [];
  if (have.master === want.master && have.up === want.up) return [];
  return [['link', 'set', 'dev', have.veth, 'master', want.master, ...(want.up ? ['up'] : [])]];
}
