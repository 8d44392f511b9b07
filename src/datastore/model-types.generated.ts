/* eslint-disable */
// GENERATED from schemas/*.schema.json by scripts/generate-types.mjs. Do not edit by hand: run `npm run gen:types`.

// ---- schemas/clusters.schema.json ----
/**
 * Cluster name: letters, digits, '_' and '-', at most 63 characters.
 *
 * This interface was referenced by `Clusters`'s JSON-Schema
 * via the `definition` "clusterName".
 */
export type ClusterName = string;
/**
 * A lowercase DNS name.
 *
 * This interface was referenced by `Clusters`'s JSON-Schema
 * via the `definition` "fqdn".
 */
export type Fqdn = string;

/**
 * clusters.json: { CLUSTER: { HOST_FQDN: host } }. The cluster that contains this host's name is 'our' cluster.
 */
export interface Clusters {
  [k: string]: Cluster;
}
/**
 * This interface was referenced by `Clusters`'s JSON-Schema
 * via the `definition` "host".
 */
export interface Host {
  /**
   * Hostnet H owns 10.(16*H).0.0/12.
   */
  hostnet: number;
  /**
   * Public IPv4 address of the host (VPN underlay).
   */
  host_ip: string;
  host_ipv6?: string;
  gateway?: string;
  prefix?: number | string;
  dns1?: string;
  dns2?: string;
  /**
   * The host's uplink network interface.
   */
  interface?: string;
  /**
   * haproxy (the default): sc runs its HAProxy on ports 80 and 443 of this host; any other value: no proxy here.
   */
  reverse_proxy?: string;
  /**
   * This host is the cluster's certificate authority.
   */
  ca?: boolean;
  [k: string]: unknown;
}
export interface Cluster {
  [k: string]: Host;
}

// ---- schemas/users.schema.json ----
/**
 * A lowercase DNS label of at most 32 characters, starting with a letter.
 *
 * This interface was referenced by `Users`'s JSON-Schema
 * via the `definition` "userName".
 */
export type UserName = string;

/**
 * users.json: { USERNAME: user }. Resellers are users with reseller 'root' and a reseller_id.
 */
export interface Users {
  [k: string]: User;
}
/**
 * This interface was referenced by `Users`'s JSON-Schema
 * via the `definition` "user".
 */
export interface User {
  /**
   * Display name.
   */
  name?: string;
  /**
   * A lowercase DNS label of at most 32 characters, starting with a letter.
   */
  reseller?: string;
  /**
   * Only on resellers (1-15); root is 0.
   */
  reseller_id?: number;
  /**
   * The user's number inside its reseller (1-255); allocated once, stored. Only root has 0.
   */
  user_id?: number;
  /**
   * Linux uid; allocated once, stored.
   */
  uid?: number;
  /**
   * Public SSH keys, one line each.
   */
  ssh_keys?: string[];
  /**
   * The user's VPN client devices (sc add-vpn-client): public material only, never a key.
   */
  vpn_clients?: VpnClient[];
  [k: string]: unknown;
}
/**
 * This interface was referenced by `Users`'s JSON-Schema
 * via the `definition` "vpnClient".
 */
export interface VpnClient {
  /**
   * The device's name (a lowercase DNS label of at most 32 characters); the certificate's common name is USER@DEVICE.
   */
  device: string;
  /**
   * Allocated once: the client's address is .host_part of the user's /24 on every host where the user has containers.
   */
  host_part: number;
  /**
   * The device's certificate request (PEM), made on the device: its key never leaves it.
   */
  csr?: string;
  /**
   * The device's certificate (PEM), signed by the cluster CA.
   */
  certificate?: string;
}

// ---- schemas/containers.schema.json ----
/**
 * The container's FQDN, also its machine name (systemd allows 64 characters): lowercase DNS labels separated by dots.
 *
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "containerName".
 */
export type ContainerName = string;
/**
 * A lowercase DNS name: labels of letters, digits and '-' separated by dots.
 *
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "domainName".
 */
export type DomainName = string;
/**
 * A username: a lowercase DNS label of at most 32 characters, starting with a letter.
 *
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "ownerName".
 */
export type OwnerName = string;
/**
 * An http(s) URL without spaces or quotes (it ends up in the proxy configuration).
 *
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "redirectUrl".
 */
export type RedirectUrl = string;

/**
 * containers.json: { CONTAINER_FQDN: container }.
 */
export interface Containers {
  [k: string]: Container;
}
/**
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "mappedPort".
 */
export interface MappedPort {
  proto: 'tcp' | 'udp';
  host_port: number;
  container_port: number;
  comment?: string;
  [k: string]: unknown;
}
/**
 * This interface was referenced by `Containers`'s JSON-Schema
 * via the `definition` "container".
 */
export interface Container {
  /**
   * Owner (a username).
   */
  user: string;
  /**
   * FQDN of the server the container runs on.
   */
  host: string;
  /**
   * Base image name (fedora, debian, busybox, ...).
   */
  type: string;
  /**
   * Allocated once (sc allocate / sc add-ve), stored.
   */
  ip?: string;
  enabled?: boolean;
  /**
   * Host ports forwarded to the container; (host, proto, host_port) is unique on a host.
   */
  mapped_ports?: MappedPort[];
  /**
   * More domain names of this container: the reverse proxy answers them with a 301 to the container's name.
   */
  aliases?: DomainName[];
  /**
   * Domain names that reach this container's site as they are, without a redirect.
   */
  altnames?: DomainName[];
  http_port?: number | string;
  https_port?: number | string;
  /**
   * none | https | URL (default: redirect to https)
   */
  'http-redirect'?: ('none' | 'https') | RedirectUrl;
  /**
   * none | http | URL
   */
  'https-redirect'?: ('none' | 'http') | RedirectUrl;
  /**
   * A custom host bridge (not managed by sc).
   */
  bridge?: string;
  [k: string]: unknown;
}

// ---- schemas/settings.schema.json ----
/**
 * settings.json (optional): cluster-wide settings.
 */
export interface Settings {
  /**
   * How containers are run.
   */
  runtime?: 'auto' | 'systemd' | 'direct';
  /**
   * PrivateUsers=pick for containers.
   */
  private_users?: boolean;
  /**
   * Base image builders per container type.
   */
  images?: {
    [k: string]: ImageSpec;
  };
  prune?: {
    max_delete_share?: number;
    data?: boolean;
  };
  reconcile?: {
    interval_seconds?: number;
    jitter_seconds?: number;
  };
  apply?: {
    concurrency?: number;
    /**
     * How long sc apply waits for the containers it started or repaired to answer a ping (0: ask once, do not wait).
     */
    answer_wait_seconds?: number;
  };
  /**
   * The reverse proxy (HAProxy on ports 80/443 of every host of the cluster).
   */
  proxy?: {
    /**
     * false: no host runs sc's proxy.
     */
    enabled?: boolean;
    /**
     * Certificates ordered by ACME (HTTP-01 through the proxy) for names without an operator certificate; present = on (the operator agrees to the CA's terms).
     */
    acme?: {
      enabled?: boolean;
      directory_url?: string;
      /**
       * E-mail address of the account.
       */
      contact?: string;
      /**
       * A CA bundle (host path) trusted for the ACME server's own TLS, e.g. a test ACME server's.
       */
      ca_file?: string;
      renew_days?: number;
    };
  };
  /**
   * The user VPN: an OpenVPN server on every host where users have containers; each user's devices get .201-.250 of the user's /24 (sc add-vpn-client).
   */
  user_vpn?: {
    /**
     * UDP port of the user VPN server on every host.
     */
    port?: number;
  };
  source?: {
    url?: string;
    ref?: string;
    verify?: boolean;
    push?: boolean;
  };
  [k: string]: unknown;
}
/**
 * This interface was referenced by `Settings`'s JSON-Schema
 * via the `definition` "image".
 */
export interface ImageSpec {
  builder: 'busybox' | 'debootstrap' | 'dnf';
  suite?: string;
  mirror?: string;
  release?: string;
  packages?: string[];
}
