#!/bin/sh
# Container entry point: start from an empty Prometheus multiprocess directory, then
# `exec` the command (gunicorn by default) so it is PID 1 and receives SIGTERM directly,
# letting gunicorn finish in-flight requests before the container stops.
set -eu

dir="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus-multiproc}"
export PROMETHEUS_MULTIPROC_DIR="$dir"
mkdir -p "$dir"
# Stale *.db files from a previous run would be summed into the new counters (and a
# crashed worker's gauges never go away). Delete the contents, not the directory: it may
# be a tmpfs mount point.
find "$dir" -mindepth 1 -delete

exec "$@"
