#!/usr/bin/env bash
# "Tried as a new user would": builds a fresh Debian 13 (trixie) root file system with debootstrap
# from the mirror this machine's apt uses, copies a clean clone of this repository's HEAD in, and
# runs the README's two commands inside it as a container (systemd-nspawn sharing the host's
# network namespace; the demo and the tests make their own namespaces). Root only; not part of CI.
#
#   scripts/fresh-debian-check.sh [WORKDIR]      (default: a new /var/tmp/sc-fresh.XXXXXX)
#   KEEP=1 keeps WORKDIR afterwards; SUITE=bookworm builds Debian 12 instead.
#
# Node: Debian 13's apt has nodejs 20.19, the README's floor, so the run installs it from apt as a
# new user would. Debian 12's apt has Node 18, too old: there the README's prerequisite ("install
# Node >= 20.19 first") is met by copying this machine's node and npm into the fresh root
# (/usr/bin/node, npm from `npm root -g`) before the README's commands. NODE_FROM_HOST=1/0
# overrides that choice for any suite.
#
# Why a container and not a chroot (sandbox.md §12): the kernel refuses user namespaces to a
# chrooted process, so the tests' PrivateUsers=pick containers could not start.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
suite="${SUITE:-trixie}"
if [[ "$suite" == bookworm ]]; then node_from_host="${NODE_FROM_HOST:-1}"; else node_from_host="${NODE_FROM_HOST:-0}"; fi
[[ $EUID -eq 0 ]] || { echo "fresh-debian-check.sh needs root (debootstrap, systemd-nspawn)" >&2; exit 1; }

# The mirror apt on this machine is configured with (deb822 `URIs:` or a one-line `deb` entry).
mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | awk '/^URIs:/ && $2 ~ /\/debian\/?$/ { print $2; exit } /^deb / && $0 ~ / main/ && $2 ~ /\/debian\/?$/ { print $2; exit }' || true)"
[[ -n "$mirror" ]] || { echo "fresh-debian-check.sh: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }

work="${1:-$(mktemp -d /var/tmp/sc-fresh.XXXXXX)}"
rootfs="$work/rootfs"
machine="scfresh-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
  local rc=$?
  # Whatever the container's tests left running lives in its cgroup: the container's end takes it along.
  if [[ "${KEEP:-0}" != 1 ]]; then
    for m in $(awk -v r="$rootfs" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m" || true; done
    rm -rf "$work"
  else
    echo "kept $work"
  fi
  exit $rc
}
trap cleanup EXIT
mkdir -p "$work"
log() { printf '\n=== %s [%s]\n' "$*" "$(date -u +%H:%M:%S)"; }
t0=$SECONDS

if [[ ! -x "$rootfs/usr/bin/apt-get" ]]; then
  log "debootstrap --variant=minbase $suite from $mirror"
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  rm -f "$rootfs/etc/hostname"   # debootstrap copies the build host's (sandbox.md §11.11)
fi
t_debootstrap=$((SECONDS - t0))

# This machine reaches the registries through its own trust setup: its extra CA certificates go in.
mkdir -p "$rootfs/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true

if [[ "$node_from_host" == 1 ]]; then
  # The README's prerequisite met by hand: this machine's node binary and npm (with npx) go in.
  host_node="$(command -v node)"; host_npm="$(npm root -g)/npm"
  [[ -x "$host_node" && -f "$host_npm/bin/npm-cli.js" ]] || { echo "fresh-debian-check.sh: no node/npm on this machine to copy in" >&2; exit 1; }
  log "node $("$host_node" --version) ($host_node) and npm $(npm --version) ($host_npm) copied in: the README's prerequisite"
  install -m 755 "$host_node" "$rootfs/usr/bin/node"
  rm -rf "$rootfs/usr/lib/node_modules/npm" && mkdir -p "$rootfs/usr/lib/node_modules"
  cp -a "$host_npm" "$rootfs/usr/lib/node_modules/npm"
  ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
  ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
fi

log "clean clone of $(git -C "$repo" rev-parse --short HEAD) into /root/srvctl"
rm -rf "$rootfs/root/srvctl"
git clone -q --no-hardlinks "$repo" "$rootfs/root/srvctl"

# The run inside: the README's prerequisite (Node from apt, or the copy above), then its command 1, then command 2,
# each timed. The README's text is the source of the commands, so a README change is what runs.
cat >"$rootfs/root/fresh-run.sh" <<'INNER'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd /root/srvctl
readme_command() { awk -v n="$1" '/^```sh$/ { block++; next } /^```$/ { next } block == n && !/^#/ && NF { print; exit }' README.md; }
cmd1="$(readme_command 1)"; cmd2="$(readme_command 2)"
echo "README command 1: $cmd1"; echo "README command 2: $cmd2"
t=$SECONDS
if [[ "$SC_FRESH_NODE" == host ]]; then node_source="copied from the build machine"; node_packages=(); else node_source="nodejs npm from apt"; node_packages=(nodejs npm); fi
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${node_packages[@]}" ca-certificates >/dev/null
update-ca-certificates >/dev/null 2>&1
npm config set cafile /etc/ssl/certs/ca-certificates.crt
echo "prerequisite ($node_source): node $(node --version), npm $(npm --version): $((SECONDS - t)) s"
t=$SECONDS; bash -c "$cmd1"; echo "README command 1: exit 0 in $((SECONDS - t)) s"
t=$SECONDS; bash -c "$cmd2"; echo "README command 2: exit 0 in $((SECONDS - t)) s"
INNER
chmod +x "$rootfs/root/fresh-run.sh"

# The container: the host's network namespace (no --private-network), all capabilities, API file
# systems writable and no seccomp filter, so the demo and the tests can make their own namespaces,
# sysctls, nft tables and (nested) containers; /dev/net/tun for openvpn. /tmp (where the tests'
# --root directories go) is a directory on disk, not nspawn's nodev tmpfs, as on a real machine:
# Debian 12's debootstrap refuses a target where device nodes do not work ("test-dev-null:
# Permission denied"), which failed the debian image builds of containers-files and ssh-debian.
log "systemd-nspawn -D $rootfs: README commands 1 and 2"
rm -rf "$work/tmp" && mkdir -m 1777 "$work/tmp"
t1=$SECONDS
# With --keep-unit nspawn nests its cgroups under the caller's: give it its own (sandbox.md §11.3).
cgroups=()
for h in unified systemd; do [[ -d /sys/fs/cgroup/$h ]] && cgroups+=("/sys/fs/cgroup/$h/$machine"); done
[[ ${#cgroups[@]} -gt 0 ]] || cgroups=("/sys/fs/cgroup/$machine")   # a pure cgroup2 host
set +e
(
  for c in "${cgroups[@]}"; do mkdir -p "$c" && echo "$BASHPID" >"$c/cgroup.procs"; done
  exec env SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 SYSTEMD_SECCOMP=0 \
    systemd-nspawn -q --register=no --keep-unit --as-pid2 -D "$rootfs" -M "$machine" --capability=all \
    --bind=/dev/net/tun --bind="$work/tmp:/tmp" --setenv=CI=true --setenv=TERM=dumb \
    --setenv=SC_FRESH_NODE="$([[ "$node_from_host" == 1 ]] && echo host || echo apt)" /root/fresh-run.sh
) 2>&1 | tee "$work/run.log"
rc=${PIPESTATUS[0]}
set -e
# Anything still running in the container's cgroup (it should be nothing) goes, then the cgroups.
for c in "${cgroups[@]}"; do
  [[ -e "$c/cgroup.kill" ]] && echo 1 >"$c/cgroup.kill"
  find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
log "result: exit $rc; debootstrap ${t_debootstrap} s, in the container $((SECONDS - t1)) s, total $((SECONDS - t0)) s"
exit "$rc"
