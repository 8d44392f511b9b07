// What a request through the proxy gets, for `sc status`: `GET http://NAME/` on port 80 of the
// host itself (inside --netns, through the exec layer), redirects not followed. One curl process
// per 200 names, not one per name.
import type { Exec } from '../drivers/types.js';

const NAMES_PER_CURL = 200;
const PROBE_TIMEOUT_MS = 20_000;

/** name → HTTP status code (`000`: no answer). */
export async function probeProxy(exec: Exec, names: readonly string[]): Promise<Map<string, string>> {
  const codes = new Map<string, string>();
  for (let i = 0; i < names.length; i += NAMES_PER_CURL) {
    const part = names.slice(i, i + NAMES_PER_CURL);
    const args = ['-s', '--max-time', '5', '-w', '%{http_code}\\n'];
    for (const name of part) args.push('--resolve', `${name}:80:127.0.0.1`);
    for (const name of part) args.push('-o', '/dev/null', `http://${name}/`);
    try {
      const result = await exec.run('curl', args, { allowFailure: true, timeoutMs: PROBE_TIMEOUT_MS });
      const lines = result.stdout.split('\n').filter(Boolean);
      part.forEach((name, j) => codes.set(name, lines[j] ?? '000'));
    } catch {
      for (const name of part) codes.set(name, '000');
    }
  }
  return codes;
}
