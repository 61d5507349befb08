#!/usr/bin/env bash
# Native stack (no Docker): the API under gunicorn plus a local Prometheus with the repo's
# prometheus/ config, its compose targets rewritten to 127.0.0.1. Trains a synthetic model
# first if MODEL_DIR has none. Prints the URLs; Ctrl-C (or SIGTERM) stops both.
#   VENV_BIN=.venv/bin MODEL_DIR=models PORT=8000 METRICS_PORT=9200 PROMETHEUS_PORT=9090
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${VENV_BIN:-.venv/bin}"
MODEL_DIR="${MODEL_DIR:-models}"
PORT="${PORT:-8000}"
METRICS_PORT="${METRICS_PORT:-9200}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS="${PROMETHEUS:-prometheus}"

command -v "$PROMETHEUS" >/dev/null || {
  echo "stack: '$PROMETHEUS' not found: run 'make system-deps' (Debian package prometheus)" >&2
  exit 1; }

if [ ! -f "$MODEL_DIR/model_card.json" ]; then
  echo ">>> No model in $MODEL_DIR/: training one on synthetic BAAC-format data."
  "$BIN/accident-api" train --synthetic --out "$MODEL_DIR"
fi

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/accident-stack.XXXXXX")"
api_pid="" prom_pid=""
cleanup() {
  trap - INT TERM EXIT
  for pid in $api_pid $prom_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $api_pid $prom_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
  echo ">>> stack stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Same rules, same scrape config; only the compose service names become loopback addresses.
cp -r prometheus "$run_dir/prometheus"
sed -i -e "s/\"api:9200\"/\"127.0.0.1:$METRICS_PORT\"/" \
       -e "s/\"localhost:9090\"/\"127.0.0.1:$PROMETHEUS_PORT\"/" "$run_dir/prometheus/prometheus.yml"
if command -v promtool >/dev/null; then
  promtool check config --syntax-only "$run_dir/prometheus/prometheus.yml" >/dev/null
fi

mkdir "$run_dir/multiproc"
PROMETHEUS_MULTIPROC_DIR="$run_dir/multiproc" MODEL_PATH="$MODEL_DIR" HOST=127.0.0.1 \
  PORT="$PORT" METRICS_PORT="$METRICS_PORT" \
  "$BIN/gunicorn" -c gunicorn.conf.py wsgi:app &
api_pid=$!
"$PROMETHEUS" --config.file="$run_dir/prometheus/prometheus.yml" \
  --storage.tsdb.path="$run_dir/prometheus-data" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --log.level=warn &
prom_pid=$!
echo ">>> api pid $api_pid, prometheus pid $prom_pid (config $run_dir/prometheus)"

"$BIN/python" - "$PORT" "$PROMETHEUS_PORT" "$api_pid" "$prom_pid" <<'PY'
"""Wait (60 s at most) until the API is ready and Prometheus is up."""
import os, sys, time, urllib.request
api, prom, pids = sys.argv[1], sys.argv[2], sys.argv[3:]
urls = [f"http://127.0.0.1:{api}/health/ready", f"http://127.0.0.1:{prom}/-/ready"]
deadline = time.monotonic() + 60
while urls and time.monotonic() < deadline:
    for pid in pids:
        try:
            os.kill(int(pid), 0)
        except OSError:
            sys.exit(f"stack: process {pid} exited during start-up (see its log above)")
    try:
        urllib.request.urlopen(urls[0], timeout=2)
        urls.pop(0)
    except OSError:
        time.sleep(0.5)
sys.exit(f"stack: not ready after 60 s: {urls[0]}" if urls else 0)
PY

cat <<EOF

  API         http://127.0.0.1:$PORT/            (Swagger UI: /docs)
  Metrics     http://127.0.0.1:$METRICS_PORT/metrics   (sidecar exporter)
  Prometheus  http://127.0.0.1:$PROMETHEUS_PORT/       (targets: /targets, alerts: /alerts)
  Grafana     not started natively: use 'docker compose up', or point a local Grafana at
              the Prometheus URL above and import grafana-provisioning/dashboards/json/
  Load        make load LOAD_ARGS='--url http://127.0.0.1:$PORT --rate 20 --duration 60'

>>> stack ready; Ctrl-C stops it
EOF

# Stop the whole stack as soon as either process dies.
wait -n "$api_pid" "$prom_pid" || true
echo ">>> a stack process exited; stopping the other" >&2
exit 1
