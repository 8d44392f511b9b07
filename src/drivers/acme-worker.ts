// The ACME worker: a short-lived process the acme driver starts in --netns (so the ACME server and
// its HTTP-01 validation see this host's network), with one job on stdin. It answers the challenges
// itself on 127.0.0.1:PORT, where the proxy sends /.well-known/acme-challenge/, and orders one
// certificate per name with the `acme-client` library. Results go to stdout as JSON, one per name;
// a name that fails carries its error and does not stop the others. Nothing secret is printed
// except the certificates (public) — keys come in on stdin and never go out.
import { createServer } from 'node:http';
import acme from 'acme-client';

export interface AcmeJob {
  readonly directoryUrl: string;
  readonly accountKey: string;
  readonly contact?: string;
  readonly responderPort: number;
  readonly orders: readonly { readonly name: string; readonly key: string }[];
}

export interface AcmeOutcome {
  readonly name: string;
  readonly certificate?: string;
  readonly error?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** An error's message without anything that could carry a key: one line. */
const oneLine = (error: unknown): string => (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').slice(0, 500);

async function main(): Promise<void> {
  const job = JSON.parse(await readStdin()) as AcmeJob;
  const answers = new Map<string, string>();
  const prefix = '/.well-known/acme-challenge/';
  const server = createServer((req, res) => {
    const token = req.url?.startsWith(prefix) ? req.url.slice(prefix.length) : undefined;
    const answer = token !== undefined ? answers.get(token) : undefined;
    res.writeHead(answer !== undefined ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(answer ?? 'no such challenge\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(job.responderPort, '127.0.0.1', resolve);
  });
  const client = new acme.Client({ directoryUrl: job.directoryUrl, accountKey: job.accountKey });
  const outcomes: AcmeOutcome[] = [];
  try {
    for (const order of job.orders) {
      try {
        const [, csr] = await acme.crypto.createCsr({ commonName: order.name, altNames: [order.name] }, order.key);
        const certificate = await client.auto({
          csr,
          ...(job.contact !== undefined ? { email: job.contact } : {}),
          termsOfServiceAgreed: true,
          challengePriority: ['http-01'],
          // The ACME server validates through the proxy; this host need not resolve the name itself.
          skipChallengeVerification: true,
          challengeCreateFn: async (_authz, challenge, keyAuthorization) => void answers.set(challenge.token, keyAuthorization),
          challengeRemoveFn: async (_authz, challenge) => void answers.delete(challenge.token),
        });
        outcomes.push({ name: order.name, certificate });
      } catch (error) {
        outcomes.push({ name: order.name, error: oneLine(error) });
      }
    }
  } finally {
    server.close();
  }
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`acme worker: ${oneLine(error)}\n`);
  process.exitCode = 1;
});
