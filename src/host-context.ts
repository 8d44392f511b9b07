// Who and where this run is: the host sc reconciles, the --root prefix and the --netns.
import type { HostRef } from './datastore/model.js';

export interface HostContext extends HostRef {
  /** Prefix for every host path sc reads or writes; '/' on a real host. */
  readonly root: string;
  /** Network namespace all network work (and the containers) run in; undefined = the caller's. */
  readonly netns?: string;
  /** `sc apply --prune-data` or settings.prune.data: deleting a container also deletes /srv/NAME. */
  readonly pruneData?: boolean;
  /** settings.runtime: how containers run here (`auto`, the default, detects systemd as PID 1). */
  readonly runtime?: 'auto' | 'systemd' | 'direct';
  /**
   * The datastore's public PKI exchange (requests, certificates, the CA certificate), provided by
   * the engine: the pki kind reads and publishes through it and never writes the datastore itself.
   * Absent when this run has no datastore directory.
   */
  readonly pki?: PkiExchange;
}

/** The port through which the cluster PKI reads and publishes its public files (src/datastore/pki-exchange.ts). */
export interface PkiExchange {
  /** Where published files go, for messages: `in the datastore`, `in the source branch …`. */
  readonly where: string;
  /** A public PKI file's text (path relative to the datastore, e.g. `pki/ca.crt`); never through a link. */
  read(rel: string): Promise<string | undefined>;
  /** The host names with a published request. */
  requestHosts(): Promise<string[]>;
  /** The certificate names (USER@DEVICE) with a published user VPN device certificate (pki/clients/NAME.crt). */
  clientCertNames(): Promise<string[]>;
  /** Publishes public PKI files (never a private key): written and committed, or pushed to the source. */
  publish(files: Readonly<Record<string, string>>, command: string): Promise<void>;
  /**
   * Waits (bounded) for a file another host publishes after this pass began (the CA host's signature
   * of our request), read from the newest published state: the source branch's tip, fetched.
   * Its text once `accept` takes it; undefined when the wait ends without one, or when this
   * exchange does not wait (then the next pass picks the file up).
   */
  awaitPublished?(rel: string, accept: (text: string) => boolean): Promise<string | undefined>;
}
