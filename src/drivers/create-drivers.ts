// Builds the real driver set for one run from the host context (--root, --netns).
import type { Logger } from 'pino';
import type { HostContext } from '../host-context.js';
import { createExec } from './exec.js';
import { createFilesDriver } from './files.js';
import { createIpDriver } from './ip.js';
import { createNspawnDriver } from './nspawn.js';
import { createOpensslDriver } from './openssl.js';
import { createOpenvpnDriver } from './openvpn.js';
import { createPingDriver } from './ping.js';
import type { Drivers } from './types.js';

export function createDrivers(host: Pick<HostContext, 'root' | 'netns' | 'runtime'>, logger?: Logger): Drivers {
  const exec = createExec({ netns: host.netns, logger });
  const files = createFilesDriver(host.root);
  const nspawn = createNspawnDriver({ exec, files, root: host.root, netns: host.netns, logger });
  const openvpn = createOpenvpnDriver({ exec, files, runtime: host.runtime });
  return { exec, ip: createIpDriver(exec), files, nspawn, openssl: createOpensslDriver(exec), openvpn, ping: createPingDriver(exec) };
}
