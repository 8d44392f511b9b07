// The explicit registry of resource kinds this sc manages: a plain map, no import side effects.
import { bridgeHandler } from './bridge.js';
import { certificateHandler } from './certificate.js';
import { containerAddressHandler } from './container-address.js';
import { containerHandler } from './container.js';
import type { HandlerRegistry } from './contract.js';
import { imageHandler } from './image.js';
import { machineHandler } from './machine.js';
import { pkiHandler } from './pki.js';
import { portMapHandler } from './port-map.js';
import { reverseProxyHandler } from './reverse-proxy.js';
import { vpnLinkHandler } from './vpn-link.js';
import { userVpnHandler } from './user-vpn.js';
import { sysctlHandler } from './sysctl.js';
import { containerKeysHandler } from './container-keys.js';
import { hostNamesHandler } from './host-names.js';
import { jumpAccountHandler } from './jump-account.js';
import { sshJumpHandler } from './ssh-jump.js';

export const resourceHandlers = {
  bridge: bridgeHandler,
  container: containerHandler,
  image: imageHandler,
  machine: machineHandler,
  'container-address': containerAddressHandler,
  'port-map': portMapHandler,
  pki: pkiHandler,
  'vpn-link': vpnLinkHandler,
  'user-vpn': userVpnHandler,
  sysctl: sysctlHandler,
  'container-keys': containerKeysHandler,
  'host-names': hostNamesHandler,
  'ssh-jump': sshJumpHandler,
  'jump-account': jumpAccountHandler,
  'reverse-proxy': reverseProxyHandler,
  certificate: certificateHandler,
} satisfies HandlerRegistry;
