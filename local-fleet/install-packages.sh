#!/usr/bin/env bash
# Installs the Debian packages the local fleet runs on (engines, SSH servers, registry, image parts),
# without leaving the packages' own services running: the fleet starts its own copies on its own
# sockets and addresses, and must not find (or depend on) a system dockerd, sshd or registry.
set -euo pipefail

if [ "$(uname -s)" != "Linux" ]; then echo "install-packages.sh: the local fleet needs Linux (Debian 12); this is $(uname -s)" >&2; exit 1; fi
if [ "$(id -u)" != "0" ]; then echo "install-packages.sh: run as root (apt-get install)" >&2; exit 1; fi
if ! command -v apt-get >/dev/null; then echo "install-packages.sh: needs apt-get (Debian or Ubuntu)" >&2; exit 1; fi

packages=(docker.io containerd runc openssh-server openssh-client docker-registry busybox-static apache2-utils iproute2 iptables util-linux)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then echo "install-packages.sh: all packages present"; exit 0; fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d answering 101 tells the packages' maintainer scripts not to start their services
# (dockerd, sshd, docker-registry); it is removed again whatever happens.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Without systemd nothing was started; with systemd, make sure nothing was enabled either.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for unit in docker.service docker.socket containerd.service ssh.service ssh.socket docker-registry.service; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
echo "install-packages.sh: installed ${missing[*]}"
