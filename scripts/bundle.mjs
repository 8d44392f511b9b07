#!/usr/bin/env node
// `npm run build`, second step: bundles the CLI (src/cli/main.ts and everything it imports, npm
// packages included) with esbuild into dist/cli/main.js, replacing tsc's output of that one file.
// Node then reads a few files instead of ~550 when sc starts. Each command's module (the manifest's
// lazy import()s) becomes a chunk beside it, dist/cli/chunk-*.js, loaded only when that command
// runs. The rest of dist/ (tsc's output) stays for what imports sc's modules directly (bench, tests).
import { readdir, rm } from 'node:fs/promises';
import { build } from 'esbuild';

const outdir = new URL('../dist/cli/', import.meta.url);
for (const name of await readdir(outdir).catch(() => [])) {
  if (name.startsWith('chunk-')) await rm(new URL(name, outdir));
}

await build({
  // The ACME worker runs as a process of its own (drivers/acme.ts starts `acme-worker.js` beside
  // the code that starts it): bundled beside main.js too.
  entryPoints: {
    main: new URL('../src/cli/main.ts', import.meta.url).pathname,
    'acme-worker': new URL('../src/drivers/acme-worker.ts', import.meta.url).pathname,
  },
  outdir: outdir.pathname,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Chunks sit in dist/cli like main.js: code that finds files relative to itself (version.ts reads
  // ../../package.json) sees the same layout as in tsc's output.
  chunkNames: 'chunk-[hash]',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS packages in an ES module bundle still call require() for node's own modules, and some
  // use __filename / __dirname (write-file-atomic names its temporary files with it).
  banner: {
    js: [
      "import { createRequire as __scCreateRequire } from 'node:module';",
      "import { fileURLToPath as __scFileURLToPath } from 'node:url';",
      'const require = __scCreateRequire(import.meta.url);',
      'const __filename = __scFileURLToPath(import.meta.url);',
      "const __dirname = __scFileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
  },
});
