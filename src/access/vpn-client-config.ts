// `sc vpn-config USER DEVICE`: the OpenVPN client configuration of one of a user's devices, one
// per host the user has containers on (the device's address differs per host: .host_part of the
// user's /24 there), and the one openssl command that makes the device's key and request on the
// device itself. Never a key: the config names the key file the user made. Pure text.
import { UserError } from '../errors.js';
import { findHost, type Model, type VpnClient } from '../datastore/model.js';
import { resolveUserNet } from '../network/user-network.js';
import { vpnClientAddress, vpnClientCommonName } from '../network/vpn-clients.js';

export const DEFAULT_USER_VPN_PORT = 1194;

export interface VpnClientHostConfig {
  readonly host: string;
  readonly remote: string;
  readonly port: number;
  /** The device's address behind this host. */
  readonly address: string;
  /** The .ovpn text (no key). */
  readonly config: string;
}

export interface VpnClientConfig {
  readonly user: string;
  readonly device: string;
  readonly commonName: string;
  /** Key and request made on the device; the key never leaves it. */
  readonly opensslCommand: string[];
  /** False until the cluster CA's certificate is published (pki/ca.crt). */
  readonly caPublished: boolean;
  /** The device's certificate is known (signed by the CA host, or given): the configs carry it inline. */
  readonly certificatePublished: boolean;
  readonly hosts: VpnClientHostConfig[];
}

export function userVpnPort(model: Model): number {
  return model.settings.user_vpn?.port ?? DEFAULT_USER_VPN_PORT;
}

/** The file names the device keeps its key, request and certificate in (in the .ovpn's directory). */
export function deviceFiles(commonName: string): { key: string; csr: string; cert: string } {
  return { key: `${commonName}.key`, csr: `${commonName}.csr`, cert: `${commonName}.crt` };
}

export function opensslRequestCommand(commonName: string): string[] {
  const files = deviceFiles(commonName);
  return [
    'openssl',
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    files.key,
    '-subj',
    `/CN=${commonName}`,
    '-out',
    files.csr,
  ];
}

export function findVpnClient(model: Model, user: string, device: string): VpnClient {
  if (!Object.hasOwn(model.users, user)) throw new UserError(`unknown user "${user}"`);
  const client = model.users[user]?.vpn_clients?.find((c) => c.device === device);
  if (!client) throw new UserError(`${user} has no VPN client "${device}" (add it with "sc add-vpn-client ${user} ${device}")`);
  return client;
}

/** The hosts where `user` has containers, in name order. */
export function userContainerHosts(model: Model, user: string): string[] {
  return [
    ...new Set(
      Object.values(model.containers)
        .filter((c) => c.user === user)
        .map((c) => c.host),
    ),
  ].sort();
}

function inlineBlock(tag: string, pem: string): string[] {
  return [`<${tag}>`, ...pem.trim().split('\n'), `</${tag}>`];
}

/**
 * The configs of USER's DEVICE; `caCert` is the published pki/ca.crt (undefined while there is none),
 * `issued` the device's certificate the CA host published (pki/clients), already checked to fit the device.
 */
export function vpnClientConfig(model: Model, user: string, device: string, caCert: string | undefined, issued?: string): VpnClientConfig {
  const client = findVpnClient(model, user, device);
  const certificate = client.certificate ?? issued;
  const commonName = vpnClientCommonName(user, device);
  const files = deviceFiles(commonName);
  const port = userVpnPort(model);
  const hosts: VpnClientHostConfig[] = [];
  for (const name of userContainerHosts(model, user)) {
    const ref = findHost(model, name);
    if (!ref) continue; // the datastore's cross-checks refuse a container on an unknown host
    const net = resolveUserNet(model.users, user, ref.host.hostnet);
    if ('problem' in net) throw new UserError(`cannot place ${user}'s /24 on ${name}: ${net.problem}`);
    const address = vpnClientAddress(net, client.host_part);
    const lines = [
      `# srvctl user VPN: ${commonName} through ${name} (address ${address})`,
      `# Key and request, made on this device (the key never leaves it): ${opensslRequestCommand(commonName).join(' ')}`,
      'client',
      'dev tun',
      'proto udp',
      `remote ${ref.host.host_ip} ${port}`,
      'nobind',
      'persist-key',
      'persist-tun',
      'remote-cert-tls server',
      `verify-x509-name ${name} name`,
      'data-ciphers AES-256-GCM:CHACHA20-POLY1305',
      'auth-nocache',
      'verb 3',
      ...(caCert !== undefined
        ? inlineBlock('ca', caCert)
        : ['# the cluster CA certificate is not published yet (pki/ca.crt): run sc apply on the CA host, then sc vpn-config again', 'ca ca.crt']),
      ...(certificate !== undefined
        ? inlineBlock('cert', certificate)
        : [
            `# the certificate is not signed yet: the CA host signs the request on its next sc apply, then sc vpn-config again`,
            `cert ${files.cert}`,
          ]),
      `key ${files.key}`,
    ];
    hosts.push({ host: name, remote: ref.host.host_ip, port, address, config: `${lines.join('\n')}\n` });
  }
  return {
    user,
    device,
    commonName,
    opensslCommand: opensslRequestCommand(commonName),
    caPublished: caCert !== undefined,
    certificatePublished: certificate !== undefined,
    hosts,
  };
}

/** The text `sc vpn-config` prints: the openssl command, then one config per host. */
export function renderVpnClientConfig(result: VpnClientConfig): string {
  const { user, device, commonName } = result;
  const files = deviceFiles(commonName);
  const out = [
    `# ${commonName}: make the key and the certificate request on the device itself (the key stays there):`,
    `#   ${result.opensslCommand.join(' ')}`,
    `# then give the request (never the key) to the administrator: sc add-vpn-client ${user} ${device} --csr ${files.csr}`,
  ];
  if (result.hosts.length === 0) {
    out.push(`# ${user} has no containers yet, so no host serves this device.`);
    return `${out.join('\n')}\n`;
  }
  out.push(`# One configuration per host of ${user}'s containers; save one as ${commonName}.ovpn next to ${files.key}.`);
  for (const host of result.hosts) out.push('', `### ${host.host}.ovpn`, host.config.trimEnd());
  return `${out.join('\n')}\n`;
}

/** First line of a device profile sc wrote with the device's key inline (add-vpn-client --out). */
export const DEVICE_PROFILE_MARK = '# srvctl device profile';

const KEY_BLOCK = /<key>\n(-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----)\n<\/key>/;

/**
 * The ready `.ovpn` of a device: the config of one host with the key inline instead of the key file
 * line. Without a host (the user has no containers yet) only the mark, a note and the key.
 */
export function deviceProfile(result: VpnClientConfig, keyPem: string): { text: string; host?: string } {
  const host = result.hosts[0];
  const others = result.hosts.slice(1).map((h) => h.host);
  const head = [
    `${DEVICE_PROFILE_MARK} ${result.commonName}: holds the device's private key; keep it on the device only (mode 0600)`,
    ...(!result.certificatePublished || !result.caPublished
      ? [
          `# NOT READY: the certificate is not signed yet. After the CA host's next sc apply run: sc vpn-config ${result.user} ${result.device} --update FILE`,
        ]
      : []),
    ...(others.length > 0
      ? [`# other hosts of ${result.user}'s containers: ${others.join(', ')} (sc vpn-config ${result.user} ${result.device})`]
      : []),
  ];
  const key = inlineBlock('key', keyPem);
  if (!host) return { text: `${[...head, `# ${result.user} has no containers yet: no host serves this device.`, ...key].join('\n')}\n` };
  const lines = host.config.trimEnd().split('\n');
  const keyLine = lines.findIndex((l) => l.startsWith('key '));
  const body = keyLine >= 0 ? [...lines.slice(0, keyLine), ...key, ...lines.slice(keyLine + 1)] : [...lines, ...key];
  return { text: `${[...head, ...body].join('\n')}\n`, host: host.host };
}

/** The private key inline in a device profile sc wrote, or undefined when the text has none. */
export function deviceProfileKey(text: string): string | undefined {
  if (!text.startsWith(DEVICE_PROFILE_MARK)) return undefined;
  const match = KEY_BLOCK.exec(text);
  return match ? `${match[1] as string}\n` : undefined;
}
