// The user-vpn resource (issue 18): one OpenVPN TLS server per host, `user-vpn/server`, for the
// devices of the users with containers here (user-vpn-config.ts renders it all). Its spec is the
// config's digest and whether it runs with the certificates installed now, the client-config-dir
// files by certificate name, the sc-owned nftables filter (checked against what nft reports since
// sc loaded it: a rule deleted or added by hand is a change) and proxy ARP on the users' bridges
// (the containers reach a device's address, which lies in their own /24, through the host).
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Model } from '../datastore/model.js';
import { OPENVPN_CONFIG_DIR, OPENVPN_RUN_DIR, tunnelFiles, type OpenvpnDriver } from '../drivers/openvpn.js';
import type { Drivers } from '../drivers/types.js';
import { ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { BRIDGE_KIND } from './bridge.js';
import type { DesiredObject, ObservedObject, ObserveContext, ResourceHandler } from './contract.js';
import { CA_CERT_PATH, CRL_FILE, CRL_PATH, HOST_CERT_PATH, HOST_KEY_PATH } from './pki-files.js';
import { CLIENTS_REF, HOST_CERT_REF, PKI_KIND, PendingSignatureError, needsClusterPki } from './pki.js';
import {
  parseUserVpnStatus,
  renderClientConfigFile,
  type ConnectedClient,
  renderUserVpnFilter,
  renderUserVpnServerConfig,
  textDigest,
  userVpnDevice,
  userVpnPlan,
  USER_VPN_TABLE,
} from './user-vpn-config.js';
import { credentialsDigest } from './vpn-link.js';

export const USER_VPN_KIND = 'user-vpn';
export const USER_VPN_ID = 'server';

export interface UserVpnSpec {
  readonly device: string;
  /** Digest of the server config. */
  readonly config: string;
  readonly running: boolean;
  /** `current`: started with the certificates installed now; `stale`: they changed since (renewal). */
  readonly credentials: 'current' | 'stale';
  /** Client-config-dir files: certificate name → digest of the file. */
  readonly clients: Readonly<Record<string, string>>;
  /** Digest of the filter sc loaded, while nft still shows it as loaded; `changed` or `absent` otherwise. */
  readonly filter: string;
  /** The bridges (of the desired ones) with proxy ARP on. */
  readonly proxyArp: readonly string[];
  /** The CRL installed here is the one the CA published (`absent`: none installed). */
  readonly crl: 'current' | 'stale' | 'absent';
  /** Devices connected now (the management socket says) that may no longer connect: their sessions are dropped. */
  readonly strays: readonly string[];
  /** Observed only (status, never compared): the devices connected now, from the server's status file. */
  readonly connected?: readonly ConnectedClient[];
  /** Desired only: what to write. */
  readonly configText?: string;
  readonly clientTexts?: Readonly<Record<string, string>>;
  readonly filterText?: string;
}

const ccdDir = (device: string): string => `${OPENVPN_CONFIG_DIR}/${device}.ccd`;
/** What sc loaded into the filter table: `<script digest> <digest of nft's listing right after>`. */
const filterRecord = (device: string): string => `${OPENVPN_RUN_DIR}/${device}.filter`;
const credentialsRecord = (device: string): string => `${OPENVPN_RUN_DIR}/${device}.credentials`;
const proxyArpKey = (bridge: string): string => `net.ipv4.conf.${bridge}.proxy_arp`;

function openvpnOf(drivers: Drivers): OpenvpnDriver {
  if (!drivers.openvpn) throw new ScError('this driver set has no openvpn driver');
  return drivers.openvpn;
}

async function filterListingDigest(drivers: Drivers): Promise<string | undefined> {
  const table = await drivers.nft.listTable(USER_VPN_TABLE.family, USER_VPN_TABLE.name);
  return table === undefined ? undefined : textDigest(JSON.stringify(table));
}

const sorted = <T>(record: Record<string, T>): Record<string, T> =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** The devices connected to the server now: its management socket (live), else its status file (≤ 10 s old). */
async function connectedNow(drivers: Drivers, device: string): Promise<ConnectedClient[]> {
  try {
    return parseUserVpnStatus((await openvpnOf(drivers).manage(device, 'status 2')).join('\n'));
  } catch {
    const text = await drivers.files.read(tunnelFiles(device).status).catch(() => undefined);
    return text !== undefined ? parseUserVpnStatus(text) : [];
  }
}

function crlState(installed: string | undefined, published: string | undefined): UserVpnSpec['crl'] {
  if (installed === undefined) return 'absent';
  return published === undefined || installed === published ? 'current' : 'stale';
}

export const userVpnHandler = {
  kind: USER_VPN_KIND,
  dependsOnKinds: [PKI_KIND, BRIDGE_KIND],

  desired(model: Model, host: HostContext): DesiredObject<UserVpnSpec>[] {
    if (!needsClusterPki(model, host)) return [];
    const plan = userVpnPlan(model, host);
    if (!plan) return [];
    const root = path.resolve(host.root);
    const at = (p: string) => path.join(root, p);
    const files = tunnelFiles(plan.device);
    const configText = renderUserVpnServerConfig(plan, host, {
      caCert: at(CA_CERT_PATH),
      cert: at(HOST_CERT_PATH),
      key: at(HOST_KEY_PATH),
      crl: at(CRL_PATH),
      ccdDir: at(ccdDir(plan.device)),
      management: at(files.management),
      pid: at(files.pid),
      status: at(files.status),
      log: at(files.log),
    });
    const clientTexts = sorted(Object.fromEntries(plan.clients.map((c) => [c.commonName, renderClientConfigFile(c, host)])));
    const filterText = renderUserVpnFilter(plan);
    return [
      {
        ref: { kind: USER_VPN_KIND, id: USER_VPN_ID },
        spec: {
          device: plan.device,
          config: textDigest(configText),
          running: true,
          credentials: 'current',
          clients: Object.fromEntries(Object.entries(clientTexts).map(([cn, text]) => [cn, textDigest(text)])),
          filter: textDigest(filterText),
          proxyArp: plan.bridges,
          crl: 'current',
          strays: [],
          configText,
          clientTexts,
          filterText,
        },
        // On the CA host the CRL is brought up to date first (a removed device is revoked before its session is dropped).
        dependsOn: [HOST_CERT_REF, ...(host.host.ca === true ? [CLIENTS_REF] : []), ...plan.bridges.map((id) => ({ kind: BRIDGE_KIND, id }))],
        description: `${plan.device} udp ${plan.port}: ${plan.clients.map((c) => `${c.commonName} ${c.address}`).join(', ')}`,
      },
    ];
  },

  async observe(drivers: Drivers, host: HostContext, context: ObserveContext<UserVpnSpec>): Promise<ObservedObject<UserVpnSpec>[]> {
    const want = context.desired[0]?.spec;
    const [tunnels, listing, current] = await Promise.all([openvpnOf(drivers).list(), filterListingDigest(drivers), credentialsDigest(drivers)]);
    const server = tunnels.find((t) => t.userVpn === true);
    const device = server?.device ?? want?.device ?? userVpnDevice(host.host.hostnet);
    const entries = (await drivers.files.list(ccdDir(device))) ?? [];
    if (!server && listing === undefined && entries.length === 0) return [];
    const clients: Record<string, string> = {};
    for (const e of entries.filter((x) => x.type === 'file')) {
      clients[e.name] = textDigest((await drivers.files.read(`${ccdDir(device)}/${e.name}`)) ?? '');
    }
    const [loadedScript, loadedListing] = ((await drivers.files.read(filterRecord(device)).catch(() => undefined)) ?? '').trim().split(' ');
    const filter = listing === undefined ? 'absent' : listing === loadedListing && loadedScript ? loadedScript : 'changed';
    const proxyArp: string[] = [];
    for (const bridge of want?.proxyArp ?? []) {
      const value = await drivers.sysctl.read(proxyArpKey(bridge)).catch(() => '0');
      if (value === '1') proxyArp.push(bridge);
    }
    const running = server?.running === true;
    const started = running ? (await drivers.files.read(credentialsRecord(device)).catch(() => undefined))?.trim() : undefined;
    const connected = running ? await connectedNow(drivers, device) : [];
    const allowed = new Set(Object.keys(want?.clients ?? {}));
    const [installedCrl, publishedCrl] = await Promise.all([
      drivers.files.read(CRL_PATH).catch(() => undefined),
      host.pki?.read(CRL_FILE).catch(() => undefined),
    ]);
    return [
      {
        ref: { kind: USER_VPN_KIND, id: USER_VPN_ID },
        spec: {
          device,
          config: server ? textDigest(server.configText) : 'absent',
          running,
          credentials: !running || started === current ? 'current' : 'stale',
          clients: sorted(clients),
          filter,
          proxyArp,
          crl: crlState(installedCrl, publishedCrl),
          strays: [...new Set(connected.map((c) => c.common_name).filter((cn) => !allowed.has(cn)))].sort(),
          connected,
        },
        owned: true,
        description: `${device}${running ? ' running' : ' stopped'}, ${Object.keys(clients).length} client(s)`,
      },
    ];
  },

  normalize(spec: UserVpnSpec) {
    return {
      device: spec.device,
      config: spec.config,
      running: spec.running,
      credentials: spec.credentials,
      clients: spec.clients,
      filter: spec.filter,
      proxyArp: spec.proxyArp,
      crl: spec.crl,
      strays: spec.strays,
    };
  },

  canUpdate: () => true,

  async create(drivers: Drivers, host: HostContext, want: DesiredObject<UserVpnSpec>): Promise<void> {
    const { device, configText, clientTexts, filterText } = want.spec;
    if (configText === undefined || clientTexts === undefined || filterText === undefined)
      throw new ScError(`user-vpn/${want.ref.id} has nothing to write`);
    const openvpn = openvpnOf(drivers);
    // The filter first: the server never runs without it.
    await drivers.nft.load(filterText);
    await drivers.files.write(filterRecord(device), `${textDigest(filterText)} ${(await filterListingDigest(drivers)) ?? ''}\n`);
    await drivers.files.mkdir(ccdDir(device));
    for (const [cn, text] of Object.entries(clientTexts)) await drivers.files.write(`${ccdDir(device)}/${cn}`, text);
    for (const e of (await drivers.files.list(ccdDir(device))) ?? []) {
      if (!Object.hasOwn(clientTexts, e.name)) await drivers.files.remove(`${ccdDir(device)}/${e.name}`);
    }
    for (const bridge of want.spec.proxyArp) await drivers.sysctl.write(proxyArpKey(bridge), '1');
    // The CRL: openvpn re-reads the file when it changed, at the next connection; never a restart.
    const published = await host.pki?.read(CRL_FILE);
    if (published !== undefined && (await drivers.files.read(CRL_PATH)) !== published) await drivers.files.write(CRL_PATH, published);
    if ((await drivers.files.read(CRL_PATH)) === undefined) {
      throw new PendingSignatureError(
        `waiting for the cluster's CRL (${CRL_FILE}): the CA host publishes it on its next sc apply; the user VPN server starts after it`,
      );
    }
    // Client files and the CRL are read at each connection: only a changed config or certificate restarts the server.
    const list = await openvpn.list();
    const server = list.find((t) => t.userVpn === true && t.device === device);
    const changed = await openvpn.writeConfig(device, configText);
    const credentials = await credentialsDigest(drivers);
    const started = (await drivers.files.read(credentialsRecord(device)).catch(() => undefined))?.trim();
    if (changed || server?.running !== true || started !== credentials) {
      await openvpn.start(device, 'server');
      await drivers.files.write(credentialsRecord(device), `${credentials}\n`);
      return;
    }
    // A removed device's live session: dropped by name (`kill CN`), the other devices stay connected.
    const strays = async () => (await connectedNow(drivers, device)).map((c) => c.common_name).filter((cn) => !Object.hasOwn(clientTexts, cn));
    const dropped = await strays();
    if (dropped.length === 0) return;
    for (const cn of new Set(dropped)) await openvpn.manage(device, `kill ${cn}`);
    // openvpn closes a killed instance on its next event-loop turn: wait for it (briefly) so the next diff sees it gone.
    for (let i = 0; i < 20 && (await strays()).length > 0; i += 1) await sleep(100);
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<UserVpnSpec>, have: ObservedObject<UserVpnSpec>): Promise<void> {
    if (have.spec.device !== want.spec.device) await userVpnHandler.delete(drivers, host, have);
    await userVpnHandler.create(drivers, host, want);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<UserVpnSpec>): Promise<void> {
    const { device } = have.spec;
    await openvpnOf(drivers).remove(device, 'server');
    const { family, name } = USER_VPN_TABLE;
    await drivers.nft.load(`table ${family} ${name}\ndelete table ${family} ${name}\n`);
    for (const e of (await drivers.files.list(ccdDir(device))) ?? []) await drivers.files.remove(`${ccdDir(device)}/${e.name}`);
    await drivers.files.remove(filterRecord(device));
    await drivers.files.remove(credentialsRecord(device));
  },
} satisfies ResourceHandler<UserVpnSpec>;
