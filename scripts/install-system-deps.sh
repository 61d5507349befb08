#!/usr/bin/env bash
# Debian packages the integration tests run for real: prometheus/promtool, docker-compose
# (to validate the compose file) and wrk (benchmarks). Installs only what is missing.
set -euo pipefail
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v wrk >/dev/null || missing+=(wrk)
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "Missing Debian packages: $pkgs. Install them as root (apt-get install -y $pkgs)." >&2
    exit 1
  fi
fi
echo ">>> Installing Debian packages: $pkgs"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The prometheus package may try to start its own service; policy-rc.d keeps it stopped.
$sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
