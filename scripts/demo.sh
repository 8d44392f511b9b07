#!/usr/bin/env bash
# Quick start: applies the bundled example datastore for host web1.example.net (bridges, busybox
# containers, port map, reverse proxy) inside a throwaway network namespace and --root directory, shows the
# result, proves a second diff is clean, then stops the containers and removes both.
# Needs root (creating a network namespace; it asks sudo when run as a user); never touches the
# machine's own network.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null; then
  exec sudo env "PATH=$PATH" bash "$0" "$@"   # the build ran as the user; only the demo needs root (and the same node)
fi
if [[ $EUID -ne 0 ]]; then
  echo "demo.sh creates a network namespace and needs root; without root try: node dist/cli/main.js diff --datastore examples/datastore --host web1.example.net --target bridge --target container --target machine" >&2
  exit 1
fi
sc() { node dist/cli/main.js "$@"; }
ns="scdemo-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
root="$(mktemp -d -t scdemo-root.XXXXXX)"
cleanup() {
  # Containers first (they live in the cgroup sc made for this --root), then the namespace.
  node --input-type=module -e '
    const { detectCgroupLayout, machinesCgroupBase, killAndRemoveCgroup } = await import("./dist/drivers/cgroups.js");
    await killAndRemoveCgroup(detectCgroupLayout(), machinesCgroupBase(process.argv[1])).catch(() => {});' "$root" || true
  # The proxy's HAProxy master (its workers follow it).
  if [[ -f "$root/run/srvctl/haproxy/haproxy.pid" ]]; then kill -TERM "$(cat "$root/run/srvctl/haproxy/haproxy.pid")" 2>/dev/null || true; sleep 0.5; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
cp -r examples/datastore "$root/datastore"   # a copy: sc never writes into the repository
export SC_DATASTORE="$root/datastore" SC_HOST=web1.example.net SC_ROOT="$root" SC_NETNS="$ns"
# An operator certificate for one site (self-signed here): the proxy serves it on 443 by SNI.
mkdir -p "$root/etc/srvctl/cert"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=www.example.com \
  -addext subjectAltName=DNS:www.example.com,DNS:example.com -keyout "$root/demo.key" -out "$root/demo.crt" 2>/dev/null
cat "$root/demo.crt" "$root/demo.key" > "$root/etc/srvctl/cert/www.example.com.pem"; chmod 600 "$root/etc/srvctl/cert/www.example.com.pem"
echo "== sc validate"; sc validate
echo; echo "== sc diff (in namespace $ns, --root $root)"; sc diff || [[ $? -eq 2 ]]
echo; echo "== sc apply"; sc apply
echo; echo "== sc diff (again: nothing to do)"; sc diff
echo; echo "== sc status"; sc status
echo; echo "== what sc created, seen by the tools themselves"
ip -n "$ns" -br addr show type bridge
ip netns exec "$ns" nft list table ip srvctl | sed -n 1,20p   # sed reads it all: no SIGPIPE under pipefail
echo; echo "== sc exec www.example.com -- wget -qO- http://127.0.0.1/"; sc exec www.example.com -- wget -qO- http://127.0.0.1/ || true
echo; echo "== through the reverse proxy (HAProxy on 80/443 in $ns), by name"
in_ns() { ip netns exec "$ns" "$@"; }
echo "-- https://www.example.com/ (operator certificate, curl told to trust it):"
in_ns curl -s --max-time 10 --cacert "$root/demo.crt" --resolve www.example.com:443:127.0.0.1 https://www.example.com/ || true
echo "-- http://shop.example.com/ (no certificate: served over http):"
in_ns curl -s --max-time 10 --resolve shop.example.com:80:127.0.0.1 http://shop.example.com/ || true
echo "-- redirects: http://www.example.com/ (to https) and the alias http://example.com/x:"
in_ns curl -s --max-time 10 -o /dev/null -w '%{http_code} -> %{redirect_url}\n' --resolve www.example.com:80:127.0.0.1 http://www.example.com/ || true
in_ns curl -s --max-time 10 -o /dev/null -w '%{http_code} -> %{redirect_url}\n' --resolve example.com:80:127.0.0.1 http://example.com/x || true
echo; echo "Removing namespace $ns and $root."
