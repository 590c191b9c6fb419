#!/usr/bin/env bash
# Installs everything dockyard needs on a fresh Debian machine: system packages and the Python
# package in a virtual environment (.venv). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(crun runc busybox-static iptables iproute2 gcc libc6-dev tini procps curl openssl
      skopeo docker-registry docker-compose etcd-server etcd-client)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
getent group dockyard >/dev/null || groupadd --system dockyard
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check --no-warn-script-location -e '.[test]'
