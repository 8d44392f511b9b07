// The certificate kind with plain data: which names it wants (only with ACME opted in), and what it
// sees for them — an operator's wildcard makes a name in sync without any order.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import { createFilesDriver } from '../../../src/drivers/files.js';
import type { Drivers } from '../../../src/drivers/types.js';
import type { HostContext } from '../../../src/host-context.js';
import { certificateHandler } from '../../../src/resources/certificate.js';
import { selfSignedEc } from '../../test-certificates.js';

const H1 = 'web1.example.net';
const host: HostContext = { name: H1, cluster: 'main', host: { hostnet: 1, host_ip: '192.0.2.11' }, root: '/' };
const model = (settings: Model['settings']): Model => ({
  clusters: { main: { [H1]: { hostnet: 1, host_ip: '192.0.2.11' } } },
  users: {},
  containers: { 'a.example.com': { user: 'alice', host: H1, type: 'busybox', ip: '10.17.1.20', altnames: ['b.example.org'] } },
  settings,
});

describe('certificate handler', () => {
  it('wants nothing unless ACME is opted in; then one per name the proxy answers, after the proxy', () => {
    expect(certificateHandler.desired(model({}), host)).toEqual([]);
    expect(certificateHandler.desired(model({ proxy: { acme: { enabled: false } } }), host)).toEqual([]);
    const wants = certificateHandler.desired(model({ proxy: { acme: { contact: 'a@example.net' } } }), host);
    expect(wants.map((w) => w.ref.id)).toEqual(['a.example.com', 'b.example.org', 'www.a.example.com']);
    expect(wants[0]?.spec.acme).toEqual({ directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory', contact: 'a@example.net', renewDays: 30 });
    expect(wants[0]?.dependsOn).toEqual([{ kind: 'reverse-proxy', id: 'haproxy' }]);
  });

  it('sees names under an operator wildcard as usable (no order), the others as missing', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sc-cert-'));
    try {
      const dir = path.join(root, 'etc/srvctl/cert/example.com');
      execFileSync('mkdir', ['-p', dir]);
      selfSignedEc({ key: `${dir}/k`, cert: `${dir}/c`, subject: '/CN=*.example.com', days: 30 });
      execFileSync('sh', ['-c', 'cat "$1/c" "$1/k" > "$1/wild.pem"; rm "$1/c" "$1/k"', 'sh', dir]);
      const drivers = { files: createFilesDriver(root) } as unknown as Drivers;
      const wants = certificateHandler.desired(model({ proxy: { acme: {} } }), host);
      const seen = await certificateHandler.observe(drivers, host, { model: model({ proxy: { acme: {} } }), desired: wants });
      // www.a.example.com is two labels below the wildcard, b.example.org another domain: nothing covers them yet.
      expect(seen.map((o) => [o.ref.id, o.spec.usable, o.spec.renewal, o.spec.source])).toEqual([['a.example.com', true, 'not-due', 'operator']]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
