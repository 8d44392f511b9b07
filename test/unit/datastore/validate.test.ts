// Validation of in-memory documents (validateDocuments): readable schema messages, name rules,
// and the cross-checks of SPEC §1/§2, including a property test over generated farms.
import fc from 'fast-check';
import { validateDocuments, type Documents, type LoadOptions } from '../../../src/datastore/load-datastore.js';
import { sourceDocumentFromText } from '../../../src/datastore/source-document.js';
import { DATASTORE_KINDS } from '../../../src/datastore/model.js';
import { formatDiagnostic } from '../../../src/errors.js';
import { allocateContainerAddress } from '../../../src/network/address-plan.js';
import { resolveUserNet } from '../../../src/network/user-network.js';

type Data = Record<string, unknown>;
interface Farm {
  clusters?: unknown;
  users?: unknown;
  containers?: unknown;
  settings?: unknown;
}

function documentsOf(farm: Farm): Documents {
  const documents: Documents = {};
  for (const kind of DATASTORE_KINDS) {
    if (farm[kind] !== undefined) documents[kind] = sourceDocumentFromText(kind, `/ds/${kind}.json`, JSON.stringify(farm[kind], null, 2));
  }
  return documents;
}

/** `path message` of each error. */
function errorsOf(farm: Farm, options?: LoadOptions): string[] {
  return validateDocuments(documentsOf(farm), options)
    .diagnostics.filter((d) => d.severity === 'error')
    .map((d) => `${d.path} ${d.message}`);
}

function warningsOf(farm: Farm): string[] {
  return validateDocuments(documentsOf(farm))
    .diagnostics.filter((d) => d.severity === 'warning')
    .map((d) => `${d.path} ${d.message}`);
}

function base(): { clusters: Data; users: Record<string, Data>; containers: Record<string, Data> } {
  return {
    clusters: {
      eu: {
        'web1.example.net': { hostnet: 1, host_ip: '192.0.2.11', ca: true },
        'web2.example.net': { hostnet: 2, host_ip: '198.51.100.12' },
      },
    },
    users: {
      alpha: { reseller: 'root', reseller_id: 1, user_id: 1, uid: 1001 },
      r: { reseller: 'root', user_id: 2, uid: 1002 },
      alice: { reseller: 'alpha', user_id: 3, uid: 1003 },
    },
    containers: {
      'shop.example.com': {
        user: 'alice',
        host: 'web1.example.net',
        type: 'debian',
        ip: '10.17.3.20',
        mapped_ports: [{ proto: 'tcp', host_port: 2022, container_port: 22 }],
      },
      'www.example.com': { user: 'r', host: 'web1.example.net', type: 'busybox', ip: '10.16.2.20' },
    },
  };
}

const container = (user: string, ip: string, extra: Data = {}): Data => ({ user, host: 'web1.example.net', type: 'debian', ip, ...extra });

test('the base farm is valid, and the model comes back even when invalid', () => {
  expect(errorsOf(base())).toEqual([]);
  const farm = base();
  farm.containers['shop.example.com'] = container('bob', '10.17.3.20');
  const { model, diagnostics } = validateDocuments(documentsOf(farm));
  expect(diagnostics).toHaveLength(1);
  expect(model.containers['shop.example.com']?.user).toBe('bob');
  expect(formatDiagnostic(diagnostics[0] ?? { severity: 'error', message: '' })).toBe(
    '/ds/containers.json:3:5 /shop.example.com/user: unknown user "bob"',
  );
});

describe('names', () => {
  const withContainer = (name: string): Farm => {
    const farm = base();
    farm.containers[name] = container('alice', '10.17.3.21');
    return farm;
  };
  const label61 = 'a'.repeat(61);

  test.each([`${label61}.bc`, 'a', 'x-1.example.com', '1.example.com'])('container name %s is valid', (name) => {
    expect(errorsOf(withContainer(name))).toEqual([]);
  });

  test.each([
    `${label61}.bcd`, // 65 characters: longer than a machine name may be
    'shop..example.com',
    '-shop.example.com',
    'shop-.example.com',
    'Shop.example.com',
    'shop.example.com.',
    'shop/example',
    '../../etc',
    'shop example.com',
    'a;rm -rf x',
    '$(reboot)',
    '',
  ])('container name %j is rejected with a readable rule', (name) => {
    expect(errorsOf(withContainer(name))).toEqual([
      `/${name.replace(/~/g, '~0').replace(/\//g, '~1')} invalid container name ${JSON.stringify(name)}: must be a lowercase DNS name (letters, digits, '-' and '.'), at most 64 characters`,
    ]);
  });

  test.each(['a'.repeat(33), '1abc', 'al.ice', '-x', 'x-', 'Alice', '..', 'root/x'])('user name %j is rejected', (name) => {
    const farm = base();
    farm.users[name] = { reseller: 'root', user_id: 9, uid: 1009 };
    const errors = errorsOf(farm);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`invalid user name ${JSON.stringify(name)}: must be a lowercase DNS label`);
  });

  test('a 32-character user name is fine; an owner name is checked like a user name', () => {
    const farm = base();
    farm.users['a'.repeat(32)] = { reseller: 'root', user_id: 9, uid: 1009 };
    expect(errorsOf(farm)).toEqual([]);
    farm.containers['shop.example.com'] = container('Alice', '10.17.3.20');
    expect(errorsOf(farm)).toEqual([
      '/shop.example.com/user invalid user name "Alice": must be a lowercase DNS label (letters, digits and \'-\') starting with a letter, at most 32 characters',
      '/shop.example.com/user unknown user "Alice"',
    ]);
  });
});

describe('schema messages', () => {
  test('types, ranges, enums, formats, required fields', () => {
    const farm = base();
    const hosts = (farm.clusters.eu ?? {}) as Record<string, Data>;
    hosts['web2.example.net'] = { hostnet: 0, host_ip: '198.51.100.12', host_ipv6: 'fe80::zz', ca: 'yes' };
    hosts['web3.example.net'] = { hostnet: 3 };
    farm.containers['shop.example.com'] = container('alice', '10.17.3.20', {
      mapped_ports: [{ proto: 'icmp', host_port: 70000, container_port: 22 }],
      enabled: 'no',
      http_port: '80a',
    });
    expect(errorsOf(farm)).toEqual([
      '/eu/web2.example.net/hostnet 0 is out of range: must be an integer from 1 to 15 (hostnet H owns 10.(16·H).0.0/12)',
      '/eu/web2.example.net/host_ipv6 "fe80::zz" is not an IPv6 address',
      '/eu/web2.example.net/ca must be true or false, not "yes"',
      '/eu/web3.example.net missing required field "host_ip"',
      '/shop.example.com/mapped_ports/0/proto must be one of "tcp", "udp", not "icmp"',
      '/shop.example.com/mapped_ports/0/host_port 70000 is out of range: must be an integer from 1 to 65535',
      '/shop.example.com/enabled must be true or false, not "no"',
      '/shop.example.com/http_port invalid port "80a": must be a port number',
    ]);
  });

  test('a document that is not a mapping', () => {
    const { diagnostics } = validateDocuments(documentsOf({ ...base(), users: ['alice'] }));
    // Only the one problem: the containers' owners are not reported unknown because of it.
    expect(diagnostics.map(formatDiagnostic)).toEqual(['/ds/users.json:1:1 /: must be an object (a mapping of names to values), not a list']);
  });

  test('settings: closed sub-objects name their known fields', () => {
    expect(errorsOf({ ...base(), settings: { prune: { max_delete: 0.5 }, images: { debian: { builder: 'apt' } } } })).toEqual([
      '/prune/max_delete unknown field "max_delete" (known: max_delete_share, data)',
      '/images/debian/builder must be one of "busybox", "debootstrap", "dnf", not "apt"',
    ]);
  });

  test("settings.user_vpn.port: not one of the host links' ports; a port number", () => {
    expect(errorsOf({ ...base(), settings: { user_vpn: { port: 1300 } } })).toEqual([]);
    expect(errorsOf({ ...base(), settings: { user_vpn: { port: 11018 } } })).toEqual([
      '/user_vpn/port udp port 11018 is in 11000–11255, the ports of the VPN links between hosts; choose another port for the user VPN (default 1194)',
    ]);
    expect(errorsOf({ ...base(), settings: { user_vpn: { port: 70000 } } })).toHaveLength(1);
  });

  test('redirects: none, the other scheme, or a URL that cannot inject proxy configuration', () => {
    const farm = base();
    const shop = farm.containers['shop.example.com'] ?? {};
    for (const ok of ['none', 'https', 'https://shop.example.org/path?x=1']) {
      shop['http-redirect'] = ok;
      expect(errorsOf(farm)).toEqual([]);
    }
    shop['http-redirect'] = 'https://evil.example.org/\n  use_backend other';
    shop['https-redirect'] = 'https';
    expect(errorsOf(farm)).toEqual([
      expect.stringMatching(/^\/shop\.example\.com\/http-redirect invalid http-redirect .*: must be "none", "https" or an http\(s\) URL/),
      expect.stringMatching(/^\/shop\.example\.com\/https-redirect invalid https-redirect "https": must be "none", "http" or/),
    ]);
  });

  test('an SSH key must be one line', () => {
    const farm = base();
    farm.users.alice = { ...farm.users.alice, ssh_keys: ['ssh-ed25519 AAAA a@b\nssh-ed25519 BBBB evil@x'] };
    expect(errorsOf(farm)).toEqual([expect.stringMatching(/^\/alice\/ssh_keys\/0 invalid SSH key .*: must be one line$/)]);
  });
});

describe('users', () => {
  const withUsers = (users: Record<string, Data>): ReturnType<typeof base> => ({ ...base(), users: { ...base().users, ...users } });

  test('root may be omitted or listed as reseller 0 / user 0, and may own containers in 10.(16H).0.0/24', () => {
    const farm = withUsers({ root: { name: 'Admin', reseller_id: 0, user_id: 0, uid: 0 } });
    farm.containers['admin.example.com'] = container('root', '10.16.0.20');
    expect(errorsOf(farm)).toEqual([]);
  });

  test('a listed root says nothing else', () => {
    expect(errorsOf(withUsers({ root: { reseller_id: 2, user_id: 5, uid: 0, reseller: 'alpha' } }))).toEqual([
      "/root/reseller_id root's reseller_id is always 0, not 2",
      "/root/user_id root's user_id is always 0, not 5",
      '/root/reseller root has no reseller, not "alpha"',
    ]);
  });

  test('reseller rules', () => {
    expect(
      errorsOf(
        withUsers({
          bravo: { reseller: 'root', reseller_id: 0, user_id: 4, uid: 1004 },
          carol: { reseller: 'alpha', reseller_id: 3, user_id: 4, uid: 1005 },
          dave: { reseller: 'dave', user_id: 1, uid: 1006 },
        }),
      ),
    ).toEqual([
      "/bravo/reseller_id reseller_id 0 is root's; a reseller's id is 1–15",
      '/carol/reseller_id reseller_id is only for resellers, which belong to root; "carol" belongs to reseller "alpha"',
      '/dave/reseller "dave" names itself as its reseller; a reseller belongs to "root" (set reseller: root)',
    ]);
  });

  test("user_id is per reseller, 0 is root's; uid is global and not a system uid", () => {
    expect(
      errorsOf(
        withUsers({
          bravo: { reseller: 'root', reseller_id: 2, user_id: 4, uid: 1004 },
          bob: { reseller: 'bravo', user_id: 3, uid: 1005 }, // 3 is alice's too, but under alpha: fine
          zed: { reseller: 'root', user_id: 0, uid: 999 },
          zoe: { reseller: 'root', user_id: 2, uid: 1005 },
        }),
      ),
    ).toEqual([
      "/zed/user_id user_id 0 is root's; users are 1–255",
      '/zed/uid uid 999 belongs to the system range; users get uids from 1000 up',
      `/zoe/user_id user_id 2 is also "r"'s; user_ids are unique among the users of root`,
      `/zoe/uid uid 1005 is also "bob"'s; every user needs its own uid`,
    ]);
  });

  test('with allowUnallocated, a reseller without reseller_id and users without ids pass (sc allocate fills them in)', () => {
    const farm: Farm = {
      ...base(),
      users: { alpha: { reseller: 'root' }, alice: { reseller: 'alpha' } },
      containers: { 'shop.example.com': { user: 'alice', host: 'web1.example.net', type: 'debian' } },
    };
    expect(errorsOf(farm, { allowUnallocated: true })).toEqual([]);
    expect(errorsOf(farm)).toHaveLength(6);
  });
});

describe('containers', () => {
  test('a container on a custom bridge needs no planned address', () => {
    const farm = base();
    farm.containers['lan.example.com'] = { user: 'alice', host: 'web1.example.net', type: 'debian', bridge: 'br-lan' };
    farm.containers['lan2.example.com'] = container('alice', '192.168.7.5', { bridge: 'br-lan' });
    expect(errorsOf(farm)).toEqual([]);
  });

  test('disabled containers keep their address: a duplicate is still a duplicate', () => {
    const farm = base();
    farm.containers['old.example.com'] = container('alice', '10.17.3.20', { enabled: false });
    expect(errorsOf(farm)).toEqual(['/old.example.com/ip ip 10.17.3.20 is also the address of "shop.example.com"']);
  });

  test("an address on the wrong host's hostnet does not fit the plan", () => {
    const farm = base();
    farm.containers['eu2.example.com'] = { ...container('alice', '10.17.3.21'), host: 'web2.example.net' };
    expect(errorsOf(farm)).toEqual([
      "/eu2.example.com/ip on web2.example.net: 10.17.3.21 is not in the owner's /24 10.33.3.0/24 (hostnet 2, reseller_id 1, user_id 3)",
    ]);
  });

  test('mapped ports are unique per host and protocol', () => {
    const farm = base();
    farm.containers['www.example.com'] = container('r', '10.16.2.20', {
      mapped_ports: [
        { proto: 'udp', host_port: 2022, container_port: 22 },
        { proto: 'tcp', host_port: 2080, container_port: 80 },
        { proto: 'tcp', host_port: 2080, container_port: 8080 },
      ],
    });
    farm.containers['eu2.example.com'] = {
      ...container('alice', '10.33.3.20'),
      host: 'web2.example.net',
      mapped_ports: [{ proto: 'tcp', host_port: 2022, container_port: 22 }],
    };
    expect(errorsOf(farm)).toEqual([
      '/www.example.com/mapped_ports/2/host_port tcp port 2080 on web1.example.net is taken: this container already maps it',
    ]);
  });

  test("aliases are not other containers' names or aliases", () => {
    const farm = base();
    farm.containers['shop.example.com'] = container('alice', '10.17.3.20', { aliases: ['shop.example.com', 'shop.example.org'] });
    farm.containers['blog.example.com'] = container('alice', '10.17.3.21', { aliases: ['shop.example.org', 'www.example.com'] });
    expect(errorsOf(farm)).toEqual([
      '/blog.example.com/aliases/0 alias "shop.example.org" is also an alias or altname of "shop.example.com"',
      '/blog.example.com/aliases/1 alias "www.example.com" is the name of another container',
    ]);
  });

  test('altnames share one namespace with aliases and container names', () => {
    const farm = base();
    farm.containers['shop.example.com'] = container('alice', '10.17.3.20', { aliases: ['shop.example.org'] });
    farm.containers['blog.example.com'] = container('alice', '10.17.3.21', { altnames: ['shop.example.org', 'www.example.com', 'blog.example.net'] });
    expect(errorsOf(farm)).toEqual([
      '/blog.example.com/altnames/0 altname "shop.example.org" is also an alias or altname of "shop.example.com"',
      '/blog.example.com/altnames/1 altname "www.example.com" is the name of another container',
    ]);
  });

  test('tcp 80 and 443 belong to the reverse proxy where it runs', () => {
    const ports = [
      { proto: 'tcp', host_port: 80, container_port: 80 },
      { proto: 'udp', host_port: 443, container_port: 443 },
      { proto: 'tcp', host_port: 443, container_port: 443 },
    ];
    const farm = base();
    farm.containers['shop.example.com'] = container('alice', '10.17.3.20', { mapped_ports: ports });
    expect(errorsOf(farm)).toEqual([
      "/shop.example.com/mapped_ports/0/host_port tcp port 80 on web1.example.net belongs to sc's reverse proxy; map another port, or set reverse_proxy of web1.example.net to something else than haproxy",
      "/shop.example.com/mapped_ports/2/host_port tcp port 443 on web1.example.net belongs to sc's reverse proxy; map another port, or set reverse_proxy of web1.example.net to something else than haproxy",
    ]);
    expect(errorsOf({ ...farm, settings: { proxy: { enabled: false } } })).toEqual([]);
    const other = base();
    const eu = (other.clusters as { eu: Record<string, Data> }).eu;
    eu['web1.example.net'] = { ...eu['web1.example.net'], reverse_proxy: 'nginx' };
    other.containers['shop.example.com'] = container('alice', '10.17.3.20', { mapped_ports: ports });
    expect(errorsOf(other)).toEqual([]);
  });

  test('181 containers of one user fit on one host; the 182nd is one error, without an allocate hint', () => {
    const farm = base();
    farm.containers = {};
    for (let i = 0; i < 181; i++) farm.containers[`s${i}.example.com`] = container('alice', `10.17.3.${20 + i}`);
    expect(errorsOf(farm)).toEqual([]);
    farm.containers['s181.example.com'] = { user: 'alice', host: 'web1.example.net', type: 'debian' };
    expect(errorsOf(farm)).toEqual([
      '/s181.example.com user "alice" has 182 containers on web1.example.net, more than the 181 addresses .20–.200 of its /24 hold; move some to another host or another user',
    ]);
  });
});

describe('clusters', () => {
  test('hostnets are unique across clusters; one CA per cluster; a host in one cluster', () => {
    const farm = base();
    farm.clusters.us = {
      'web3.example.net': { hostnet: 2, host_ip: '203.0.113.13', ca: true },
      'web4.example.net': { hostnet: 4, host_ip: '203.0.113.14', ca: true },
      'web1.example.net': { hostnet: 5, host_ip: '203.0.113.15' },
    };
    expect(errorsOf(farm)).toEqual([
      '/us/web3.example.net/hostnet hostnet 2 is also used by web2.example.net; every host needs its own hostnet (1–15)',
      '/us/web4.example.net/ca cluster "us" has more than one certificate authority: web3.example.net is already ca: true',
      '/us/web1.example.net host "web1.example.net" is also in cluster "eu"; a host belongs to one cluster',
    ]);
  });
});

describe('unknown fields', () => {
  test('warn on hosts, users and containers (with a suggestion); srvctl 3 fields pass silently', () => {
    const farm = base();
    ((farm.clusters.eu as Record<string, Data>)['web1.example.net'] as Data).hostnt = 1;
    ((farm.clusters.eu as Record<string, Data>)['web1.example.net'] as Data).dns_server = 'master';
    (farm.users.alice as Data).naem = 'Alice';
    (farm.containers['www.example.com'] as Data).creation_time = '2020.04.05-12:00:00';
    (farm.containers['www.example.com'] as Data).colour = 'blue';
    expect(errorsOf(farm)).toEqual([]);
    expect(warningsOf(farm)).toEqual([
      '/eu/web1.example.net/hostnt unknown field "hostnt" on host "web1.example.net" is ignored (did you mean "hostnet"?)',
      '/alice/naem unknown field "naem" on user "alice" is ignored (did you mean "name"?)',
      '/www.example.com/colour unknown field "colour" on container "www.example.com" is ignored',
    ]);
  });
});

describe('certificate authority', () => {
  test('a cluster of several hosts without ca: true is valid but warned about (no tunnels); a single host needs none', () => {
    const farm = base();
    delete ((farm.clusters.eu as Record<string, Data>)['web1.example.net'] as Data).ca;
    farm.clusters.solo = { 'web9.example.net': { hostnet: 9, host_ip: '192.0.2.99' } };
    expect(errorsOf(farm)).toEqual([]);
    expect(warningsOf(farm)).toEqual([
      '/eu cluster "eu" has 2 hosts but none with ca: true: its hosts get no certificates and no VPN tunnels; mark one host ca: true',
    ]);
  });
});

describe('generated farms (property)', () => {
  // Resellers × users × hosts, addresses allocated by the network plan: always valid; one
  // duplicated address is always exactly one error.
  const farmArbitrary = fc.record({
    resellers: fc.integer({ min: 1, max: 4 }),
    usersPerReseller: fc.integer({ min: 1, max: 4 }),
    hosts: fc.integer({ min: 1, max: 3 }),
    placements: fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 2, maxLength: 40 }),
  });

  interface FarmShape {
    resellers: number;
    usersPerReseller: number;
    hosts: number;
    placements: [number, number][];
  }

  function generate(p: FarmShape): Farm & { containers: Record<string, Data> } {
    const hosts: Record<string, Data> = {};
    for (let h = 1; h <= p.hosts; h++) hosts[`web${h}.example.net`] = { hostnet: h, host_ip: `192.0.2.${h}` };
    const users: Record<string, Data> = {};
    let uid = 1000;
    for (let r = 1; r <= p.resellers; r++) {
      users[`res${r}`] = { reseller: 'root', reseller_id: r, user_id: r, uid: ++uid };
      for (let u = 1; u <= p.usersPerReseller; u++) users[`u${r}x${u}`] = { reseller: `res${r}`, user_id: u, uid: ++uid };
    }
    const names = Object.keys(users);
    const containers: Record<string, Data> = {};
    const used: string[] = [];
    p.placements.forEach(([userPick, hostPick], i) => {
      const user = names[userPick % names.length] ?? 'res1';
      const hostnet = (hostPick % p.hosts) + 1;
      const net = resolveUserNet(users, user, hostnet);
      if ('problem' in net) throw new Error(net.problem);
      const ip = allocateContainerAddress(net, used);
      used.push(ip);
      containers[`c${i}.example.com`] = { user, host: `web${hostnet}.example.net`, type: 'busybox', ip };
    });
    return { clusters: { farm: hosts }, users, containers };
  }

  test('valid as generated; one duplicated address is exactly one error', () => {
    fc.assert(
      fc.property(farmArbitrary, fc.nat(), (p, pick) => {
        const farm = generate(p);
        expect(errorsOf(farm)).toEqual([]);
        const names = Object.keys(farm.containers);
        const victim = names[1 + (pick % (names.length - 1))] ?? '';
        const first = farm.containers[names[0] ?? ''] ?? {};
        farm.containers[victim] = { ...first };
        expect(errorsOf(farm)).toEqual([`/${victim}/ip ip ${String(first.ip)} is also the address of "${names[0]}"`]);
      }),
      { numRuns: 40 },
    );
  });
});
