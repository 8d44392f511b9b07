// The datastore commands that edit files (SPEC §4): add-reseller, add-user, add-ve, destroy-ve,
// map-port, http-redirect, https-redirect, allocate, add/remove-publickey, add/remove-vpn-client. They change nothing on the host by themselves.
import { readFile, rm, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { allocateMissing } from '../../datastore/allocate.js';
import {
  addContainer,
  addReseller,
  addUser,
  destroyContainer,
  mapPort,
  setRedirect,
  type EditContext,
  type EditResult,
} from '../../datastore/datastore-edits.js';
import { addPublicKeys, parseKeyInputs, removePublicKey, type KeyInput } from '../../datastore/key-edits.js';
import { addVpnClient, assertDeviceName, parseVpnMaterial, removeVpnClient, VPN_MATERIAL_MAX_BYTES } from '../../datastore/vpn-client-edits.js';
import { assertUserName } from '../../datastore/edit-arguments.js';
import { deviceProfile } from '../../access/vpn-client-config.js';
import { createExec } from '../../drivers/exec.js';
import { createOpensslDriver } from '../../drivers/openssl.js';
import { vpnClientCommonName } from '../../network/vpn-clients.js';
import { createProfileFile } from '../device-profile-file.js';
import { openDatastore } from '../open-datastore.js';
import { deviceClientConfig } from './access.js';
import { UserError } from '../../errors.js';
import { runCommand, type CommandContext, type CommandResult } from '../command-runner.js';
import { openDatastoreLocation } from '../open-datastore.js';

async function editContext(ctx: CommandContext, command: Command): Promise<EditContext> {
  // A git source (--source, or source.url in this host's settings) is refused: sc only reads it.
  const location = await openDatastoreLocation(ctx, { use: 'edit', command: command.name() });
  let actor = 'root';
  try {
    actor = process.env.SUDO_USER || userInfo().username;
  } catch {
    // no passwd entry for this uid: keep 'root'
  }
  const push = command.opts<{ push?: boolean }>().push;
  return { location, thisHost: ctx.options.host, actor, commandLine: commandLineOf(command), ...(push ? { push } : {}) };
}

/** `sc add-ve shop.example.com --user alice`: the subcommand as typed, without the global options (git commit message). */
function commandLineOf(command: Command): string {
  const quote = (word: string) => (/^[A-Za-z0-9@%+=:,./_-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);
  const words = [command.name(), ...command.args];
  for (const option of command.options) {
    const key = option.attributeName();
    if (command.getOptionValueSource(key) !== 'cli' || option.long === '--push') continue;
    const value: unknown = command.getOptionValue(key);
    const flag = option.long ?? option.short ?? key;
    if (value === true) words.push(flag);
    else if (Array.isArray(value)) for (const v of value) words.push(flag, String(v));
    else if (value !== undefined && value !== false) words.push(flag, String(value));
  }
  return `sc ${words.map(quote).join(' ')}`;
}

function editOutput(result: EditResult): CommandResult {
  const files = result.files.length ? `\nWrote ${result.files.join(', ')}.` : '';
  const commit = result.commit
    ? `\nCommitted ${result.commit.revision.slice(0, 12)}${result.commit.pushed ? ' and pushed' : ''}.${result.commit.pushProblem ? ` Not pushed: ${result.commit.pushProblem}.` : ''}`
    : '';
  return { text: `${result.message}${files}${commit}`, json: result };
}

function edit(command: Command, fn: (ectx: EditContext) => Promise<EditResult>): Promise<void> {
  return runCommand(command, async (ctx) => editOutput(await fn(await editContext(ctx, command))));
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number 1-65535.');
  return n;
}

export function registerDatastoreEdits(program: Command): void {
  program
    .command('add-reseller')
    .argument('<name>', 'username of the new reseller (lowercase DNS label)')
    .option('--name <display>', 'display name')
    .description('add a reseller (allocates reseller_id, user_id and uid)')
    .action((name: string, opts: { name?: string }, command: Command) => edit(command, (e) => addReseller(e, name, { displayName: opts.name })));

  program
    .command('add-user')
    .argument('<name>', 'username (lowercase DNS label)')
    .option('--reseller <reseller>', 'the owning reseller', 'root')
    .option('--name <display>', 'display name')
    .option('--ssh-key <key>', 'an SSH public key (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .description('add a user under a reseller (allocates user_id and uid)')
    .action((name: string, opts: { reseller: string; name?: string; sshKey?: string[] }, command: Command) =>
      edit(command, (e) => addUser(e, name, { reseller: opts.reseller, displayName: opts.name, sshKeys: opts.sshKey })),
    );

  program
    .command('add-ve')
    .argument('<name>', 'container name (its FQDN, e.g. shop.example.com)')
    .requiredOption('--user <user>', 'owner of the container')
    .option('--host <fqdn>', 'the server it runs on (default: this host, --host/SC_HOST or the hostname)')
    .option('--type <type>', 'base image type (debian, fedora, busybox, …)', 'debian')
    .option('--disabled', 'add it with enabled: false')
    .description("add a container (allocates its address in the owner's /24 on its host)")
    .action((name: string, opts: { user: string; host?: string; type: string; disabled?: boolean }, command: Command) =>
      edit(command, (e) => addContainer(e, name, { user: opts.user, host: opts.host, type: opts.type, enabled: opts.disabled ? false : undefined })),
    );

  program
    .command('destroy-ve')
    .argument('<name>', 'container name')
    .description('remove a container from the datastore (the next apply on its host removes it there)')
    .action((name: string, _opts, command: Command) => edit(command, (e) => destroyContainer(e, name)));

  program
    .command('map-port')
    .usage('<ve> [tcp|udp] <port> [options]')
    .argument('<ve>', 'container name')
    .argument('<args...>', '[tcp|udp] PORT: the container port (protocol default tcp)')
    .option('--host-port <port>', 'the host port (default: chosen like srvctl 3: 22→2022, 8080→6080, …)', portNumber)
    .option('--comment <text>', 'a comment stored with the mapping')
    .description("map a host port to a container port (DNAT on the container's host)")
    .action((ve: string, args: string[], opts: { hostPort?: number; comment?: string }, command: Command) => {
      let proto: 'tcp' | 'udp' = 'tcp';
      let rest = args;
      if (rest[0] === 'tcp' || rest[0] === 'udp') {
        proto = rest[0];
        rest = rest.slice(1);
      }
      const [port, ...extra] = rest;
      if (port === undefined || extra.length) {
        command.error(`error: expected "sc map-port VE [tcp|udp] PORT", got "${args.join(' ')}"`, { exitCode: 1 });
      }
      let containerPort: number;
      try {
        containerPort = portNumber(port);
      } catch (e) {
        return command.error(`error: PORT ${(e as Error).message}`, { exitCode: 1 });
      }
      return edit(command, (e) => mapPort(e, ve, { proto, containerPort, hostPort: opts.hostPort, comment: opts.comment }));
    });

  program
    .command('http-redirect')
    .argument('<ve>', 'container name')
    .argument('<target>', 'none | https | URL (default when unset: redirect to https)')
    .description('set how plain http requests to the container are redirected')
    .action((ve: string, target: string, _opts, command: Command) => edit(command, (e) => setRedirect(e, ve, 'http-redirect', target)));

  program
    .command('https-redirect')
    .argument('<ve>', 'container name')
    .argument('<target>', 'none | http | URL')
    .description('set how https requests to the container are redirected')
    .action((ve: string, target: string, _opts, command: Command) => edit(command, (e) => setRedirect(e, ve, 'https-redirect', target)));

  program
    .command('allocate')
    .addOption(new Option('--dry-run', 'show what would be allocated, write nothing'))
    .description('fill in missing reseller_id, user_id, uid and container ip (SPEC §2) and write them back')
    .action((opts: { dryRun?: boolean }, command: Command) => edit(command, (e) => allocateMissing(e, { dryRun: opts.dryRun })));

  program
    .command('add-publickey')
    .argument('<user>', 'the user (root for the administrator)')
    .argument('<key...>', 'a public key ("ssh-ed25519 AAAA… comment", quoted or not) or a file of public keys (e.g. id_ed25519.pub)')
    .description(
      'add SSH public keys to a user (checked: no private keys, DSA, RSA under 2048 bits, options or several lines); sc apply installs them',
    )
    // A pasted private key starts with "-----BEGIN": it must reach the key check (which refuses it
    // without showing it), not commander's "unknown option '…'" message, which would echo it.
    .allowUnknownOption()
    .action((user: string, words: string[], _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        const keys = parseKeyInputs([await keyInput(words)]);
        const ectx = await editContext(ctx, command);
        const commandLine = `sc add-publickey ${user} ${keys.map((k) => k.fingerprint).join(' ')}`;
        return editOutput(await addPublicKeys({ ...ectx, commandLine }, user, keys));
      }),
    );

  program
    .command('remove-publickey')
    .argument('<user>', 'the user')
    .argument('<fingerprint>', "the key's fingerprint as ssh-keygen -l prints it (SHA256:…)")
    .description('remove an SSH public key from a user; the next sc apply takes it out of every container and jump account')
    .action((user: string, fingerprint: string, _opts, command: Command) => edit(command, (e) => removePublicKey(e, user, fingerprint)));

  program
    .command('add-vpn-client')
    .argument('<user>', 'the user')
    .argument('<device>', 'a name for the device (lowercase DNS label, e.g. laptop)')
    .option('--csr <file>', "the device's certificate request (or certificate) PEM file: public material only, a private key is refused")
    .option(
      '--out <file>',
      'make the key and request here (openssl) and write the device profile FILE (.ovpn, mode 0600, created new: never overwrites) with the key inline; only the request goes into the datastore. ' +
        'The CA host signs it on its next sc apply; then "sc vpn-config USER DEVICE --update FILE" puts the certificate in',
    )
    .description(
      "add a VPN client device to a user (allocates its address in .201-.250 of the user's /24; stores public material only). " +
        'The device makes its own key (sc vpn-config prints the openssl command; then --csr FILE), or --out FILE makes it here',
    )
    .action((user: string, device: string, opts: { csr?: string; out?: string }, command: Command) => {
      if (opts.out !== undefined) {
        const out = opts.out;
        return runCommand(command, async (ctx) => {
          if (opts.csr !== undefined) throw new UserError('--out makes the key and the request here: give either --out FILE or --csr FILE, not both');
          return addDeviceWithProfile(ctx, command, user, device, out);
        });
      }
      return edit(command, async (e) =>
        addVpnClient(
          e,
          user,
          device,
          opts.csr !== undefined ? parseVpnMaterial(await smallTextFile(opts.csr, VPN_MATERIAL_MAX_BYTES), opts.csr) : undefined,
        ),
      );
    });

  program
    .command('remove-vpn-client')
    .argument('<user>', 'the user')
    .argument('<device>', 'the device name')
    .description('remove a VPN client device from a user (its address is free again)')
    .action((user: string, device: string, _opts, command: Command) => edit(command, (e) => removeVpnClient(e, user, device)));

  // When the datastore is a git work tree each edit is committed; --push also pushes it.
  for (const sub of program.commands) {
    if (EDIT_COMMANDS.has(sub.name())) sub.option('--push', 'push the git commit of this edit to the upstream (default: settings source.push)');
  }
}

const EDIT_COMMANDS = new Set([
  'add-reseller',
  'add-user',
  'add-ve',
  'destroy-ve',
  'map-port',
  'http-redirect',
  'https-redirect',
  'allocate',
  'add-publickey',
  'remove-publickey',
  'add-vpn-client',
  'remove-vpn-client',
]);

/** A regular file of at most `maxBytes`, read as text (never shown in errors). */
async function smallTextFile(file: string, maxBytes: number): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new UserError(`${file}: no such file`);
  if (!info.isFile()) throw new UserError(`${file}: not a regular file`);
  if (info.size > maxBytes) throw new UserError(`${file}: ${info.size} bytes is too big for a certificate request or certificate`);
  return readFile(file, 'utf8');
}

/**
 * `sc add-vpn-client USER DEVICE --out FILE`: FILE is created first (exclusively, 0600), the key and
 * request are made in memory by openssl, the request alone is stored, then FILE gets the profile with
 * the key inline. Any failure before that removes FILE: no key is left anywhere. The key is never printed.
 */
async function addDeviceWithProfile(ctx: CommandContext, command: Command, user: string, device: string, file: string): Promise<CommandResult> {
  assertUserName(user);
  assertDeviceName(device);
  const handle = await createProfileFile(file);
  let written = false;
  try {
    const { key, request } = await createOpensslDriver(createExec({ logger: ctx.logger })).createKeyAndRequest(vpnClientCommonName(user, device));
    const result = await addVpnClient(await editContext(ctx, command), user, device, { csr: request });
    const config = await deviceClientConfig(ctx, await openDatastore(ctx), user, device);
    const profile = deviceProfile(config, key);
    await handle.writeFile(profile.text);
    await handle.sync();
    written = true;
    const ready = config.caPublished && config.certificatePublished;
    const out = editOutput(result);
    const next = ready
      ? 'ready'
      : `not ready yet: the CA host signs the request on its next sc apply; then run sc vpn-config ${user} ${device} --update ${file}`;
    return {
      text: `${out.text}\nWrote the device profile ${file} (mode 0600, the private key inline${profile.host !== undefined ? `, through ${profile.host}` : ''}): ${next}.`,
      json: { ...result, profile: { file, host: profile.host ?? null, ready } },
    };
  } finally {
    await handle.close();
    if (!written) await rm(file, { force: true });
  }
}

/** Public key files are small; anything bigger is not one. */
const KEY_FILE_MAX_BYTES = 64 * 1024;

/**
 * The key text of `sc add-publickey USER KEY|FILE`: one word without blanks that names an existing
 * file is that file (read here, never shown); anything else is the key itself, words joined.
 */
async function keyInput(words: readonly string[]): Promise<KeyInput> {
  const [first] = words;
  if (words.length === 1 && first !== undefined && !/\s/.test(first) && !/^(ssh-|ecdsa-|sk-)/.test(first)) {
    const info = await stat(first).catch(() => undefined);
    if (!info) throw new UserError(`${first}: not a public key and no such file (give "ssh-ed25519 AAAA… comment" or a .pub file)`);
    if (!info.isFile()) throw new UserError(`${first}: not a regular file`);
    if (info.size > KEY_FILE_MAX_BYTES) throw new UserError(`${first}: ${info.size} bytes is too big for a public key file`);
    return { text: await readFile(first, 'utf8'), where: first, file: true };
  }
  return { text: words.join(' '), where: 'the key argument' };
}
