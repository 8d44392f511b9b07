// How srvctl 3 laid a container out on its host, and whether a layout found there is the container
// an import describes. srvctl 3.2 wrote /srv/NAME/NAME.nspawn next to /srv/NAME/rootfs (nspawn
// reads it with --settings=trusted), its network file under /srv/NAME/network/ and the type in
// /srv/NAME/ctype; a hand-made setup may have the .nspawn in /etc/systemd/nspawn. Pure.
import type { ContainerMapping } from './migration-report.js';

/** srvctl 3's mark on the files it generated (`## srvctl generated - NAME`). */
export const SRVCTL3_HEADER = '## srvctl generated';

export const srvctl3NspawnPath = (name: string): string => `/srv/${name}/${name}.nspawn`;
export const srvctl3NetworkDir = (name: string): string => `/srv/${name}/network`;
export const srvctl3TypePath = (name: string): string => `/srv/${name}/ctype`;

/** What observe says about a srvctl 3 container in sc's way (the container kind's conflict message starts so). */
export const SRVCTL3_CONTAINER = 'srvctl 3 container';

export function isSrvctl3Nspawn(text: string): boolean {
  return text.startsWith(SRVCTL3_HEADER);
}

export interface Srvctl3Nspawn {
  /** The name in the `## srvctl generated - NAME` line. */
  readonly generatedFor?: string;
  /** `VirtualEthernetExtra=78-1-4` (srvctl 3.2: the host veth is H-U-C, added to the bridge by ethernet.sh). */
  readonly virtualEthernetExtra?: string;
  /** `Bridge=10.78.1.x` (earlier srvctl 3) or a custom bridge. */
  readonly bridge?: string;
  /** `Port=tcp:2022:22` lines as `tcp:2022:22`. */
  readonly ports: readonly string[];
}

export function parseSrvctl3Nspawn(text: string): Srvctl3Nspawn {
  let generatedFor: string | undefined;
  let virtualEthernetExtra: string | undefined;
  let bridge: string | undefined;
  const ports: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith(SRVCTL3_HEADER)) generatedFor = /^## srvctl generated\s*-\s*(\S+)/.exec(line)?.[1];
    if (line.startsWith('#') || !line.includes('=')) continue;
    const key = line.slice(0, line.indexOf('=')).trim();
    const value = line.slice(line.indexOf('=') + 1).trim();
    if (key === 'VirtualEthernetExtra') virtualEthernetExtra = value.split(':')[0];
    else if (key === 'Bridge') bridge = value;
    else if (key === 'Port') ports.push(value.includes(':') && value.split(':').length === 3 ? value : `tcp:${value}`);
  }
  return {
    ...(generatedFor !== undefined ? { generatedFor } : {}),
    ...(virtualEthernetExtra !== undefined ? { virtualEthernetExtra } : {}),
    ...(bridge !== undefined ? { bridge } : {}),
    ports,
  };
}

/** `Address=10.78.1.4/24` of a srvctl 3 network file (ethernet.network, 80-container-host0.network). */
export function networkFileAddress(text: string): string | undefined {
  const match = /^\s*Address\s*=\s*([0-9.]+)(?:\/\d+)?\s*$/m.exec(text);
  return match?.[1];
}

/** The veth srvctl 3.2 named after a 10.H.U.C address: `H-U-C` (container_interface in its lib.js). */
export function srvctl3VethName(ip: string): string | undefined {
  const m = /^10\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

/** What sc found under --root for one container. */
export interface Srvctl3Layout {
  /** Where the srvctl 3 .nspawn is (a host path) and its text; absent when there is none. */
  readonly nspawn?: { readonly path: string; readonly text: string };
  readonly rootfs: 'dir' | 'symlink' | 'other' | 'missing';
  /** Texts of /srv/NAME/network/*.network. */
  readonly networkFiles: readonly string[];
  /** /srv/NAME/ctype, trimmed. */
  readonly ctype?: string;
}

/**
 * Why a layout is not the imported container (empty when it is): the tree must be a directory, the
 * .nspawn must be srvctl 3's for this name, on the old address's veth (or its bridge), with the
 * same mapped ports, and the network file and type, where present, must agree.
 */
export function layoutMismatches(record: ContainerMapping, layout: Srvctl3Layout): string[] {
  const name = record.name;
  const reasons: string[] = [];
  if (layout.rootfs === 'missing') reasons.push(`no /srv/${name}/rootfs`);
  else if (layout.rootfs !== 'dir') reasons.push(`/srv/${name}/rootfs is ${layout.rootfs === 'symlink' ? 'a symlink' : 'not a directory'}`);
  if (!layout.nspawn) {
    reasons.push(`no srvctl 3 settings (${srvctl3NspawnPath(name)} or /etc/systemd/nspawn/${name}.nspawn)`);
    return reasons;
  }
  const parsed = parseSrvctl3Nspawn(layout.nspawn.text);
  const where = layout.nspawn.path;
  if (parsed.generatedFor !== undefined && parsed.generatedFor !== name) reasons.push(`${where} was generated for ${parsed.generatedFor}`);
  if (record.bridge !== undefined) {
    if (parsed.bridge !== record.bridge)
      reasons.push(
        `${where} ${parsed.bridge !== undefined ? `has Bridge=${parsed.bridge}` : 'has no Bridge='}, the record says bridge ${record.bridge}`,
      );
  } else if (record.old_ip !== null) {
    const veth = srvctl3VethName(record.old_ip);
    const oldBridge = `${record.old_ip.split('.').slice(0, 3).join('.')}.x`;
    if (parsed.virtualEthernetExtra !== undefined) {
      if (parsed.virtualEthernetExtra !== veth)
        reasons.push(`${where} has VirtualEthernetExtra=${parsed.virtualEthernetExtra}, not ${veth} of ${record.old_ip}`);
    } else if (parsed.bridge !== undefined) {
      if (parsed.bridge !== oldBridge) reasons.push(`${where} has Bridge=${parsed.bridge}, not ${oldBridge} of ${record.old_ip}`);
    } else reasons.push(`${where} names no network (VirtualEthernetExtra= or Bridge=)`);
    for (const text of layout.networkFiles) {
      const address = networkFileAddress(text);
      if (address !== undefined && address !== record.old_ip) reasons.push(`its network file says Address=${address}, not ${record.old_ip}`);
    }
  }
  const want = record.mapped_ports.map((p) => `${p.proto}:${p.host_port}:${p.container_port}`).sort();
  const have = [...parsed.ports].sort();
  if (want.join(' ') !== have.join(' ')) reasons.push(`${where} maps ports ${have.join(' ') || 'none'}, the record ${want.join(' ') || 'none'}`);
  if (layout.ctype !== undefined && layout.ctype !== '' && layout.ctype !== record.type)
    reasons.push(`/srv/${name}/ctype says ${layout.ctype}, the record type ${record.type}`);
  return reasons;
}
