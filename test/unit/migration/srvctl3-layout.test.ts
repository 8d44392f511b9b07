// The pure parts of adoption and of the key import: srvctl 3's .nspawn files as its lib.js wrote
// them, when a layout is the imported container, which users/ files become keys, and the report's
// schema.
import { layoutMismatches, parseSrvctl3Nspawn, srvctl3VethName, type Srvctl3Layout } from '../../../src/migration/srvctl3-layout.js';
import { userPublicKeys } from '../../../src/migration/srvctl3-keys.js';
import { parseMigrationReport, reportSchemaErrors, type ContainerMapping, type MigrationReport } from '../../../src/migration/migration-report.js';
import { UserError } from '../../../src/errors.js';

// srvctl3-upstream.md §4.3: container_nspawn of a-three.ve (ran), with one mapped port.
const A_THREE = `## srvctl generated - a-three.ve
[Network]
VirtualEthernetExtra=78-1-4
## 22 ssh
Port=tcp:2022:22
[Exec]
PrivateUsers=16973824
[Files]
PrivateUsersChown=true
BindReadOnly=/usr/local/share/srvctl
BindReadOnly=/var/srvctl3/share/containers/a-three.ve
BindReadOnly=/var/srvctl3/share/common
BindReadOnly=/srv/a-three.ve/network:/etc/systemd/network
BindReadOnly=/srv/a-three.ve/hosts:/etc/hosts
`;

const record: ContainerMapping = {
  name: 'a-three.ve',
  user: 'a',
  host: 't1.test.vm',
  type: 'fedora',
  old_ip: '10.78.1.4',
  ip: '10.33.1.22',
  mapped_ports: [{ proto: 'tcp', host_port: 2022, container_port: 22 }],
};
const layout = (nspawn: string, extra: Partial<Srvctl3Layout> = {}): Srvctl3Layout => ({
  nspawn: { path: '/srv/a-three.ve/a-three.ve.nspawn', text: nspawn },
  rootfs: 'dir',
  networkFiles: ['[Match]\nName=78-1-4\n\n[Network]\nAddress=10.78.1.4/24\nGateway=10.78.1.1\n'],
  ctype: 'fedora',
  ...extra,
});

describe('srvctl 3 .nspawn files', () => {
  test('srvctl 3.2: the veth H-U-C of the address, ports, the name it was generated for', () => {
    expect(parseSrvctl3Nspawn(A_THREE)).toEqual({ generatedFor: 'a-three.ve', virtualEthernetExtra: '78-1-4', ports: ['tcp:2022:22'] });
    expect(srvctl3VethName('10.78.1.4')).toBe('78-1-4');
    expect(srvctl3VethName('192.168.1.4')).toBeUndefined();
  });

  test('the imported record matches its layout', () => {
    expect(layoutMismatches(record, layout(A_THREE))).toEqual([]);
  });

  test('earlier srvctl 3 (Bridge=10.H.U.x) and a bridge container (Bridge=NAME) match too', () => {
    const earlier = A_THREE.replace('VirtualEthernetExtra=78-1-4', 'Bridge=10.78.1.x');
    expect(layoutMismatches(record, layout(earlier))).toEqual([]);
    const bridged = { ...record, old_ip: null, bridge: 'br0', mapped_ports: [] };
    const text = '## srvctl generated - a-three.ve\n[Network]\nBridge=br0\n## no mapped ports\n';
    expect(layoutMismatches(bridged, layout(text, { networkFiles: ['[Match]\nName=host0\n[Network]\nDHCP=yes\n'] }))).toEqual([]);
    expect(layoutMismatches(bridged, layout(text.replace('br0', 'br1')))).toEqual([
      '/srv/a-three.ve/a-three.ve.nspawn has Bridge=br1, the record says bridge br0',
    ]);
  });

  test('every way a layout can differ from the record is named', () => {
    const wrong = A_THREE.replace('78-1-4', '78-1-5')
      .replace('Port=tcp:2022:22', 'Port=tcp:2023:22\nPort=udp:1194:1194')
      .replace('- a-three.ve', '- a-four.ve');
    expect(
      layoutMismatches(record, layout(wrong, { networkFiles: ['[Network]\nAddress=10.78.1.5/24\n'], ctype: 'mail', rootfs: 'symlink' })),
    ).toEqual([
      '/srv/a-three.ve/rootfs is a symlink',
      '/srv/a-three.ve/a-three.ve.nspawn was generated for a-four.ve',
      '/srv/a-three.ve/a-three.ve.nspawn has VirtualEthernetExtra=78-1-5, not 78-1-4 of 10.78.1.4',
      'its network file says Address=10.78.1.5, not 10.78.1.4',
      '/srv/a-three.ve/a-three.ve.nspawn maps ports tcp:2023:22 udp:1194:1194, the record tcp:2022:22',
      '/srv/a-three.ve/ctype says mail, the record type fedora',
    ]);
    expect(layoutMismatches(record, { rootfs: 'missing', networkFiles: [] })).toEqual([
      'no /srv/a-three.ve/rootfs',
      'no srvctl 3 settings (/srv/a-three.ve/a-three.ve.nspawn or /etc/systemd/nspawn/a-three.ve.nspawn)',
    ]);
    expect(layoutMismatches(record, layout('[Exec]\nBoot=yes\n'))).toEqual([
      '/srv/a-three.ve/a-three.ve.nspawn names no network (VirtualEthernetExtra= or Bridge=)',
      '/srv/a-three.ve/a-three.ve.nspawn maps ports none, the record tcp:2022:22',
    ]);
  });
});

describe('public keys from users/NAME/', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKw48U8NoaX5dlasR1F80uZ5evU3vqI/cPUMMKsfOLJY';
  test('keys from .pub files, comments kept, duplicates and non-key lines dropped; secrets only by name', () => {
    const { keys, leftBehind } = userPublicKeys('alice', [
      { name: '.hash', kind: 'file', size: 129 },
      { name: '.password', kind: 'file', size: 12 },
      { name: 'a.pub', kind: 'file', size: 200, text: `# home\r\n${key}   alice@home  laptop\r\ncommand="x" ${key}\n` },
      { name: 'b.pub', kind: 'file', size: 100, text: `${key} again\n` },
      { name: 'c.pub', kind: 'file', size: 100, text: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n' },
      { name: 'd.pub', kind: 'file', size: 1 << 20 },
      { name: 'e.pub', kind: 'file', size: 5, text: 'hello' },
      { name: 'id_ed25519', kind: 'file', size: 400 },
      { name: 'notes.txt', kind: 'file', size: 4 },
      { name: 'old', kind: 'dir', size: 0 },
      { name: 'reseller_id_rsa.pub', kind: 'symlink', size: 20 },
      { name: 'srvctl_id_rsa.pub', kind: 'file', size: 400, text: `${key} srvctl\n` },
    ]);
    expect(keys).toEqual([`${key} alice@home laptop`]);
    expect(leftBehind).toEqual([
      { path: 'users/alice/.hash', what: 'password hash' },
      { path: 'users/alice/.password', what: 'password' },
      { path: 'users/alice/c.pub', what: 'private key' },
      { path: 'users/alice/d.pub', what: 'too large' },
      { path: 'users/alice/e.pub', what: 'not a public key' },
      { path: 'users/alice/id_ed25519', what: 'private key' },
      { path: 'users/alice/notes.txt', what: 'other' },
      { path: 'users/alice/old', what: 'other' },
      { path: 'users/alice/reseller_id_rsa.pub', what: 'symlink' },
      { path: 'users/alice/srvctl_id_rsa.pub', what: 'internal key' },
    ]);
  });
});

describe('the report schema', () => {
  const report = (): MigrationReport => ({
    format: 'srvctl3-migration/1',
    source: '/var/srvctl3/datastore',
    files: ['clusters.json', 'users.json', 'containers.json', 'srvctl3-migration.json'],
    summary: { clusters: 1, hosts: 1, resellers: 0, users: 1, containers: 1, ssh_keys: 0, dropped: 0, left_behind: 0, warnings: 0 },
    hosts: [{ name: 't1.test.vm', cluster: 'c', old_hostnet: 78, hostnet: 1, containers: 1 }],
    resellers: [],
    users: [{ name: 'a', reseller: 'root', old_user_id: null, user_id: 1, uid: 1001, ssh_keys: 0 }],
    containers: [record],
    dropped: [],
    left_behind: [],
    warnings: [],
  });

  test('a report validates; a wrong one says where', () => {
    expect(reportSchemaErrors(report())).toEqual([]);
    const bad = report() as unknown as Record<string, unknown>;
    (bad.containers as Record<string, unknown>[])[0] = { ...record, ip: '10.33.1.300' };
    (bad.hosts as Record<string, unknown>[])[0] = { name: 't1', cluster: 'c', old_hostnet: 78, hostnet: 16, containers: 1 };
    bad.extra = true;
    expect(reportSchemaErrors(bad)).toEqual([
      '/ must NOT have additional properties',
      '/hosts/0/hostnet must be <= 15',
      '/containers/0/ip must match format "ipv4"',
    ]);
  });

  test('sc adopt reads only a report that validates', () => {
    expect(parseMigrationReport(JSON.stringify(report()), 'r.json').containers).toEqual([record]);
    expect(() => parseMigrationReport('{"format": "srvctl3-migration/1"}', 'r.json')).toThrow(UserError);
    expect(() => parseMigrationReport('{', 'r.json')).toThrow(/r\.json is not valid JSON/);
  });
});
