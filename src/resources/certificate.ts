// The certificate resource (issue 14): `certificate/NAME` for every name the proxy answers. In sync
// when a usable certificate covers the name — the operator's PEM first, else one sc ordered by
// ACME (HTTP-01 through the proxy's own port 80) that is not due for renewal. Orders of one apply
// go to one ACME worker; each name succeeds or fails alone (a failure is recorded with a backoff
// and reported, the other names are stored and served). Keys stay on the host, 0600.
import { generateKeyPairSync } from 'node:crypto';
import type { Model } from '../datastore/model.js';
import type { AcmeDriver } from '../drivers/acme.js';
import type { Drivers } from '../drivers/types.js';
import { ScError } from '../errors.js';
import type { HostContext } from '../host-context.js';
import { backingOff, parseFailureRecord, recordFailure, renewalDue, type AcmeFailureRecord } from './acme-schedule.js';
import type { BatchOutcome, DesiredObject, ObserveContext, ObservedObject, PlannedAction, ResourceHandler } from './contract.js';
import { ACME_CERT_DIR, readCertificateInventory } from './proxy-certificates.js';
import { pickCertificate, routesFor } from './proxy-routes.js';
import { proxyInput, renderAndApplyProxy, REVERSE_PROXY_ID, REVERSE_PROXY_KIND, type ProxyInput } from './reverse-proxy.js';

export const CERTIFICATE_KIND = 'certificate';
export const ACME_DIR = '/var/lib/srvctl/acme';
export const ACME_ACCOUNT_KEY = `${ACME_DIR}/account.key`;
export const ACME_FAILURE_DIR = `${ACME_DIR}/failures`;
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
const DEFAULT_RENEW_DAYS = 30;

export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly contact?: string;
  /** Host path of a CA bundle to trust for the ACME server (a private or test CA). */
  readonly caFile?: string;
  readonly renewDays: number;
}

export interface CertificateSpec {
  readonly usable: boolean;
  readonly renewal: 'not-due' | 'due';
  /** Observed only, for status. */
  readonly source?: 'operator' | 'acme';
  readonly notAfter?: string;
  readonly lastError?: string;
  readonly retryAfter?: string;
  /** Desired only: how to order, and the proxy to refresh once stored. */
  readonly acme?: AcmeSettings;
  readonly proxy?: ProxyInput;
}

const certPath = (name: string): string => `${ACME_CERT_DIR}/${name}.pem`;
const failurePath = (name: string): string => `${ACME_FAILURE_DIR}/${name}.json`;

function acmeSettings(model: Model): AcmeSettings {
  const a = model.settings.proxy?.acme;
  return {
    directoryUrl: a?.directory_url ?? LETS_ENCRYPT_DIRECTORY,
    ...(a?.contact !== undefined ? { contact: a.contact } : {}),
    ...(a?.ca_file !== undefined ? { caFile: a.ca_file } : {}),
    renewDays: a?.renew_days ?? DEFAULT_RENEW_DAYS,
  };
}

function acmeOf(drivers: Drivers): AcmeDriver {
  if (!drivers.acme) throw new ScError('this driver set has no acme driver');
  return drivers.acme;
}

const newKey = (): string => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** The account key, made once on this host (0600) and never copied anywhere. */
async function accountKey(drivers: Drivers): Promise<string> {
  const existing = await drivers.files.read(ACME_ACCOUNT_KEY);
  if (existing !== undefined) return existing;
  const key = newKey();
  await drivers.files.write(ACME_ACCOUNT_KEY, key, { mode: 0o600, dirMode: 0o700 });
  return key;
}

const failureMessage = (name: string, record: AcmeFailureRecord): string =>
  `ACME order for ${name} failed ${record.failures} time${record.failures === 1 ? '' : 's'} (last: ${record.lastError}); next attempt after ${record.notBefore}`;

/**
 * Orders certificates for these names in one worker, stores each that arrives, records each
 * failure with its backoff, and refreshes the proxy once. Returns the names that failed.
 */
async function orderCertificates(drivers: Drivers, wants: readonly DesiredObject<CertificateSpec>[]): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  const now = new Date();
  const due: DesiredObject<CertificateSpec>[] = [];
  for (const want of wants) {
    const record = parseFailureRecord(await drivers.files.read(failurePath(want.ref.id)));
    if (backingOff(record, now)) failed.set(want.ref.id, failureMessage(want.ref.id, record as AcmeFailureRecord));
    else due.push(want);
  }
  const first = due[0];
  if (!first) return failed;
  const settings = first.spec.acme;
  if (!settings) throw new ScError(`${CERTIFICATE_KIND}/${first.ref.id} has no ACME settings`);
  const keys = new Map(due.map((w) => [w.ref.id, newKey()]));
  const outcomes = await acmeOf(drivers).issue(
    {
      directoryUrl: settings.directoryUrl,
      accountKey: await accountKey(drivers),
      ...(settings.contact !== undefined ? { contact: settings.contact } : {}),
      orders: due.map((w) => ({ name: w.ref.id, key: keys.get(w.ref.id) as string })),
    },
    settings.caFile !== undefined ? { caFile: drivers.files.hostPath(settings.caFile) } : {},
  );
  let stored = 0;
  for (const want of due) {
    const name = want.ref.id;
    const outcome = outcomes.find((o) => o.name === name);
    if (outcome?.certificate !== undefined) {
      await drivers.files.write(certPath(name), `${outcome.certificate.trimEnd()}\n${keys.get(name) as string}`, { mode: 0o600, dirMode: 0o700 });
      await drivers.files.remove(failurePath(name));
      stored += 1;
    } else {
      const previous = parseFailureRecord(await drivers.files.read(failurePath(name)));
      const record = recordFailure(previous, outcome?.error ?? 'the ACME worker gave no answer for this name', new Date());
      await drivers.files.write(failurePath(name), `${JSON.stringify(record)}\n`, { mode: 0o600, dirMode: 0o700 });
      failed.set(name, failureMessage(name, record));
    }
  }
  // Serve what arrived now, not on the next pass.
  const proxy = first.spec.proxy;
  if (stored > 0 && proxy) await renderAndApplyProxy(drivers, proxy);
  return failed;
}

export const certificateHandler = {
  kind: CERTIFICATE_KIND,
  dependsOnKinds: [REVERSE_PROXY_KIND],

  desired(model: Model, host: HostContext): DesiredObject<CertificateSpec>[] {
    const proxy = proxyInput(model, host);
    if (!proxy?.acme) return [];
    const acme = acmeSettings(model);
    return routesFor(proxy.sites, proxy.hostName, []).hostnames.map((h) => ({
      ref: { kind: CERTIFICATE_KIND, id: h.hostname },
      spec: { usable: true, renewal: 'not-due', acme, proxy },
      // The proxy must answer the challenge on port 80 before the CA asks.
      dependsOn: [{ kind: REVERSE_PROXY_KIND, id: REVERSE_PROXY_ID }],
      description: h.role === 'name' ? `certificate for ${h.hostname}` : `certificate for ${h.hostname} (${h.role} of ${h.site})`,
    }));
  },

  async observe(drivers: Drivers, _host: HostContext, { desired }: ObserveContext<CertificateSpec>): Promise<ObservedObject<CertificateSpec>[]> {
    const now = new Date();
    const { found } = await readCertificateInventory(drivers.files, now);
    const inventory = found.map((f) => f.info);
    const wanted = new Set(desired.map((d) => d.ref.id));
    const objects: ObservedObject<CertificateSpec>[] = [];
    for (const want of desired) {
      const name = want.ref.id;
      const cert = pickCertificate(name, inventory);
      const record = parseFailureRecord(await drivers.files.read(failurePath(name)));
      const failure = record ? { lastError: record.lastError, retryAfter: record.notBefore } : {};
      if (!cert) {
        // Nothing covers the name: only a failure record to show, and the order is due.
        if (record)
          objects.push({
            ref: want.ref,
            spec: { usable: false, renewal: 'due', ...failure },
            owned: true,
            description: failureMessage(name, record),
          });
        continue;
      }
      const renewDays = want.spec.acme?.renewDays ?? DEFAULT_RENEW_DAYS;
      const due = cert.source === 'acme' && renewalDue(cert.notAfter, now, renewDays);
      objects.push({
        ref: want.ref,
        spec: { usable: true, renewal: due ? 'due' : 'not-due', source: cert.source, notAfter: cert.notAfter, ...failure },
        owned: true,
        description: `${cert.source} certificate ${cert.path}, valid until ${cert.notAfter}`,
      });
    }
    // ACME certificates of names no longer served: sc's files, to remove.
    for (const f of found) {
      const name = f.info.path.slice(ACME_CERT_DIR.length + 1, -'.pem'.length);
      if (f.info.source !== 'acme' || wanted.has(name)) continue;
      objects.push({
        ref: { kind: CERTIFICATE_KIND, id: name },
        spec: { usable: f.info.usable, renewal: 'not-due', source: 'acme', notAfter: f.info.notAfter },
        owned: true,
        description: `ACME certificate ${f.info.path}`,
      });
    }
    return objects;
  },

  normalize(spec: CertificateSpec) {
    return { usable: spec.usable, renewal: spec.renewal };
  },

  canUpdate: () => true,

  async create(drivers: Drivers, _host: HostContext, want: DesiredObject<CertificateSpec>): Promise<void> {
    const failed = await orderCertificates(drivers, [want]);
    const message = failed.get(want.ref.id);
    if (message !== undefined) throw new ScError(message);
  },

  async update(drivers: Drivers, host: HostContext, want: DesiredObject<CertificateSpec>): Promise<void> {
    await certificateHandler.create(drivers, host, want);
  },

  async delete(drivers: Drivers, _host: HostContext, have: ObservedObject<CertificateSpec>): Promise<void> {
    // Only sc's own ACME files: an operator's PEM is never an observed object of its own.
    await drivers.files.remove(certPath(have.ref.id));
    await drivers.files.remove(failurePath(have.ref.id));
  },

  async applyBatch(drivers: Drivers, host: HostContext, actions: readonly PlannedAction<CertificateSpec>[]): Promise<BatchOutcome> {
    const orders = actions.filter((a) => (a.type === 'create' || a.type === 'update') && a.want).map((a) => a.want as DesiredObject<CertificateSpec>);
    const failed = new Set<string>();
    const failures = await orderCertificates(drivers, orders);
    for (const name of failures.keys()) failed.add(`${CERTIFICATE_KIND}/${name}`);
    for (const a of actions) {
      if (a.type === 'delete' && a.have) await certificateHandler.delete(drivers, host, a.have);
      else if (a.type !== 'create' && a.type !== 'update') failed.add(`${a.ref.kind}/${a.ref.id}`);
    }
    return { failed };
  },
} satisfies ResourceHandler<CertificateSpec>;
