// `sc ssh-config USER` (the client configuration a user pastes: one ProxyJump entry per container
// they may reach), `sc vpn-config USER DEVICE` (a device's OpenVPN client configs, without key) and `sc shell NAME` (the administrator's interactive login into a running
// container of this host, on a real terminal, in either runtime).
import type { Command } from 'commander';
import { userReach } from '../../access/access-plan.js';
import { renderSshClientConfig } from '../../access/ssh-client-config.js';
import { assertContainerName, assertUserName } from '../../datastore/edit-arguments.js';
import { createDrivers } from '../../drivers/create-drivers.js';
import { rootfsPath } from '../../resources/container-files-render.js';
import { ScError, UserError } from '../../errors.js';
import { ROOT_USERNAME } from '../../network/user-network.js';
import { parsePasswd } from '../../access/account-database.js';
import { runCommand } from '../command-runner.js';
import {
  deviceProfile,
  deviceProfileKey,
  findVpnClient,
  renderVpnClientConfig,
  vpnClientConfig,
  type VpnClientConfig,
} from '../../access/vpn-client-config.js';
import { assertDeviceName } from '../../datastore/vpn-client-edits.js';
import { datastorePlace, pkiExchange } from '../../datastore/pki-exchange.js';
import type { LoadedDatastore } from '../../datastore/load-datastore.js';
import { vpnClientCommonName } from '../../network/vpn-clients.js';
import { clientCertFits } from '../../resources/pki-clients.js';
import { CA_CERT_FILE, clientCertFile, parseCertificate, parsePrivateKey, publicKeyPem, requestIsForKey } from '../../resources/pki-files.js';
import type { CommandContext } from '../command-runner.js';
import { readProfileFile, replaceProfileFile } from '../device-profile-file.js';
import { hostContext, openDatastore } from '../open-datastore.js';

/**
 * The client configs of USER's DEVICE with what is published: the CA certificate, and the device's
 * certificate when the CA host signed one that fits the device's request (pki/clients).
 */
export async function deviceClientConfig(ctx: CommandContext, loaded: LoadedDatastore, user: string, device: string): Promise<VpnClientConfig> {
  const client = findVpnClient(loaded.model, user, device);
  const exchange = pkiExchange(datastorePlace(loaded), ctx.options.host, ctx.options.root);
  const caCert = await exchange.read(CA_CERT_FILE);
  const cn = vpnClientCommonName(user, device);
  const issued = await exchange.read(clientCertFile(cn));
  const fits = clientCertFits(parseCertificate(issued), cn, client, parseCertificate(caCert), new Date());
  return vpnClientConfig(loaded.model, user, device, caCert, fits ? issued : undefined);
}

const SHELL_PATH = /^\/[A-Za-z0-9._/+-]+$/;

export function registerAccess(program: Command): void {
  program
    .command('ssh-config')
    .argument('<user>', 'the user')
    .description("print an OpenSSH client config for USER: a Host entry per container USER may reach, through USER's jump account on its host")
    .action((user: string, _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        assertUserName(user);
        const { model } = await openDatastore(ctx);
        if (user === ROOT_USERNAME) throw new UserError('root has no jump account: the administrator works on the hosts (sc shell NAME)');
        if (!Object.hasOwn(model.users, user)) throw new UserError(`unknown user "${user}"`);
        const reach = userReach(model, user);
        return {
          text: renderSshClientConfig(model, user),
          json: { user, hosts: reach.map((r) => ({ host: r.container, user: 'root', proxy_jump: `${user}@${r.host}` })) },
        };
      }),
    );

  program
    .command('vpn-config')
    .argument('<user>', 'the user')
    .argument('<device>', "one of the user's VPN client devices (sc add-vpn-client)")
    .option(
      '--update <file>',
      'complete the device profile FILE that "sc add-vpn-client … --out FILE" wrote: rewrite it with the certificate the CA host signed, keeping its key (nothing of the key is printed)',
    )
    .description(
      "print the OpenVPN client config of USER's DEVICE for each host of USER's containers (no key; the certificate inline once the CA host signed it), and the openssl command that makes its key and request",
    )
    .action((user: string, device: string, opts: { update?: string }, command: Command) =>
      runCommand(command, async (ctx) => {
        assertUserName(user);
        assertDeviceName(device);
        const loaded = await openDatastore(ctx);
        const result = await deviceClientConfig(ctx, loaded, user, device);
        if (opts.update !== undefined) return updateDeviceProfile(opts.update, loaded, result);
        if (!result.caPublished)
          ctx.logger.warn('the cluster CA certificate is not published yet (pki/ca.crt): the configs name a ca.crt file instead');
        return {
          text: renderVpnClientConfig(result),
          json: {
            user,
            device,
            common_name: result.commonName,
            openssl_command: result.opensslCommand,
            ca_published: result.caPublished,
            certificate_published: result.certificatePublished,
            hosts: result.hosts,
          },
        };
      }),
    );

  program
    .command('shell')
    .argument('<name>', 'a running container of this host')
    .description("open root's login shell inside a running container of this host (needs a terminal; for one command use sc exec)")
    .action((name: string, _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        assertContainerName(name);
        if (!process.stdin.isTTY || !process.stdout.isTTY)
          throw new UserError('sc shell needs a terminal (stdin and stdout); to run one command use: sc exec NAME -- CMD');
        const loaded = await openDatastore(ctx);
        const host = hostContext(ctx, loaded);
        if (loaded.model.containers[name]?.host !== host.name)
          throw new UserError(`container ${name} is not a container of host ${host.name} in the datastore`);
        const drivers = createDrivers(host, ctx.logger);
        if (!drivers.nspawn?.shell) throw new ScError('no container runtime available');
        const machine = (await drivers.nspawn.runtime(host.runtime).list()).find((m) => m.name === name && m.state === 'running');
        if (!machine) throw new UserError(`container ${name} is not running (sc status shows its state; sc apply starts it)`);
        // root's shell as the container's own /etc/passwd says (read inside its rootfs, no symlink followed out).
        const passwd = await drivers.files.read(`${rootfsPath(name)}/etc/passwd`, { within: rootfsPath(name) }).catch(() => undefined);
        const declared = parsePasswd(passwd ?? '').find((p) => p.name === 'root')?.shell;
        const shell = declared !== undefined && SHELL_PATH.test(declared) && !declared.endsWith('nologin') ? declared : '/bin/sh';
        const env = {
          TERM: process.env.TERM ?? 'xterm',
          HOME: '/root',
          USER: 'root',
          LOGNAME: 'root',
          SHELL: shell,
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        };
        const exitCode = await drivers.nspawn.shell(machine, [shell, '-l'], env);
        return { exitCode };
      }),
    );
}

/** `sc vpn-config USER DEVICE --update FILE`: the profile rewritten with what is published now, its key kept. */
async function updateDeviceProfile(file: string, loaded: LoadedDatastore, result: VpnClientConfig) {
  const key = deviceProfileKey(await readProfileFile(file));
  if (key === undefined) throw new UserError(`${file} is not a device profile written by sc add-vpn-client --out (no sc mark or no inline key)`);
  const client = findVpnClient(loaded.model, result.user, result.device);
  const privateKey = parsePrivateKey(key);
  const own =
    privateKey !== undefined &&
    (client.csr !== undefined
      ? requestIsForKey(client.csr, privateKey)
      : client.certificate !== undefined &&
        parseCertificate(client.certificate)?.publicKey.export({ type: 'spki', format: 'pem' }) === publicKeyPem(privateKey));
  if (!own) throw new UserError(`${file} holds the key of another request than ${result.commonName}'s in the datastore; nothing was written`);
  const profile = deviceProfile(result, key);
  await replaceProfileFile(file, profile.text);
  const state =
    result.certificatePublished && result.caPublished ? 'ready' : 'still waiting for the certificate (the CA host signs it on its next sc apply)';
  return {
    text: `wrote ${file}: ${result.commonName}${profile.host !== undefined ? ` through ${profile.host}` : ''}, ${state}`,
    json: { file, common_name: result.commonName, host: profile.host ?? null, ready: result.certificatePublished && result.caPublished },
  };
}
