// The typed, frozen desired state the rest of sc works from. The shapes come from the JSON
// Schemas (schemas/*.schema.json → model-types.generated.ts); this file only assembles them.
import type { Clusters, Containers, Host, Settings, Users } from './model-types.generated.js';

export type {
  Cluster,
  Clusters,
  Container,
  Containers,
  Host,
  ImageSpec,
  MappedPort,
  Settings,
  User,
  Users,
  VpnClient,
} from './model-types.generated.js';

/** The four datastore documents, by their base name. */
export const DATASTORE_KINDS = ['clusters', 'users', 'containers', 'settings'] as const;
export type DatastoreKind = (typeof DATASTORE_KINDS)[number];

export interface Model {
  readonly clusters: Readonly<Clusters>;
  readonly users: Readonly<Users>;
  readonly containers: Readonly<Containers>;
  readonly settings: Readonly<Settings>;
}

/** This host's place in the model: which host entry it is and which cluster it belongs to. */
export interface HostRef {
  readonly name: string;
  readonly cluster: string;
  readonly host: Readonly<Host>;
}

/** Finds a host by FQDN across all clusters. */
export function findHost(model: Model, name: string): HostRef | undefined {
  for (const [cluster, hosts] of Object.entries(model.clusters)) {
    const host = hosts[name];
    if (host) return { name, cluster, host };
  }
  return undefined;
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

/** The first uid sc gives a user (below are system accounts). */
export const FIRST_USER_UID = 1000;
