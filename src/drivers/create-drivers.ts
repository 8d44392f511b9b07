// Builds the real driver set for one run from the host context (--root, --netns).
import type { Logger } from 'pino';
import type { HostContext } from '../host-context.js';
import { createAccountsDriver } from './accounts.js';
import { createExec } from './exec.js';
import { createAcmeDriver } from './acme.js';
import { createFilesDriver } from './files.js';
import { createHaproxyDriver } from './haproxy.js';
import { createIpDriver } from './ip.js';
import { createNspawnDriver } from './nspawn.js';
import { createOpensslDriver } from './openssl.js';
import { createOpenvpnDriver } from './openvpn.js';
import { createPingDriver } from './ping.js';
import { createNftDriver } from './nft.js';
import { rootfsDriver } from './rootfs.js';
import { resolveRuntime } from './runtime.js';
import { createSshdDriver } from './sshd.js';
import { createSysctlDriver } from './sysctl.js';
import type { Drivers, Exec, FilesDriver, IpDriver } from './types.js';

/** The drivers that need nothing but an exec and a files driver (tests build their fakes on them). */
export function baseDrivers(exec: Exec, files: FilesDriver): Omit<Drivers, 'nspawn' | 'openvpn' | 'ping' | 'accounts' | 'sshd'> {
  return {
    exec,
    files,
    ip: createIpDriver(exec),
    nft: createNftDriver(exec),
    rootfs: rootfsDriver({ exec, files }),
    sysctl: createSysctlDriver(exec),
    openssl: createOpensslDriver(exec),
  };
}

/**
 * The ip driver alone, before the datastore is loaded (it needs nothing of the model): a command
 * lets it prefetch the host's links and addresses meanwhile, then hands it to createDrivers.
 */
export function createEarlyIpDriver(netns: string | undefined, logger?: Logger): IpDriver {
  return createIpDriver(createExec({ netns, logger }));
}

export function createDrivers(host: Pick<HostContext, 'root' | 'netns' | 'runtime'>, logger?: Logger, early: { ip?: IpDriver } = {}): Drivers {
  const exec = createExec({ netns: host.netns, logger });
  const files = createFilesDriver(host.root);
  const nspawn = createNspawnDriver({ exec, files, root: host.root, netns: host.netns, logger });
  const openvpn = createOpenvpnDriver({ exec, files, runtime: host.runtime });
  const accounts = createAccountsDriver(files);
  const sshd = createSshdDriver({ exec, files, runtime: resolveRuntime(host.runtime), root: host.root });
  return {
    ...baseDrivers(exec, files),
    ...(early.ip ? { ip: early.ip } : {}),
    nspawn,
    openvpn,
    ping: createPingDriver(exec),
    accounts,
    sshd,
    haproxy: createHaproxyDriver({ exec, files, runtime: resolveRuntime(host.runtime) }),
    acme: createAcmeDriver(exec),
  };
}
