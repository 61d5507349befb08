#!/usr/bin/env bash
# Native stack (no Docker): REPLICAS API instances (default 1) under gunicorn behind a real
# nginx with the repo's deploy/nginx config, plus a local Prometheus with the repo's
# prometheus/ config discovering the instances from a file (file_sd) where compose uses
# Docker's DNS (scripts/native_stack.py writes both configs). Trains a synthetic model first
# if MODEL_DIR has none. Prints the URLs; Ctrl-C (or SIGTERM) stops everything.
#   VENV_BIN=.venv/bin MODEL_DIR=models REPLICAS=1 PORT=8000 (nginx: the API's address)
#   INSTANCE_PORT=8001 METRICS_PORT=9200 (instance i of 0..REPLICAS-1 on INSTANCE_PORT+i,
#   its metrics on METRICS_PORT+i) PROMETHEUS_PORT=9090
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${VENV_BIN:-.venv/bin}"
MODEL_DIR="${MODEL_DIR:-models}"
REPLICAS="${REPLICAS:-1}"
PORT="${PORT:-8000}"
INSTANCE_PORT="${INSTANCE_PORT:-8001}"
METRICS_PORT="${METRICS_PORT:-9200}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS="${PROMETHEUS:-prometheus}"

[[ "$REPLICAS" =~ ^[1-9][0-9]*$ ]] || {
  echo "stack: REPLICAS=$REPLICAS must be a whole number >= 1" >&2; exit 1; }
command -v "$PROMETHEUS" >/dev/null || {
  echo "stack: '$PROMETHEUS' not found: run 'make system-deps' (Debian package prometheus)" >&2
  exit 1; }
"$BIN/python" -c 'from scripts.native_stack import nginx_binary as n; raise SystemExit(not n())' || {
  echo "stack: nginx not found: run 'make system-deps' (Debian package nginx)" >&2; exit 1; }

if [ ! -f "$MODEL_DIR/model_card.json" ]; then
  echo ">>> No model in $MODEL_DIR/: training one on synthetic BAAC-format data."
  "$BIN/accident-api" train --synthetic --out "$MODEL_DIR"
fi

run_dir="$(mktemp -d "${TMPDIR:-/tmp}/accident-stack.XXXXXX")"
api_pids=() nginx_pid="" prom_pid=""
cleanup() {
  trap - INT TERM EXIT
  for pid in "${api_pids[@]}" $nginx_pid $prom_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${api_pids[@]}" $nginx_pid $prom_pid; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run_dir"
  echo ">>> stack stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

backends=() targets=() metrics_urls=()
for ((i = 0; i < REPLICAS; i++)); do
  backends+=("127.0.0.1:$((INSTANCE_PORT + i))")
  targets+=("127.0.0.1:$((METRICS_PORT + i))")
  metrics_urls+=("http://127.0.0.1:$((METRICS_PORT + i))/metrics")
done

# Same rules and scrape settings as compose; only the discovery of the instances differs.
prom_config="$("$BIN/python" scripts/native_stack.py prometheus "$run_dir/prometheus" \
  "127.0.0.1:$PROMETHEUS_PORT" "${targets[@]}")"
if command -v promtool >/dev/null; then
  promtool check config --syntax-only "$prom_config" >/dev/null
fi

for ((i = 0; i < REPLICAS; i++)); do
  mkdir "$run_dir/multiproc-$i"
  PROMETHEUS_MULTIPROC_DIR="$run_dir/multiproc-$i" MODEL_PATH="$MODEL_DIR" HOST=127.0.0.1 \
    PORT="$((INSTANCE_PORT + i))" METRICS_PORT="$((METRICS_PORT + i))" \
    "$BIN/gunicorn" -c gunicorn.conf.py wsgi:app &
  api_pids+=($!)
done
# configures deploy/nginx/nginx.conf for these instances, then becomes nginx (same pid)
"$BIN/python" scripts/native_stack.py nginx "$run_dir/nginx" "127.0.0.1:$PORT" "${backends[@]}" &
nginx_pid=$!
"$PROMETHEUS" --config.file="$prom_config" \
  --storage.tsdb.path="$run_dir/prometheus-data" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --log.level=warn &
prom_pid=$!
echo ">>> api pids ${api_pids[*]}, nginx pid $nginx_pid, prometheus pid $prom_pid (run dir $run_dir)"

"$BIN/python" - "$PORT" "$PROMETHEUS_PORT" "${backends[*]}" \
  "${api_pids[*]} $nginx_pid $prom_pid" <<'PY'
"""Wait (60 s at most) until every instance and nginx answer ready and Prometheus is up."""
import os, sys, time, urllib.request
api, prom, backends, pids = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
urls = [f"http://{backend}/health/ready" for backend in backends]
urls += [f"http://127.0.0.1:{api}/health/ready", f"http://127.0.0.1:{prom}/-/ready"]
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

  API         http://127.0.0.1:$PORT/            (Swagger UI: /docs; nginx in front of
              $REPLICAS instance(s): ${backends[*]})
  Metrics     ${metrics_urls[*]}   (sidecar exporters)
  Prometheus  http://127.0.0.1:$PROMETHEUS_PORT/       (targets: /targets, alerts: /alerts)
  Grafana     not started natively: use 'docker compose up', or point a local Grafana at
              the Prometheus URL above and import grafana-provisioning/dashboards/json/
  Load        make load LOAD_ARGS='--url http://127.0.0.1:$PORT --rate 20 --duration 60'

>>> stack ready; Ctrl-C stops it
EOF

# nginx or Prometheus exiting stops the stack. An API instance exiting leaves the others
# serving (nginx retries its requests elsewhere), unless it was the last one.
live=("${api_pids[@]}")
while true; do
  exited=""
  wait -n -p exited "${live[@]}" "$nginx_pid" "$prom_pid" || true
  if [ "$exited" = "$nginx_pid" ] || [ "$exited" = "$prom_pid" ]; then
    echo ">>> a stack process exited (pid $exited); stopping the others" >&2
    exit 1
  fi
  remaining=()
  for pid in "${live[@]}"; do [ "$pid" = "$exited" ] || remaining+=("$pid"); done
  live=("${remaining[@]}")
  if [ ${#live[@]} -eq 0 ]; then
    echo ">>> the last API instance exited (pid $exited); stopping the others" >&2
    exit 1
  fi
  echo ">>> API instance pid $exited exited; ${#live[@]} of $REPLICAS still serving" >&2
done
