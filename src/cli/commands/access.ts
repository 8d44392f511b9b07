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
import { findVpnClient, renderVpnClientConfig, vpnClientConfig } from '../../access/vpn-client-config.js';
import { assertDeviceName } from '../../datastore/vpn-client-edits.js';
import { datastorePlace, pkiExchange } from '../../datastore/pki-exchange.js';
import { CA_CERT_FILE } from '../../resources/pki-files.js';
import { hostContext, openDatastore } from '../open-datastore.js';

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
    .description(
      "print the OpenVPN client config of USER's DEVICE for each host of USER's containers (no key), and the openssl command that makes its key and request",
    )
    .action((user: string, device: string, _opts, command: Command) =>
      runCommand(command, async (ctx) => {
        assertUserName(user);
        assertDeviceName(device);
        const loaded = await openDatastore(ctx);
        findVpnClient(loaded.model, user, device);
        const caCert = await pkiExchange(datastorePlace(loaded), ctx.options.host, ctx.options.root).read(CA_CERT_FILE);
        const result = vpnClientConfig(loaded.model, user, device, caCert);
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
