#!/usr/bin/env node
// Compiles the JSON Schemas (schemas/*.schema.json) into plain validation functions at build time
// (ajv "standalone" code), so sc never compiles a schema when it runs: ajv is not even loaded.
//   src/datastore/schema-validators.generated.ts   clusters, users, containers, settings (+ their known fields)
//   src/migration/migration-report-validator.generated.ts   srvctl3-migration
// `--check` fails when a generated file is stale (npm pretest runs it).
import { readFile, writeFile } from 'node:fs/promises';
import ajv2020Module from 'ajv/dist/2020.js';
import ajvFormatsModule from 'ajv-formats';
import standaloneModule from 'ajv/dist/standalone/index.js';
import ucs2lengthModule from 'ajv/dist/runtime/ucs2length.js';

const Ajv2020 = ajv2020Module.default;
const addFormats = ajvFormatsModule.default;
const standaloneCode = standaloneModule.default;
const ucs2length = ucs2lengthModule.default;

const banner = (what) =>
  `/* eslint-disable */\n// @ts-nocheck\n// GENERATED from ${what} by scripts/generate-validators.mjs (ajv standalone code). Do not edit by hand: run \`npm run gen:validators\`.\n`;

const readSchema = async (name) => JSON.parse(await readFile(new URL(`../schemas/${name}.schema.json`, import.meta.url), 'utf8'));

/** ajv's standalone module as ESM; its one runtime helper (string length in code points) inlined. */
function moduleCode(ajv, refs) {
  const code = standaloneCode(ajv, refs);
  const helper = 'require("ajv/dist/runtime/ucs2length").default';
  return `${code.includes(helper) ? `${ucs2length.toString()}\n` : ''}${code.split(helper).join('ucs2length')}\n`;
}

async function datastoreValidators() {
  // The options schema-validation.ts relies on: every error (allErrors), with its data and schema (verbose).
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, code: { source: true, esm: true } });
  addFormats(ajv, ['ipv4', 'ipv6']);
  const kinds = ['clusters', 'users', 'containers', 'settings'];
  const refs = {};
  const known = {};
  for (const kind of kinds) {
    const schema = await readSchema(kind);
    ajv.addSchema(schema, kind);
    refs[kind] = kind;
    if (kind !== 'settings') {
      const object = { clusters: 'host', users: 'user', containers: 'container' }[kind];
      known[object] = Object.keys(schema.$defs?.[object]?.properties ?? {});
    }
  }
  return `${banner('schemas/{clusters,users,containers,settings}.schema.json')}\n/** The fields each object's schema defines (unknown ones are warned about). */\nexport const KNOWN_FIELDS = ${JSON.stringify(known)};\n${moduleCode(ajv, refs)}`;
}

async function migrationReportValidator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, code: { source: true, esm: true } });
  addFormats(ajv, ['ipv4']);
  ajv.addSchema(await readSchema('srvctl3-migration'), 'migrationReport');
  return `${banner('schemas/srvctl3-migration.schema.json')}${moduleCode(ajv, { migrationReport: 'migrationReport' })}`;
}

const outputs = [
  ['src/datastore/schema-validators.generated.ts', await datastoreValidators()],
  ['src/migration/migration-report-validator.generated.ts', await migrationReportValidator()],
];

if (process.argv.includes('--check')) {
  let stale = false;
  for (const [file, text] of outputs) {
    const current = await readFile(new URL(`../${file}`, import.meta.url), 'utf8').catch(() => '');
    if (current !== text) {
      console.error(`${file} is out of date with schemas/: run \`npm run gen:validators\`.`);
      stale = true;
    }
  }
  if (stale) process.exit(1);
  console.log('generated validators are current');
} else {
  for (const [file, text] of outputs) {
    await writeFile(new URL(`../${file}`, import.meta.url), text);
    console.log(`wrote ${file}`);
  }
}
