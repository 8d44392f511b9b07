// Which host port `sc map-port` picks when none is given: srvctl 3's rule, so mappings made by
// srvctl 3 and srvctl 4 look alike (22 → 2022, 8080 → 6080, udp 1194 → 1194).

/** Host ports never picked automatically: privileged ports, VNC, the usual web/dev range. */
export const AUTO_RESERVED_HOST_PORTS: readonly { first: number; last: number }[] = [
  { first: 1, last: 1023 },
  { first: 5900, last: 6000 },
  { first: 8000, last: 10000 },
];

const MAX_PORT = 65535;

function isReserved(port: number): boolean {
  return AUTO_RESERVED_HOST_PORTS.some((r) => port >= r.first && port <= r.last);
}

/** The first candidate before scanning: the container port shifted out of the low ranges. */
export function preferredHostPort(containerPort: number): number {
  let port = containerPort;
  if (port < 20) port += 1024;
  if (port < 30) port += 2000;
  if (port < 1024) port += 3000;
  if (port > 5000 && port < 10000) port -= 2000;
  return port;
}

/**
 * The host port for `containerPort`: the preferred port, or the next one upward that is neither
 * reserved nor in `used` (host ports already mapped on the same host and protocol).
 * Undefined when the scan runs past 65535.
 */
export function chooseHostPort(containerPort: number, used: ReadonlySet<number>): number | undefined {
  for (let port = preferredHostPort(containerPort); port <= MAX_PORT; port++) {
    if (!isReserved(port) && !used.has(port)) return port;
  }
  return undefined;
}
