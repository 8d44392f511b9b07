// Property tests (fast-check) of the plan over a generated farm: no bridge collisions anywhere,
// and container allocation under random adds and deletes stays unique, in range and hole-filling.
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import type { Users } from '../../../src/datastore/model.js';
import {
  CONTAINER_FIRST_HOST,
  CONTAINER_LAST_HOST,
  PlanError,
  allocateContainerAddress,
  hostnetCidr,
  locateAddress,
  lowestFree,
  userSubnet,
  type UserNet,
} from '../../../src/network/address-plan.js';
import { bridgeName, isValidInterfaceName, parseBridgeName } from '../../../src/network/interface-names.js';
import { resolveUserNet } from '../../../src/network/user-network.js';

const USER_IDS = Array.from({ length: 255 }, (_, i) => i + 1);
const USERS_PER_RESELLER = 250;

/** users.json for root + 15 resellers, each of the 16 with 250 users under randomly drawn user_ids. */
const farmArbitrary = fc.record({
  hostnets: fc.uniqueArray(fc.integer({ min: 1, max: 15 }), { minLength: 2, maxLength: 4 }),
  resellerIds: fc.shuffledSubarray(USER_IDS.slice(0, 15), { minLength: 15, maxLength: 15 }),
  userIdsPerReseller: fc.array(fc.shuffledSubarray(USER_IDS, { minLength: USERS_PER_RESELLER, maxLength: USERS_PER_RESELLER }), {
    minLength: 16,
    maxLength: 16,
  }),
});

function buildFarm(resellerIds: number[], userIdsPerReseller: number[][]): Users {
  const users: Users = {};
  const rootIds = userIdsPerReseller[0] ?? [];
  // The 15 resellers are users of root, so they take the first 15 of root's user_ids.
  resellerIds.forEach((resellerId, i) => {
    users[`reseller${resellerId}`] = { reseller: 'root', reseller_id: resellerId, user_id: rootIds[i] };
  });
  rootIds.slice(resellerIds.length).forEach((userId, i) => {
    users[`rootuser${i}`] = i % 2 === 0 ? { reseller: 'root', user_id: userId } : { user_id: userId };
  });
  for (let resellerId = 1; resellerId <= 15; resellerId++) {
    (userIdsPerReseller[resellerId] ?? []).forEach((userId, i) => {
      users[`r${resellerId}user${i}`] = { reseller: `reseller${resellerId}`, user_id: userId };
    });
  }
  return users;
}

describe('a farm of 16 resellers × 250 users on several hostnets', () => {
  it('gives every (host, user) its own /24 and bridge name, inside the host’s /12', () => {
    fc.assert(
      fc.property(farmArbitrary, ({ hostnets, resellerIds, userIdsPerReseller }) => {
        const users = buildFarm(resellerIds, userIdsPerReseller);
        const usernames = Object.keys(users);
        expect(usernames).toHaveLength(16 * USERS_PER_RESELLER);
        const cidrs = new Set<string>();
        const names = new Set<string>();
        const problems: string[] = [];
        for (const hostnet of hostnets) {
          const hostRange = ipaddr.IPv4.parseCIDR(hostnetCidr(hostnet));
          for (const username of usernames) {
            const n = resolveUserNet(users, username, hostnet);
            if ('problem' in n) {
              problems.push(n.problem);
              continue;
            }
            const subnet = userSubnet(n);
            const name = bridgeName(n);
            if (cidrs.has(subnet.cidr)) problems.push(`${username}@${hostnet}: duplicate ${subnet.cidr}`);
            if (names.has(name)) problems.push(`${username}@${hostnet}: duplicate ${name}`);
            cidrs.add(subnet.cidr);
            names.add(name);
            if (!isValidInterfaceName(name) || parseBridgeName(name) === undefined) {
              problems.push(`${username}@${hostnet}: bad name ${name}`);
            }
            if (!ipaddr.IPv4.parse(subnet.bridgeAddress).match(hostRange)) {
              problems.push(`${username}@${hostnet}: ${subnet.cidr} outside ${hostnetCidr(hostnet)}`);
            }
            const located = locateAddress(subnet.bridgeAddress);
            if (located?.role !== 'bridge' || located.hostnet !== hostnet || located.resellerId !== n.resellerId || located.userId !== n.userId) {
              problems.push(`${username}@${hostnet}: ${subnet.bridgeAddress} located as ${JSON.stringify(located)}`);
            }
          }
        }
        expect(problems).toEqual([]);
        expect(cidrs.size).toBe(hostnets.length * usernames.length);
      }),
      { numRuns: 8 },
    );
  });
});

type Step = { op: 'add'; who: number } | { op: 'remove'; pick: number };

const userNetArbitrary = fc.record({
  hostnet: fc.integer({ min: 1, max: 15 }),
  resellerId: fc.integer({ min: 0, max: 15 }),
  userId: fc.integer({ min: 1, max: 255 }),
});

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('add' as const), who: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
);

function prefixOf(n: UserNet): string {
  return `10.${16 * n.hostnet + n.resellerId}.${n.userId}.`;
}

/** Reference model: the lowest container host part not yet taken in this user's /24. */
function expectedHostPart(n: UserNet, used: readonly string[]): number | undefined {
  const prefix = prefixOf(n);
  const taken = new Set(used);
  for (let hostPart = CONTAINER_FIRST_HOST; hostPart <= CONTAINER_LAST_HOST; hostPart++) {
    if (!taken.has(`${prefix}${hostPart}`)) return hostPart;
  }
  return undefined;
}

describe('allocateContainerAddress under random adds and deletes', () => {
  it('never duplicates, never leaves .20–.200, and always takes the lowest hole', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(userNetArbitrary, {
          minLength: 1,
          maxLength: 3,
          selector: (n) => `${n.hostnet}/${n.resellerId}/${n.userId}`,
        }),
        // Stored addresses of the first user before the run: random holes, in random order.
        fc.uniqueArray(fc.integer({ min: CONTAINER_FIRST_HOST, max: CONTAINER_LAST_HOST }), { maxLength: 181, size: 'max' }),
        // Unrelated addresses (other users, other networks, junk) that must be ignored.
        fc.array(fc.oneof(fc.ipV4(), fc.string({ maxLength: 8 })), { maxLength: 20 }),
        fc.array(stepArbitrary, { maxLength: 400, size: 'max' }),
        (nets, storedHostParts, noise, steps) => {
          const first = nets[0] as UserNet;
          const foreign = noise.filter((text) => !nets.some((n) => text.startsWith(prefixOf(n))));
          const used: string[] = [...storedHostParts.map((h) => `${prefixOf(first)}${h}`), ...foreign];
          // Plain checks collected per run: a jest expect() per step would dominate the run time.
          const problems: string[] = [];
          for (const step of steps) {
            if (step.op === 'remove') {
              if (used.length > 0) used.splice(step.pick % used.length, 1);
              continue;
            }
            const n = nets[step.who % nets.length] as UserNet;
            const expected = expectedHostPart(n, used);
            let ip: string;
            try {
              ip = allocateContainerAddress(n, used, 'someone');
            } catch (error) {
              if (expected !== undefined || !(error instanceof PlanError)) problems.push(`threw ${String(error)}`);
              continue;
            }
            if (expected === undefined) problems.push(`allocated ${ip} in a full /24`);
            if (ip !== `${prefixOf(n)}${String(expected)}`) problems.push(`${ip}, expected host part ${String(expected)}`);
            if (used.includes(ip)) problems.push(`${ip} is already in use`);
            const located = locateAddress(ip);
            if (located?.role !== 'container' || located.hostPart < CONTAINER_FIRST_HOST || located.hostPart > CONTAINER_LAST_HOST) {
              problems.push(`${ip} is not a container address`);
            }
            used.push(ip);
          }
          expect(problems).toEqual([]);
          // No allocation ever produced a duplicate address.
          const planned = used.filter((ip) => nets.some((n) => ip.startsWith(prefixOf(n))));
          expect(new Set(planned).size).toBe(planned.length);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('fills a /24 completely, then refuses', () => {
    fc.assert(
      fc.property(userNetArbitrary, (n) => {
        const used: string[] = [];
        for (let i = 0; i < 181; i++) used.push(allocateContainerAddress(n, used));
        expect(used[0]).toBe(`${prefixOf(n)}20`);
        expect(used[180]).toBe(`${prefixOf(n)}200`);
        expect(() => allocateContainerAddress(n, used)).toThrow(/is full/);
      }),
      { numRuns: 10 },
    );
  });
});

describe('lowestFree', () => {
  it('agrees with a plain scan and never returns a used or out-of-range value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 300 }), { maxLength: 300 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        (used, a, b) => {
          const [min, max] = a <= b ? [a, b] : [b, a];
          let expected: number | undefined;
          for (let v = min; v <= max && expected === undefined; v++) if (!used.includes(v)) expected = v;
          expect(lowestFree(used, min, max)).toBe(expected);
        },
      ),
    );
  });
});
