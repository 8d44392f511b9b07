// The cluster PKI as resources (SPEC §5, issue 7): every host's own key (never leaves it) and its
// certificate, obtained GitOps-style through the datastore's pki/ dir; on the `ca: true` host also
// the CA (key kept local, certificate published) and the signing of the cluster's pending requests.
import type { X509Certificate } from 'node:crypto';
import type { Model } from '../datastore/model.js';
import type { Drivers } from '../drivers/types.js';
import { ScError, UserError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import type { DesiredObject, ObjectRef, ObservedObject, ObserveContext, ResourceHandler } from './contract.js';
import { clientMaterials, clientSigningState, signClients, type ClientMaterial } from './pki-clients.js';
import {
  CA_CERT_FILE,
  CA_CERT_PATH,
  CA_KEY_PATH,
  HOST_CERT_PATH,
  HOST_KEY_PATH,
  certFile,
  commonNameOf,
  datastorePki,
  issuedBy,
  localPki,
  parseCertificate,
  parsePrivateKey,
  publicKeyPem,
  renewDue,
  requestFile,
} from './pki-files.js';

export const PKI_KIND = 'pki';
export const HOST_CERT_REF: ObjectRef = { kind: PKI_KIND, id: 'host-cert' };
const HOST_KEY_REF: ObjectRef = { kind: PKI_KIND, id: 'host-key' };
const CA_REF: ObjectRef = { kind: PKI_KIND, id: 'ca' };
const SIGNING_REF: ObjectRef = { kind: PKI_KIND, id: 'signing' };
/** CA host only: the user VPN devices' certificates and the CRL. */
export const CLIENTS_REF: ObjectRef = { kind: PKI_KIND, id: 'clients' };

export const HOST_CERT_DAYS = 825;
export const CA_CERT_DAYS = 3650;
const COMMAND = 'sc apply (cluster PKI)';

/** One spec shape for the four PKI objects; each uses the fields that describe it. */
export interface PkiSpec {
  /** host-key: the key is an EC P-256 key, with this file mode. */
  readonly key?: 'ec-p256' | 'unusable';
  readonly mode?: string;
  /** host-cert, ca: the certificate's subject CN. */
  readonly subject?: string;
  /** host-cert, ca: the certificate belongs to the local key. */
  readonly matchesKey?: boolean;
  /** host-cert: issued by the cluster CA of the datastore, whose certificate is installed here. */
  readonly currentCa?: boolean;
  /** host-cert, ca: expires within the renewal window. */
  readonly renewDue?: boolean;
  /** ca: the CA certificate is the one published in the datastore. */
  readonly published?: boolean;
  /** signing: cluster hosts whose request waits for a (new) certificate. */
  readonly pending?: readonly string[];
  /** signing, observed only: requests refused (wrong name, bad signature), with the reason. */
  readonly refused?: readonly string[];
  /** host-cert and signing on the CA host, desired only: the cluster's hosts, whose requests it signs. */
  readonly members?: readonly string[];
  /** clients: published device certificates to revoke (their device is gone or has a new key). */
  readonly revoke?: readonly string[];
  /** clients: the published CRL is signed by the CA and not near its nextUpdate. */
  readonly crl?: 'current' | 'stale' | 'absent';
  /** clients, desired only: every device's public material, by certificate name. */
  readonly devices?: Readonly<Record<string, ClientMaterial>>;
}

/**
 * Whether this host takes part in the cluster VPN: it has peers to tunnel to, and the cluster has a
 * CA host to certify them. A cluster without `ca: true` gets no PKI and no tunnels.
 */
export function needsClusterPki(model: Model, host: HostContext): boolean {
  const members = Object.keys(model.clusters[host.cluster] ?? {});
  return members.some((h) => h !== host.name) && caHostOf(model, host.cluster) !== undefined;
}

/** The host has published its request; the CA host's next apply signs it. Dependents wait. */
export class PendingSignatureError extends ScError {}

export const caCommonName = (cluster: string): string => `srvctl cluster CA ${cluster}`;

function caHostOf(model: Model, cluster: string): string | undefined {
  return Object.entries(model.clusters[cluster] ?? {}).find(([, h]) => h.ca === true)?.[0];
}

interface CertFacts {
  readonly cert: X509Certificate;
  readonly spec: PkiSpec;
}

/** What a host certificate is, judged against the key it should belong to and the datastore's CA. */
function judgeHostCert(certPem: string | undefined, keyPem: string | undefined, ca: X509Certificate | undefined, now: Date): CertFacts | undefined {
  const cert = parseCertificate(certPem);
  if (!cert) return undefined;
  const key = parsePrivateKey(keyPem);
  let matchesKey = false;
  try {
    matchesKey = key !== undefined && cert.checkPrivateKey(key);
  } catch {
    matchesKey = false;
  }
  return {
    cert,
    spec: { subject: commonNameOf(cert) ?? '', matchesKey, currentCa: issuedBy(cert, ca), renewDue: renewDue(cert, now) },
  };
}

const certIsGood = (spec: PkiSpec, fqdn: string): boolean =>
  spec.subject === fqdn && spec.matchesKey === true && spec.currentCa === true && spec.renewDue === false;

async function observeHostKey(drivers: Drivers): Promise<ObservedObject<PkiSpec> | undefined> {
  const local = localPki(drivers);
  const pem = await local.read(HOST_KEY_PATH);
  if (pem === undefined) return undefined;
  const key = parsePrivateKey(pem);
  const usable = key?.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  const mode = await local.mode(HOST_KEY_PATH);
  return {
    ref: HOST_KEY_REF,
    spec: { key: usable ? 'ec-p256' : 'unusable', mode: (mode ?? 0).toString(8).padStart(4, '0') },
    owned: true,
    description: local.path(HOST_KEY_PATH),
  };
}

async function observeHostCert(drivers: Drivers, host: HostContext): Promise<ObservedObject<PkiSpec> | undefined> {
  const local = localPki(drivers);
  const [certPem, keyPem, localCa, publishedCa] = await Promise.all([
    local.read(HOST_CERT_PATH),
    local.read(HOST_KEY_PATH),
    local.read(CA_CERT_PATH),
    datastorePki(host).read(CA_CERT_FILE),
  ]);
  const facts = judgeHostCert(certPem, keyPem, parseCertificate(publishedCa), new Date());
  if (!facts) return undefined;
  // The installed CA certificate must be the published one, or tunnels trust a stale CA.
  const currentCa = facts.spec.currentCa === true && localCa !== undefined && localCa === publishedCa;
  return {
    ref: HOST_CERT_REF,
    spec: { ...facts.spec, currentCa },
    owned: true,
    description: `expires ${facts.cert.validTo}`,
  };
}

async function observeCa(drivers: Drivers, host: HostContext, isCaHost: boolean): Promise<ObservedObject<PkiSpec> | undefined> {
  const local = localPki(drivers);
  const keyPem = await local.read(CA_KEY_PATH);
  if (keyPem === undefined) return undefined;
  const published = parseCertificate(await datastorePki(host).read(CA_CERT_FILE));
  const key = parsePrivateKey(keyPem);
  let matchesKey = false;
  try {
    matchesKey = published !== undefined && key !== undefined && published.checkPrivateKey(key);
  } catch {
    matchesKey = false;
  }
  return {
    ref: CA_REF,
    spec: {
      subject: published ? (commonNameOf(published) ?? '') : '',
      published: published !== undefined,
      matchesKey,
      renewDue: published ? renewDue(published, new Date()) : true,
    },
    // A CA key left from a former CA role is kept, never deleted: reported as not sc's to remove.
    owned: isCaHost,
    description: isCaHost ? `key ${local.path(CA_KEY_PATH)}` : `CA key of a former CA role at ${local.path(CA_KEY_PATH)}, kept`,
  };
}

/** The cluster hosts whose request needs a (new) certificate, and the requests refused. */
async function pendingRequests(drivers: Drivers, host: HostContext, clusterHosts: ReadonlySet<string>) {
  const store = datastorePki(host);
  const ca = parseCertificate(await store.read(CA_CERT_FILE));
  const pending: string[] = [];
  const refused: string[] = [];
  const requests: Record<string, string> = {};
  for (const fqdn of await store.requestHosts()) {
    if (!clusterHosts.has(fqdn)) continue; // not ours to sign: another cluster's, or a removed host's
    const request = await store.read(requestFile(fqdn));
    if (request === undefined) continue;
    let info;
    try {
      info = await drivers.openssl.describeRequest(request);
    } catch {
      refused.push(`${fqdn}: the request does not verify`);
      continue;
    }
    if (info.commonName !== fqdn) {
      refused.push(`${fqdn}: the request names ${info.commonName ?? 'no CN'}`);
      continue;
    }
    const cert = parseCertificate(await store.read(certFile(fqdn)));
    const current =
      cert !== undefined &&
      issuedBy(cert, ca) &&
      commonNameOf(cert) === fqdn &&
      !renewDue(cert, new Date()) &&
      cert.publicKey.export({ type: 'spki', format: 'pem' }).toString() === info.publicKey;
    if (!current) {
      pending.push(fqdn);
      requests[fqdn] = request;
    }
  }
  return { pending, refused, requests };
}

/** The cluster's hosts: the requests the CA host signs. */
const clusterMembers = (model: Model, host: HostContext): string[] => Object.keys(model.clusters[host.cluster] ?? {}).sort();

/** The members a desired CA-host object carries (the signing action gets no model). */
const membersOf = (want: DesiredObject<PkiSpec>): ReadonlySet<string> => new Set(want.spec.members ?? []);

/** Install the published certificate when it fits our key; else publish a request and wait. */
async function obtainHostCertificate(drivers: Drivers, host: HostContext, members: ReadonlySet<string>, signingOwn = false): Promise<void> {
  const local = localPki(drivers);
  const store = datastorePki(host);
  const keyPem = await local.read(HOST_KEY_PATH);
  const key = parsePrivateKey(keyPem);
  if (!key) throw new ScError(`no usable host key at ${local.path(HOST_KEY_PATH)}; the pki/host-key resource makes it`);
  const [publishedCa, publishedCert] = await Promise.all([store.read(CA_CERT_FILE), store.read(certFile(host.name))]);
  const facts = judgeHostCert(publishedCert, keyPem, parseCertificate(publishedCa), new Date());
  if (facts && publishedCa !== undefined && certIsGood(facts.spec, host.name)) {
    await local.write(CA_CERT_PATH, publishedCa);
    await local.write(HOST_CERT_PATH, publishedCert as string);
    return;
  }
  const published = await store.read(requestFile(host.name));
  let requestFits = false;
  if (published !== undefined) {
    try {
      const info = await drivers.openssl.describeRequest(published);
      requestFits = info.commonName === host.name && info.publicKey === publicKeyPem(key);
    } catch {
      requestFits = false;
    }
  }
  if (!requestFits) {
    const request = await drivers.openssl.createRequest(local.path(HOST_KEY_PATH), host.name);
    await store.publish({ [requestFile(host.name)]: request }, COMMAND);
  }
  // The CA host signs its own request at once (its CA and signing objects are done before this one).
  if (host.host.ca === true && !signingOwn) {
    await signPending(drivers, host, members);
    return obtainHostCertificate(drivers, host, members, true);
  }
  // A request the CA host could already see: its pass may be signing it right now (hosts' timers
  // fire together). Wait for the signature when the exchange waits, rather than a whole pass. Only a
  // certificate for our key, issued by the CA of the revision in force, is taken.
  if (requestFits && publishedCa !== undefined && store.awaitPublished !== undefined) {
    const ca = parseCertificate(publishedCa);
    const good = (pem: string) => {
      const signed = judgeHostCert(pem, keyPem, ca, new Date());
      return signed !== undefined && certIsGood(signed.spec, host.name);
    };
    const cert = await store.awaitPublished(certFile(host.name), good);
    if (cert !== undefined) {
      await local.write(CA_CERT_PATH, publishedCa);
      await local.write(HOST_CERT_PATH, cert);
      return;
    }
  }
  const caHost = host.host.ca === true ? 'this host' : 'the CA host of the cluster';
  const where = datastorePki(host).where;
  throw new PendingSignatureError(
    `waiting for a certificate: the request is published at ${requestFile(host.name)} ${where}; ${caHost} signs it on its next sc apply`,
  );
}

async function ensureCa(drivers: Drivers, host: HostContext): Promise<void> {
  const local = localPki(drivers);
  if (parsePrivateKey(await local.read(CA_KEY_PATH)) === undefined) {
    if ((await local.read(CA_KEY_PATH)) !== undefined) {
      throw new ScError(`${local.path(CA_KEY_PATH)} is not a usable key; sc never replaces a CA key: move it away to start a new CA`);
    }
    await local.write(CA_KEY_PATH, await drivers.openssl.generateKey(), { secret: true });
  }
  const observed = await observeCa(drivers, host, true);
  if (observed && observed.spec.matchesKey && !observed.spec.renewDue && observed.spec.subject === caCommonName(host.cluster)) return;
  const cert = await drivers.openssl.createCaCertificate(local.path(CA_KEY_PATH), caCommonName(host.cluster), CA_CERT_DAYS);
  await datastorePki(host).publish({ [CA_CERT_FILE]: cert }, COMMAND);
}

/** openssl processes signing at once: a farm's first requests (14 at 15 hosts) arrive together. */
const SIGNING_CONCURRENCY = 4;

async function signPending(drivers: Drivers, host: HostContext, members: ReadonlySet<string>): Promise<void> {
  const { pending, requests } = await pendingRequests(drivers, host, members);
  if (pending.length === 0) return;
  const local = localPki(drivers);
  const caCertPath = await installedCaCertPath(drivers, host);
  const certs: string[] = [];
  let next = 0;
  const signer = async (): Promise<void> => {
    while (next < pending.length) {
      const i = next++;
      certs[i] = await drivers.openssl.signRequest({
        request: requests[pending[i] as string] as string,
        caCertPath,
        caKeyPath: local.path(CA_KEY_PATH),
        days: HOST_CERT_DAYS,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(SIGNING_CONCURRENCY, pending.length) }, signer));
  // One commit for all of them, in the order of the pending list.
  const issued = Object.fromEntries(pending.map((fqdn, i) => [certFile(fqdn), certs[i] as string]));
  await datastorePki(host).publish(issued, COMMAND);
}

/** openssl signs with the CA certificate from a file: the published one, copied next to the CA key. */
async function installedCaCertPath(drivers: Drivers, host: HostContext): Promise<string> {
  const local = localPki(drivers);
  const published = await datastorePki(host).read(CA_CERT_FILE);
  if (published === undefined) throw new ScError('the cluster CA certificate is not published yet; pki/ca makes it');
  const issuerCopy = '/etc/srvctl/pki/ca-issuer.crt';
  await local.write(issuerCopy, published);
  return local.path(issuerCopy);
}

export const pkiHandler = {
  kind: PKI_KIND,

  desired(model: Model, host: HostContext): DesiredObject<PkiSpec>[] {
    // A host alone in its cluster has no tunnels, so nothing needs a certificate.
    if (!needsClusterPki(model, host)) return [];
    const isCa = host.host.ca === true;
    const members = isCa ? { members: clusterMembers(model, host) } : {};
    const caHost = caHostOf(model, host.cluster);
    const objects: DesiredObject<PkiSpec>[] = [
      { ref: HOST_KEY_REF, spec: { key: 'ec-p256', mode: '0600' }, description: "this host's private key (never leaves it)" },
      {
        ref: HOST_CERT_REF,
        spec: { subject: host.name, matchesKey: true, currentCa: true, renewDue: false, ...members },
        dependsOn: isCa ? [HOST_KEY_REF, CA_REF, SIGNING_REF] : [HOST_KEY_REF],
        description: caHost ? `signed by the cluster CA on ${caHost}` : `no host of cluster ${host.cluster} has ca: true`,
      },
    ];
    if (isCa) {
      objects.push(
        {
          ref: CA_REF,
          spec: { subject: caCommonName(host.cluster), published: true, matchesKey: true, renewDue: false },
          description: `cluster ${host.cluster}`,
        },
        { ref: SIGNING_REF, spec: { pending: [], ...members }, dependsOn: [CA_REF], description: `requests of cluster ${host.cluster}` },
        {
          ref: CLIENTS_REF,
          spec: { pending: [], revoke: [], crl: 'current', devices: clientMaterials(model) },
          dependsOn: [CA_REF],
          description: 'user VPN device certificates and the CRL',
        },
      );
    }
    return objects;
  },

  async observe(drivers: Drivers, host: HostContext, { model, desired }: ObserveContext<PkiSpec>): Promise<ObservedObject<PkiSpec>[]> {
    if (desired.length === 0) return []; // this host needs no PKI
    const isCa = host.host.ca === true;
    const [key, cert, ca] = await Promise.all([observeHostKey(drivers), observeHostCert(drivers, host), observeCa(drivers, host, isCa)]);
    const observed = [key, cert, ca].filter((o): o is ObservedObject<PkiSpec> => o !== undefined);
    if (isCa) {
      const { pending, refused } = await pendingRequests(drivers, host, new Set(clusterMembers(model, host)));
      observed.push({
        ref: SIGNING_REF,
        spec: { pending, refused },
        owned: true,
        description: refused.length ? `refused: ${refused.join('; ')}` : `requests of cluster ${host.cluster}`,
      });
      const devices = desired.find((d) => d.ref.id === CLIENTS_REF.id)?.spec.devices ?? {};
      const clients = await clientSigningState(drivers, host, devices);
      observed.push({
        ref: CLIENTS_REF,
        spec: { pending: clients.pending, revoke: clients.revoke, crl: clients.crl, refused: clients.refused },
        owned: true,
        description: clients.refused.length ? `refused: ${clients.refused.join('; ')}` : 'user VPN device certificates and the CRL',
      });
    }
    return observed;
  },

  normalize(spec: PkiSpec): Omit<PkiSpec, 'refused' | 'members' | 'devices'> {
    const { refused: _refused, members: _members, devices: _devices, ...compared } = spec;
    return compared;
  },

  // A key with the wrong mode is fixed in place; everything else is obtained afresh by create().
  canUpdate: () => true,

  async create(drivers: Drivers, host: HostContext, want: DesiredObject<PkiSpec>): Promise<void> {
    const local = localPki(drivers);
    switch (want.ref.id) {
      case HOST_KEY_REF.id: {
        const existing = await observeHostKey(drivers);
        if (existing?.spec.key === 'ec-p256') {
          await local.chmod(HOST_KEY_PATH, 0o600);
          return;
        }
        await local.write(HOST_KEY_PATH, await drivers.openssl.generateKey(), { secret: true });
        return;
      }
      case HOST_CERT_REF.id:
        return obtainHostCertificate(drivers, host, membersOf(want));
      case CA_REF.id:
        return ensureCa(drivers, host);
      case SIGNING_REF.id:
        return signPending(drivers, host, membersOf(want));
      case CLIENTS_REF.id:
        return signClients(drivers, host, want.spec.devices ?? {}, COMMAND);
      default:
        throw new UserError(`unknown pki object ${want.ref.id}`);
    }
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<PkiSpec>): Promise<void> {
    return pkiHandler.create(drivers, host, want);
  },

  // The PKI is never torn down by sc: keys and certificates outlive a changed datastore.
  async delete(): Promise<void> {},
} satisfies ResourceHandler<PkiSpec>;
