#!/usr/bin/env bash
# Installs every system package in scripts/system-packages.txt with apt-get (Debian, Ubuntu) or dnf
# (Fedora): as root directly, otherwise through sudo. README command 1 and .ci/run both use it.
set -euo pipefail
list="$(dirname "$0")/system-packages.txt"

if [[ $EUID -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-system-packages.sh: installing packages needs root, and there is no sudo: run it as root" >&2
  exit 1
fi

# Column 1 (Debian) or 2 (Fedora) of the list, without comments and `-` entries.
names() { sed -e 's/#.*//' "$list" | awk -v col="$1" 'NF >= 2 && $col != "-" { print $col }'; }

if command -v apt-get >/dev/null; then
  mapfile -t packages < <(names 1)
  # On a host with the dynamic busybox, busybox-static replaces it (apt-get does that itself).
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
elif command -v dnf >/dev/null; then
  mapfile -t packages < <(names 2)
  # Fedora's container and cloud images carry curl-minimal, which conflicts with curl and provides
  # the same /usr/bin/curl (http and https: all the tests use): keep it rather than fail on the conflict.
  if rpm -q curl-minimal >/dev/null 2>&1; then
    for i in "${!packages[@]}"; do [[ "${packages[$i]}" == curl ]] && unset 'packages[i]'; done
    packages=("${packages[@]}")
  fi
  "${as_root[@]}" dnf install -y "${packages[@]}"
else
  echo "install-system-packages.sh: neither apt-get nor dnf found; install these by hand: $(names 1 | tr '\n' ' ')" >&2
  exit 1
fi
echo "install-system-packages.sh: ${#packages[@]} packages installed or already present"
