// The layers of DESIGN.md, enforced: `npm run check:layers` (part of `npm test`) fails when a
// module imports one it must not.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'resources-no-host-io',
      comment: 'Handlers reach the host only through Drivers (src/drivers): no fs, processes or git of their own.',
      severity: 'error',
      from: { path: '^src/resources/' },
      to: { path: '^(node:)?(fs|fs/promises|child_process)$|^(execa|simple-git|write-file-atomic)$', dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-no-pkg', 'unknown'] },
    },
    {
      name: 'resources-no-datastore-writes',
      comment: 'Handlers read the model; publishing goes through the port the engine provides (HostContext.pki).',
      severity: 'error',
      from: { path: '^src/resources/' },
      to: { path: '^src/datastore/', pathNot: '^src/datastore/(model|model-types\\.generated)\\.ts$' },
    },
    {
      name: 'resources-no-driver-construction',
      comment: 'Handlers get their drivers; they never build one (only type imports and pure helpers of drivers).',
      severity: 'error',
      from: { path: '^src/resources/' },
      to: { path: '^src/drivers/(create-drivers|exec|git|atomic-file|no-follow-fs|lock-file)\\.ts$' },
    },
    {
      name: 'drivers-below-everything',
      comment: 'Drivers know nothing of kinds, plans or the CLI.',
      severity: 'error',
      from: { path: '^src/drivers/' },
      to: { path: '^src/(resources|reconciler|cli|migration)/' },
    },
    {
      name: 'network-is-pure',
      comment: 'The address plan is pure functions: no drivers, no fs, no processes.',
      severity: 'error',
      from: { path: '^src/network/' },
      to: { path: '^src/(drivers|resources|reconciler|cli|datastore/(?!model))|^(node:)?(fs|fs/promises|child_process)$|^execa$', dependencyTypes: ['local', 'core', 'npm', 'npm-no-pkg', 'unknown'] },
    },
    {
      name: 'datastore-knows-no-hosts',
      comment: 'The datastore layer reads and writes desired state; it knows nothing of kinds, plans or the CLI.',
      severity: 'error',
      from: { path: '^src/datastore/' },
      to: { path: '^src/(resources|reconciler|cli)/' },
    },
    {
      name: 'yaml-on-demand',
      comment: 'The yaml package is loaded only when YAML is read (datastore/yaml-module.ts): a JSON datastore never loads it. Type imports are free.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/datastore/yaml-module\\.ts$' },
      to: { path: '(^|/)node_modules/yaml/', dependencyTypesNot: ['type-only', 'type-import'] },
    },
    {
      name: 'yaml-module-imports-on-demand',
      severity: 'error',
      from: { path: '^src/datastore/yaml-module\\.ts$' },
      to: { path: '(^|/)node_modules/yaml/', dependencyTypesNot: ['dynamic-import', 'type-only', 'type-import'] },
    },
    {
      name: 'reconciler-not-cli',
      severity: 'error',
      from: { path: '^src/reconciler/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
