// Every `sc` command in one list: how `sc --help` shows it, and where its code is. A command's
// module (and everything it imports: datastore, drivers, git, …) is loaded only when that command
// runs or shows its own help, so `sc --version`, `sc --help` and each command start fast.
//
// Adding a command = one entry here (in the order `sc --help` lists it) + its module exporting a
// `register…(program)` that defines it with commander. test/unit/cli/command-manifest.test.ts
// checks every entry against the real definition (usage line, summary, aliases, order).
import type { Command } from 'commander';

export interface CommandEntry {
  /** The command's line in `sc --help`: NAME[|ALIAS] [options] ARGS, exactly as commander prints it. */
  readonly usage: string;
  /** Its description, exactly as its module gives it. */
  readonly summary: string;
  /** Its module's registration function (one module may register several commands). */
  readonly load: () => Promise<(program: Command) => void>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    usage: 'validate',
    summary:
      "check the datastore (JSON Schemas, cross-checks and each kind's own checks, e.g. image builder settings); exit 0 when valid, 1 when not",
    load: async () => (await import('./commands/validate.js')).registerValidate,
  },
  {
    usage: 'diff|plan [options]',
    summary: 'show the changes `sc apply` would make on this host; exit 0 none, 2 changes pending, 1 error',
    load: async () => (await import('./commands/host-commands.js')).registerHostCommands,
  },
  {
    usage: 'apply [options]',
    summary: 'converge this host to the datastore; exit 0 only when it converged',
    load: async () => (await import('./commands/host-commands.js')).registerHostCommands,
  },
  {
    usage: 'status [options]',
    summary:
      'this host: every resource sc manages and whether it is in sync, its containers (state, address, owner, answers), the names its reverse proxy answers (route, certificate, HTTP status), the last apply and reconcile',
    load: async () => (await import('./commands/host-commands.js')).registerHostCommands,
  },
  {
    usage: 'add-reseller [options] <name>',
    summary: 'add a reseller (allocates reseller_id, user_id and uid)',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'add-user [options] <name>',
    summary: 'add a user under a reseller (allocates user_id and uid)',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'add-ve [options] <name>',
    summary: "add a container (allocates its address in the owner's /24 on its host)",
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'destroy-ve [options] <name>',
    summary: 'remove a container from the datastore (the next apply on its host removes it there)',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'map-port [options] <ve> <args...>',
    summary: "map a host port to a container port (DNAT on the container's host)",
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'http-redirect [options] <ve> <target>',
    summary: 'set how plain http requests to the container are redirected',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'https-redirect [options] <ve> <target>',
    summary: 'set how https requests to the container are redirected',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'allocate [options]',
    summary: 'fill in missing reseller_id, user_id, uid and container ip (SPEC §2) and write them back',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'add-publickey [options] <user> <key...>',
    summary: 'add SSH public keys to a user (checked: no private keys, DSA, RSA under 2048 bits, options or several lines); sc apply installs them',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'remove-publickey [options] <user> <fingerprint>',
    summary: 'remove an SSH public key from a user; the next sc apply takes it out of every container and jump account',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'add-vpn-client [options] <user> <device>',
    summary:
      "add a VPN client device to a user (allocates its address in .201-.250 of the user's /24; stores public material only). " +
      'The device makes its own key (sc vpn-config prints the openssl command; then --csr FILE), or --out FILE makes it here',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'remove-vpn-client [options] <user> <device>',
    summary: 'remove a VPN client device from a user (its address is free again)',
    load: async () => (await import('./commands/datastore-edits.js')).registerDatastoreEdits,
  },
  {
    usage: 'out <what> <name>',
    summary: "print a record as srvctl 3 style key='value' lines (shell-quoted)",
    load: async () => (await import('./commands/query-verbs.js')).registerQueryVerbs,
  },
  {
    usage: 'get <what> <name> <field>',
    summary: 'print one field of a record',
    load: async () => (await import('./commands/query-verbs.js')).registerQueryVerbs,
  },
  {
    usage: 'reconcile [options]',
    summary: 'keep this host converged to the source: every interval (+ jitter), at once when the revision moves; exit 0 on SIGTERM',
    load: async () => (await import('./commands/reconcile.js')).registerReconcile,
  },
  {
    usage: 'install-units [options]',
    summary: 'write srvctl-reconcile.service/.timer and srvctl-nspawn@.service under --root/etc/systemd/system (only what changed)',
    load: async () => (await import('./commands/install-units.js')).registerInstallUnits,
  },
  {
    usage: 'exec <name> <command...>',
    summary: 'run a command inside a running container of this host; exits with its exit code',
    load: async () => (await import('./commands/exec.js')).registerExec,
  },
  {
    usage: 'exec-all <command...>',
    summary: 'run a command in every running container of this host; output prefixed per container, exit 1 if any failed',
    load: async () => (await import('./commands/exec.js')).registerExec,
  },
  {
    usage: 'import',
    summary: "make an sc datastore from another tool's (srvctl 3.2)",
    load: async () => (await import('./commands/import-srvctl3.js')).registerImport,
  },
  {
    usage: 'adopt [options]',
    summary: "take over this host's srvctl 3 containers that `sc import srvctl3` mapped: the next `sc apply` moves them to their new addresses",
    load: async () => (await import('./commands/adopt.js')).registerAdopt,
  },
  {
    usage: 'ssh-config <user>',
    summary: "print an OpenSSH client config for USER: a Host entry per container USER may reach, through USER's jump account on its host",
    load: async () => (await import('./commands/access.js')).registerAccess,
  },
  {
    usage: 'vpn-config [options] <user> <device>',
    summary:
      "print the OpenVPN client config of USER's DEVICE for each host of USER's containers (no key; the certificate inline once the CA host signed it), and the openssl command that makes its key and request",
    load: async () => (await import('./commands/access.js')).registerAccess,
  },
  {
    usage: 'shell <name>',
    summary: "open root's login shell inside a running container of this host (needs a terminal; for one command use sc exec)",
    load: async () => (await import('./commands/access.js')).registerAccess,
  },
];

/** The names a command answers to: `diff|plan [options]` → diff, plan. */
export function commandNames(entry: CommandEntry): string[] {
  return (entry.usage.split(' ')[0] ?? '').split('|');
}
