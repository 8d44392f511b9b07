// The kinds' own validate(model) as the loader runs it: located in the datastore file like the
// schema's diagnostics, errors refuse the datastore, warnings do not, and a datastore the schemas
// already refuse is not handed to the kinds at all.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Model } from '../../../src/datastore/model.js';
import { displayPathOf } from '../../../src/datastore/source-document.js';
import { formatDiagnostic, UserError } from '../../../src/errors.js';
import { loadDesired } from '../../../src/reconciler/desired-state.js';
import { kindProblems } from '../../../src/reconciler/kind-validation.js';
import type { HandlerRegistry, ModelProblem, ResourceHandler } from '../../../src/resources/contract.js';
import { runCli } from '../migration/import-cli.js';

const clusters = 'eu:\n  h1.test:\n    hostnet: 1\n    host_ip: 192.0.2.11\n';
const settings = 'runtime: direct\nproxy:\n  enabled: false\n';

function registry(problems: ModelProblem[], seen: Model[] = []): HandlerRegistry {
  const handler: ResourceHandler<unknown> = {
    kind: 'probe',
    validate: (model) => {
      seen.push(model);
      return problems;
    },
    desired: () => [],
    observe: () => Promise.resolve([]),
    create: () => Promise.resolve(),
    delete: () => Promise.resolve(),
  };
  const quiet: ResourceHandler<unknown> = { ...handler, kind: 'quiet', validate: undefined };
  return { probe: handler, quiet };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sc-kind-validate-'));
  await writeFile(path.join(dir, 'clusters.yaml'), clusters);
  await writeFile(path.join(dir, 'settings.yaml'), settings);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const location = () => ({ dir, readOnly: false, origin: 'option' as const });

it('an error of a kind refuses the datastore, located at its line and JSON path', async () => {
  const problems: ModelProblem[] = [{ severity: 'error', document: 'settings', path: ['proxy', 'enabled'], message: 'no good' }];
  const error = await loadDesired(location(), registry(problems)).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  expect((error as UserError).message).toMatch(/is invalid: 1 error$/);
  expect((error as UserError).diagnostics.map(formatDiagnostic)).toEqual([
    `${displayPathOf(path.join(dir, 'settings.yaml'))}:3:3 /proxy/enabled: no good`,
  ]);
});

it('a warning of a kind is a warning of the load', async () => {
  const problems: ModelProblem[] = [{ severity: 'warning', document: 'clusters', path: ['eu', 'h1.test'], message: 'hm' }];
  const loaded = await loadDesired(location(), registry(problems));
  expect(loaded.warnings.map(formatDiagnostic)).toEqual([`warning: ${displayPathOf(path.join(dir, 'clusters.yaml'))}:2:3 /eu/h1.test: hm`]);
});

it('a datastore the schemas refuse never reaches the kinds', async () => {
  await writeFile(path.join(dir, 'settings.yaml'), 'runtime: sideways\n');
  const seen: Model[] = [];
  const refused = registry([{ severity: 'error', document: 'settings', path: [], message: 'x' }], seen);
  const error = await loadDesired(location(), refused).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof UserError)) throw new Error('expected a refusal');
  expect(seen).toEqual([]);
  expect(error.diagnostics).toHaveLength(1);
});

it('kindProblems: every kind that validates, in registry order, as datastore problems', () => {
  const model = { clusters: {}, users: {}, containers: {}, settings: {} } as Model;
  expect(kindProblems(model, registry([{ severity: 'error', document: 'containers', path: ['a', 'type'], message: 'm' }]))).toEqual([
    { severity: 'error', kind: 'containers', path: ['a', 'type'], message: 'm' },
  ]);
});

describe('through the CLI: examples/invalid/image-package-option', () => {
  const ds = 'examples/invalid/image-package-option';
  const line = `${ds}/settings.yaml:9:9 /images/debian/packages/1: image package "--allow-unauthenticated" is not a valid package name`;

  it('sc validate shows it with file:line and JSON path, exit 1', async () => {
    const result = await runCli(['--datastore', ds, 'validate']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`error: ${line}`);
    const json = await runCli(['--datastore', ds, '-o', 'json', 'validate']);
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      valid: false,
      errors: [{ file: `${ds}/settings.yaml`, line: 9, column: 9, path: '/images/debian/packages/1' }],
    });
  });

  it('sc diff and sc apply refuse it before looking at the host, exit 1', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'sc-kind-validate-root-'));
    try {
      for (const command of [['diff'], ['apply']]) {
        const result = await runCli(['--datastore', ds, '--root', root, '--host', 'web1.example.net', ...command]);
        expect(result.exitCode).toBe(1);
        expect(result.stderr).toContain(line);
      }
      // Nothing was written under --root: no apply record, no state dir.
      expect(await readdir(root)).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
