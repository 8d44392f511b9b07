// srvctl 3's rule for the host port of `sc map-port` without an explicit one.
import fc from 'fast-check';
import { AUTO_RESERVED_HOST_PORTS, chooseHostPort, preferredHostPort } from '../../../src/datastore/host-port-choice.js';

test.each([
  [22, 2022],
  [25, 2025],
  [3, 1027],
  [19, 1043],
  [80, 3080],
  [443, 3443],
  [1194, 1194],
  [3306, 3306],
  [8080, 6080],
  [5001, 3001],
  [10000, 10001], // 10000 stays, is reserved, the scan moves on
  [5950, 3950],
])('container port %i → host port %i', (containerPort, hostPort) => {
  expect(chooseHostPort(containerPort, new Set())).toBe(hostPort);
});

test('skips ports already mapped on the host and reserved ranges while scanning', () => {
  expect(chooseHostPort(22, new Set([2022]))).toBe(2023);
  expect(chooseHostPort(22, new Set([2022, 2023, 2024]))).toBe(2025);
  expect(preferredHostPort(7899)).toBe(5899);
  expect(chooseHostPort(7899, new Set([5899]))).toBe(6001);
});

test('runs out above 65535', () => {
  expect(chooseHostPort(65535, new Set([65535]))).toBeUndefined();
});

test('never picks a reserved or used port', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { maxLength: 50 }), (port, used) => {
      const chosen = chooseHostPort(port, new Set(used));
      if (chosen === undefined) return;
      expect(used).not.toContain(chosen);
      expect(AUTO_RESERVED_HOST_PORTS.some((r) => chosen >= r.first && chosen <= r.last)).toBe(false);
      expect(chosen).toBeGreaterThanOrEqual(preferredHostPort(port));
    }),
  );
});
