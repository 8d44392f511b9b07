// The datastore commands of SPEC §4 (add-reseller, add-user, add-ve, destroy-ve, map-port,
// http/https-redirect): each allocates what it needs and goes through runDatastoreEdit.
import { UserError } from '../errors.js';
import { allocateContainerAddress } from '../network/address-plan.js';
import { resolveUserNet, ROOT_USERNAME } from '../network/user-network.js';
import {
  assertContainerName,
  assertContainerType,
  assertDisplayName,
  assertHostName,
  assertNewUserName,
  assertPort,
  assertRedirectValue,
  assertSshKey,
  assertUserName,
} from './edit-arguments.js';
import { runDatastoreEdit, type EditContext, type EditResult } from './edit-session.js';
import { chooseHostPort } from './host-port-choice.js';
import { isReseller, nextResellerId, nextUid, nextUserId } from './id-allocation.js';
import { findHost, type Container, type MappedPort, type Model } from './model.js';

export type { EditChange, EditContext, EditResult } from './edit-session.js';

function hasOwn<T extends object>(record: T, key: string): boolean {
  return Object.hasOwn(record, key);
}

function assertNewUser(model: Model, name: string): void {
  if (hasOwn(model.users, name)) throw new UserError(`user ${name} already exists`);
}

function existingContainer(model: Model, name: string): Readonly<Container> {
  const container = hasOwn(model.containers, name) ? model.containers[name] : undefined;
  if (!container) throw new UserError(`unknown container "${name}": it is not in the datastore`);
  return container;
}

function knownHosts(model: Model): string[] {
  return Object.values(model.clusters).flatMap((hosts) => Object.keys(hosts));
}

/** Adds a reseller: reseller_id lowest free 1–15, a user of root (user_id lowest free there), a new uid. */
export async function addReseller(ctx: EditContext, name: string, opts: { displayName?: string } = {}): Promise<EditResult> {
  assertNewUserName(name, 'reseller');
  if (opts.displayName !== undefined) assertDisplayName(opts.displayName);
  return runDatastoreEdit(ctx, { command: `add-reseller ${name}` }, (edit) => {
    const { users } = edit.model;
    assertNewUser(edit.model, name);
    const record = {
      ...(opts.displayName !== undefined ? { name: opts.displayName } : {}),
      reseller: ROOT_USERNAME,
      reseller_id: nextResellerId(users),
      user_id: nextUserId(users, ROOT_USERNAME),
      uid: nextUid(users),
    };
    edit.document('users').set([name], record);
    edit.record({ kind: 'users', key: name, action: 'add', value: record });
    return `added reseller ${name} (reseller_id ${record.reseller_id}, user_id ${record.user_id}, uid ${record.uid})`;
  });
}

/** Adds a user under a reseller (default root): user_id lowest free within that reseller, a new uid. */
export async function addUser(
  ctx: EditContext,
  name: string,
  opts: { reseller?: string; displayName?: string; sshKeys?: string[] } = {},
): Promise<EditResult> {
  const reseller = opts.reseller ?? ROOT_USERNAME;
  assertNewUserName(name);
  assertUserName(reseller, 'reseller');
  if (opts.displayName !== undefined) assertDisplayName(opts.displayName);
  const sshKeys = opts.sshKeys?.map(assertSshKey);
  return runDatastoreEdit(ctx, { command: `add-user ${name}` }, (edit) => {
    const { users } = edit.model;
    assertNewUser(edit.model, name);
    if (reseller !== ROOT_USERNAME && !hasOwn(users, reseller)) {
      throw new UserError(`unknown reseller "${reseller}": add it first with "sc add-reseller ${reseller}"`);
    }
    if (!isReseller(users, reseller)) {
      throw new UserError(`"${reseller}" is not a reseller (a reseller is a user of root with a reseller_id; see "sc add-reseller")`);
    }
    const record = {
      ...(opts.displayName !== undefined ? { name: opts.displayName } : {}),
      reseller,
      user_id: nextUserId(users, reseller),
      uid: nextUid(users),
      ...(sshKeys?.length ? { ssh_keys: sshKeys } : {}),
    };
    edit.document('users').set([name], record);
    edit.record({ kind: 'users', key: name, action: 'add', value: record });
    return `added user ${name} under reseller ${reseller} (user_id ${record.user_id}, uid ${record.uid})`;
  });
}

/** Adds a container; its ip is the lowest free in .20–.200 of the owner's /24 on its host. */
export async function addContainer(
  ctx: EditContext,
  name: string,
  opts: { user: string; host?: string; type?: string; enabled?: boolean },
): Promise<EditResult> {
  const host = opts.host ?? ctx.thisHost;
  const type = opts.type ?? 'debian';
  assertContainerName(name);
  assertUserName(opts.user);
  assertHostName(host);
  assertContainerType(type);
  return runDatastoreEdit(ctx, { command: `add-ve ${name}` }, (edit) => {
    const { model } = edit;
    if (hasOwn(model.containers, name)) throw new UserError(`container ${name} already exists`);
    const aliasOf = Object.entries(model.containers).find(([, c]) => c.aliases?.includes(name));
    if (aliasOf) throw new UserError(`${name} is already an alias of container ${aliasOf[0]}`);
    if (opts.user !== ROOT_USERNAME && !hasOwn(model.users, opts.user)) {
      throw new UserError(`unknown user "${opts.user}": add it first with "sc add-user ${opts.user}"`);
    }
    const hostRef = findHost(model, host);
    if (!hostRef) {
      const known = knownHosts(model);
      throw new UserError(
        `unknown host "${host}": it is not in clusters (${known.length ? `known hosts: ${known.join(', ')}` : 'no hosts defined'})`,
      );
    }
    const net = resolveUserNet(model.users, opts.user, hostRef.host.hostnet);
    if ('problem' in net) throw new UserError(`cannot place container ${name}: ${net.problem}`);
    const usedIps = Object.values(model.containers).flatMap((c) => (c.ip !== undefined ? [c.ip] : []));
    const record = {
      user: opts.user,
      host,
      type,
      ip: allocateContainerAddress(net, usedIps, opts.user),
      ...(opts.enabled !== undefined ? { enabled: opts.enabled } : {}),
    };
    edit.document('containers').set([name], record);
    edit.record({ kind: 'containers', key: name, action: 'add', value: record });
    return `added container ${name} on ${host} with ip ${record.ip}; run "sc apply" on ${host} to create it`;
  });
}

/** Removes the container's record only; the next `sc apply` on its host removes the machine. */
export async function destroyContainer(ctx: EditContext, name: string): Promise<EditResult> {
  assertContainerName(name);
  return runDatastoreEdit(ctx, { command: `destroy-ve ${name}` }, (edit) => {
    const container = existingContainer(edit.model, name);
    edit.document('containers').delete([name]);
    edit.record({ kind: 'containers', key: name, action: 'remove' });
    return `removed container ${name} from the datastore; the next "sc apply" on ${container.host} removes it there (its data in /srv/${name} is kept)`;
  });
}

/** Host ports already mapped on `host` for `proto`, with the mapping that holds each. */
function mappedHostPorts(model: Model, host: string, proto: 'tcp' | 'udp'): Map<number, string> {
  const used = new Map<number, string>();
  for (const [name, c] of Object.entries(model.containers)) {
    if (c.host !== host) continue;
    for (const mp of c.mapped_ports ?? []) {
      if (mp.proto === proto) used.set(mp.host_port, `${name}:${mp.container_port}`);
    }
  }
  return used;
}

/** Maps a host port to a container port; without `hostPort` the port is chosen by srvctl 3's rule. */
export async function mapPort(
  ctx: EditContext,
  container: string,
  opts: { proto: 'tcp' | 'udp'; containerPort: number; hostPort?: number; comment?: string },
): Promise<EditResult> {
  assertContainerName(container);
  if (opts.proto !== 'tcp' && opts.proto !== 'udp') throw new UserError(`invalid protocol "${String(opts.proto)}": tcp or udp`);
  assertPort(opts.containerPort, 'container port');
  if (opts.hostPort !== undefined) assertPort(opts.hostPort, 'host port');
  if (opts.comment !== undefined) assertDisplayName(opts.comment);
  return runDatastoreEdit(ctx, { command: `map-port ${container} ${opts.proto} ${opts.containerPort}` }, (edit) => {
    const c = existingContainer(edit.model, container);
    const used = mappedHostPorts(edit.model, c.host, opts.proto);
    let hostPort = opts.hostPort;
    if (hostPort !== undefined) {
      const holder = used.get(hostPort);
      if (holder !== undefined) throw new UserError(`host port ${hostPort}/${opts.proto} on ${c.host} is already mapped (to ${holder})`);
    } else {
      hostPort = chooseHostPort(opts.containerPort, new Set(used.keys()));
      if (hostPort === undefined) {
        throw new UserError(`no free ${opts.proto} host port on ${c.host} for container port ${opts.containerPort}; give one with --host-port`);
      }
    }
    const entry: MappedPort = {
      proto: opts.proto,
      host_port: hostPort,
      container_port: opts.containerPort,
      ...(opts.comment !== undefined ? { comment: opts.comment } : {}),
    };
    edit.document('containers').append([container, 'mapped_ports'], entry);
    edit.record({ kind: 'containers', key: container, action: 'update', value: { mapped_ports: [...(c.mapped_ports ?? []), entry] } });
    return `mapped ${c.host} ${opts.proto} port ${hostPort} to ${container}:${opts.containerPort}`;
  });
}

/** Sets `http-redirect` (none|https|URL) or `https-redirect` (none|http|URL) of a container. */
export async function setRedirect(
  ctx: EditContext,
  container: string,
  field: 'http-redirect' | 'https-redirect',
  value: string,
): Promise<EditResult> {
  assertContainerName(container);
  if (field !== 'http-redirect' && field !== 'https-redirect') throw new UserError(`unknown redirect field "${String(field)}"`);
  assertRedirectValue(field, value);
  return runDatastoreEdit(ctx, { command: `${field} ${container}` }, (edit) => {
    const c = existingContainer(edit.model, container);
    if (c[field] === value) return `${container} already has ${field} ${value}`;
    edit.document('containers').set([container, field], value);
    edit.record({ kind: 'containers', key: container, action: 'update', value: { [field]: value } });
    return `set ${field} of ${container} to ${value}`;
  });
}
