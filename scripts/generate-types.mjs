#!/usr/bin/env node
// Generates src/datastore/model-types.generated.ts from schemas/*.schema.json, so the model's
// TypeScript types and its JSON Schemas have one source. `--check` fails when the file is stale.
import { readFile, writeFile } from 'node:fs/promises';
import { compile } from 'json-schema-to-typescript';

const schemas = ['clusters', 'users', 'containers', 'settings'];
const out = new URL('../src/datastore/model-types.generated.ts', import.meta.url);
const banner =
  '/* eslint-disable */\n// GENERATED from schemas/*.schema.json by scripts/generate-types.mjs. Do not edit by hand: run `npm run gen:types`.\n';

let text = banner;
for (const name of schemas) {
  const schema = JSON.parse(await readFile(new URL(`../schemas/${name}.schema.json`, import.meta.url), 'utf8'));
  const ts = await compile(schema, schema.title, {
    bannerComment: '',
    additionalProperties: false,
    unreachableDefinitions: true,
    format: true,
    style: { singleQuote: true, printWidth: 110 },
  });
  text += `\n// ---- schemas/${name}.schema.json ----\n` + ts;
}

if (process.argv.includes('--check')) {
  const current = await readFile(out, 'utf8').catch(() => '');
  if (current !== text) {
    console.error('src/datastore/model-types.generated.ts is out of date with schemas/: run `npm run gen:types`.');
    process.exit(1);
  }
  console.log('generated model types are current');
} else {
  await writeFile(out, text);
  console.log(`wrote ${out.pathname}`);
}
