// Throwaway EC (P-256) keys and certificates for tests, made by the real openssl: a self-signed
// certificate (an operator's certificate, or a CA), a key with its signing request, and a request
// signed by a CA. Argument arrays only; every file path is the caller's.
import { execFileSync } from 'node:child_process';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A new key in `key` and a certificate for it, signed by itself, in `cert`. `extra`: more `openssl req` arguments. */
export function selfSignedEc(o: { key: string; cert: string; subject: string; days: number; extra?: readonly string[] }): void {
  openssl(['req', '-x509', ...EC_KEY, '-keyout', o.key, '-out', o.cert, '-days', String(o.days), '-subj', o.subject, ...(o.extra ?? [])]);
}

/** A new key in `key` and its certificate signing request in `csr`. */
export function ecRequest(o: { key: string; csr: string; subject: string }): void {
  openssl(['req', ...EC_KEY, '-keyout', o.key, '-out', o.csr, '-subj', o.subject]);
}

/** The request `csr` signed by the CA (`caCert`, `caKey`) into `cert`, with the extensions in `extfile`. */
export function signRequest(o: { csr: string; caCert: string; caKey: string; cert: string; days: number; extfile: string }): void {
  openssl([
    'x509',
    '-req',
    '-in',
    o.csr,
    '-CA',
    o.caCert,
    '-CAkey',
    o.caKey,
    '-CAcreateserial',
    '-days',
    String(o.days),
    '-extfile',
    o.extfile,
    '-out',
    o.cert,
  ]);
}
