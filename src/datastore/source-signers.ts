// Signed sources and the cluster PKI together (issue 13). With `source.verify`, a revision is
// accepted when it is signed by an operator (a key the host's own git trusts: gpg, or
// gpg.ssh.allowedSignersFile — `git verify-commit`), or when it is a chain of host commits on top
// of an operator-signed one, each of them:
//   - signed with the SSH signing key of a host H listed in `pki/host-signers` of its parent (an
//     allowed-signers file: `H ssh-ed25519 AAAA…`, changed only by operator-signed commits), and
//   - one parent, touching nothing but H's own request `pki/requests/H.csr` — or, when H is the CA
//     host (`ca: true` in the parent's clusters file), also `pki/ca.crt` and `pki/certs/X.crt` for
//     the hosts X of H's cluster.
// So hosts grow the PKI without the operator's key, a host can never publish a request in another
// host's name, and the CA only ever sees requests that arrived that way.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import { gitErrorText, gitIn } from '../drivers/git.js';
import { loadYaml } from './yaml-module.js';

/** The allowed-signers file of host signing keys, in the source. */
export const HOST_SIGNERS_FILE = 'pki/host-signers';
/** A host's signing key for its PKI commits (the public half next to it, `.pub`). */
export const HOST_SIGNING_KEY = '/etc/srvctl/pki/git-signing.key';
/** Host commits between two operator-signed commits that a check walks through at most. */
const MAX_HOST_CHAIN = 500;

/** Verified (commit → true) in this process: a chain is walked once. */
const accepted = new Set<string>();

export interface SignatureVerdict {
  readonly ok: boolean;
  readonly reason?: string;
}

/**
 * Whether `revision` in the repository `dir` is acceptable under source.verify (see the top of
 * this file). Returns the reason when it is not.
 */
export async function judgeRevision(dir: string, revision: string): Promise<SignatureVerdict> {
  let commit = revision;
  const chain: string[] = [];
  for (let step = 0; step <= MAX_HOST_CHAIN; step++) {
    if (accepted.has(`${dir}\0${commit}`)) break;
    if (await operatorSigned(dir, commit)) break;
    const verdict = await hostCommitVerdict(dir, commit);
    if (!verdict.ok) {
      return {
        ok: false,
        reason: commit === revision ? verdict.reason : `${verdict.reason} (commit ${commit.slice(0, 12)}, under ${revision.slice(0, 12)})`,
      };
    }
    chain.push(commit);
    commit = verdict.parent;
    if (step === MAX_HOST_CHAIN) return { ok: false, reason: `more than ${MAX_HOST_CHAIN} host commits since the last operator-signed commit` };
  }
  for (const c of [...chain, commit]) accepted.add(`${dir}\0${c}`);
  return { ok: true };
}

async function operatorSigned(dir: string, commit: string): Promise<boolean> {
  try {
    await gitIn(dir).raw(['verify-commit', '--', commit]);
    return true;
  } catch {
    return false;
  }
}

type HostVerdict = { ok: true; parent: string } | { ok: false; reason: string };

async function hostCommitVerdict(dir: string, commit: string): Promise<HostVerdict> {
  const git = gitIn(dir);
  const parents = (await git.raw(['rev-list', '--parents', '-n', '1', commit])).trim().split(' ').slice(1);
  const [parent] = parents;
  if (parent === undefined || parents.length !== 1) return { ok: false, reason: "it is not signed by an operator (and is not a host's PKI commit)" };
  const signers = await showFile(dir, parent, HOST_SIGNERS_FILE);
  if (signers === undefined || signers.trim() === '') return { ok: false, reason: 'it has no good operator signature' };
  const signer = await hostSigner(dir, commit, signers);
  if (signer === undefined) return { ok: false, reason: 'it has no good signature of an operator or of a host listed in pki/host-signers' };
  const changed = (await git.raw(['diff-tree', '--no-commit-id', '--name-only', '-r', '-z', parent, commit])).split('\0').filter(Boolean);
  const allowed = await allowedPaths(dir, parent, signer);
  const foreign = changed.filter((p) => !allowed(p));
  if (foreign.length) {
    const shown = foreign
      .slice(0, 3)
      .map((p) => JSON.stringify(p.slice(0, 120)))
      .join(', ');
    return {
      ok: false,
      reason: `it is signed by host ${signer}, which may change only its own PKI files, but it changes ${shown}${foreign.length > 3 ? ` and ${foreign.length - 3} more` : ''}`,
    };
  }
  return { ok: true, parent };
}

/** The principal (host name) whose key from `signers` made a good signature on `commit`. */
async function hostSigner(dir: string, commit: string, signers: string): Promise<string | undefined> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'sc-signers-'));
  try {
    const file = path.join(tmp, 'allowed_signers');
    await writeFile(file, signers, { mode: 0o600 });
    const out = await gitIn(dir)
      .raw(['-c', `gpg.ssh.allowedSignersFile=${file}`, 'log', '-1', '--format=%G?%x00%GS', commit])
      .catch(() => '');
    const [status, principal] = out.trim().split('\0');
    return status === 'G' && principal !== undefined && principal !== '' ? principal : undefined;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Which paths a commit signed by `host` may change, from the parent's clusters file. */
async function allowedPaths(dir: string, parent: string, host: string): Promise<(p: string) => boolean> {
  const own = `pki/requests/${host}.csr`;
  const caOf = await caClusterMembers(dir, parent, host);
  return (p) =>
    p === own ||
    (caOf !== undefined &&
      (p === 'pki/ca.crt' || (p.startsWith('pki/certs/') && caOf.has(p.slice('pki/certs/'.length).replace(/\.crt$/, '')) && p.endsWith('.crt'))));
}

/** The members of the cluster where `host` is `ca: true`, at `commit`; undefined when it is no CA host. */
async function caClusterMembers(dir: string, commit: string, host: string): Promise<Set<string> | undefined> {
  for (const name of ['clusters.json', 'clusters.yaml', 'clusters.yml']) {
    const text = await showFile(dir, commit, name);
    if (text === undefined) continue;
    let clusters: unknown;
    try {
      clusters = (await loadYaml()).parse(text, { maxAliasCount: 100 });
    } catch {
      return undefined;
    }
    if (clusters === null || typeof clusters !== 'object') return undefined;
    for (const hosts of Object.values(clusters as Record<string, unknown>)) {
      if (hosts === null || typeof hosts !== 'object') continue;
      const entry = (hosts as Record<string, unknown>)[host];
      if (entry !== null && typeof entry === 'object' && (entry as { ca?: unknown }).ca === true) return new Set(Object.keys(hosts));
    }
    return undefined;
  }
  return undefined;
}

/** A file's text at a commit (blobs only, at most 1 MiB); undefined when absent. */
async function showFile(dir: string, commit: string, file: string): Promise<string | undefined> {
  const git = gitIn(dir);
  const entry = (await git.raw(['ls-tree', '-l', commit, '--', file]).catch(() => '')).trim();
  const [mode, type, , size] = entry.split('\t')[0]?.split(/\s+/) ?? [];
  if (type !== 'blob' || mode === '120000' || Number(size) > 1 << 20) return undefined;
  return git.raw(['cat-file', 'blob', `${commit}:${file}`]).catch(() => undefined);
}

/** Throws the UserError of a revision that fails the policy. */
export async function requireAcceptedRevision(dir: string, revision: string, label: string): Promise<void> {
  let verdict: SignatureVerdict;
  try {
    verdict = await judgeRevision(dir, revision);
  } catch (error) {
    verdict = { ok: false, reason: gitErrorText(error) };
  }
  if (!verdict.ok) {
    throw new UserError(
      `the source ${label} at ${revision.slice(0, 12)} has no good signature (signature check asked for): ${verdict.reason ?? ''}; nothing applied`,
    );
  }
}

/** The allowed-signers line for a host's public key (`HOST ssh-ed25519 AAAA…`). */
export const hostSignersLine = (host: string, publicKey: string): string => `${host} ${publicKey.trim().split(/\s+/).slice(0, 2).join(' ')}`;

/** Whether the allowed-signers text lists `host` with this public key. */
export function listsHostKey(signers: string | undefined, host: string, publicKey: string): boolean {
  if (signers === undefined) return false;
  const [type, blob] = publicKey.trim().split(/\s+/);
  return signers.split('\n').some((line) => {
    const words = line.trim().split(/\s+/);
    return words[0] === host && words.includes(type ?? '') && words.includes(blob ?? '');
  });
}
