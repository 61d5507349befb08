#!/usr/bin/env bash
# Debian packages `make test` needs on a fresh machine: python3-venv (the Makefile's
# `python3 -m venv` needs ensurepip, which Debian ships separately), iproute2 (`ss`, used by
# the reliability tests), procps (`ps`, used by the test fixtures and load/soak.py),
# prometheus/promtool, docker-compose (to validate the compose file), wrk (benchmarks) and
# chromium (opens load/run.py's HTML report headless in its test). Installs only what is
# missing. PYTHON names the interpreter the Makefile uses.
set -euo pipefail
PYTHON=${PYTHON:-python3}
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
missing=()
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
  # Only Debian's own interpreter (prefix /usr) gets ensurepip from python3-venv; a pyenv
  # or other build without it must be rebuilt, apt cannot fix it.
  if [ "$("$PYTHON" -c 'import sys; print(sys.prefix)')" = /usr ]; then
    missing+=(python3-venv)
  else
    echo "$PYTHON has no ensurepip (needed by python -m venv) and is not Debian's python3:" \
         "rebuild it with ensurepip, or run make PYTHON=/usr/bin/python3" >&2
    exit 1
  fi
fi
command -v ss >/dev/null || missing+=(iproute2)
command -v ps >/dev/null || missing+=(procps)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v wrk >/dev/null || missing+=(wrk)
command -v chromium >/dev/null || missing+=(chromium)
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
# The prometheus package starts its own service on :9090 when installed, which would clash
# with the tests' and `make stack`'s Prometheus. A policy-rc.d exiting 101 ("action
# forbidden") makes invoke-rc.d and deb-systemd-invoke skip the start; it is removed
# afterwards, and only if this script created it.
created_policy=""
if [ ! -e "$POLICY_RC_D" ]; then
  printf '#!/bin/sh\n# written by accident-api scripts/install-system-deps.sh\nexit 101\n' |
    $sudo tee "$POLICY_RC_D" >/dev/null
  $sudo chmod 755 "$POLICY_RC_D"
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then $sudo rm -f "$POLICY_RC_D"; fi; }
trap cleanup EXIT
$sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
# Under systemd the unit is still enabled for the next boot: disable it (and stop it, in
# case a policy-rc.d that was already there allowed the start).
if [[ " $pkgs " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 ||
    echo "WARNING: could not disable the packaged prometheus service (it may hold :9090)" >&2
fi
