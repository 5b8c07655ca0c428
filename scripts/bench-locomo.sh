#!/usr/bin/env bash
# One command for the LoCoMo benchmark: start a throw-away embedded service (or use BENCH_URL),
# run bench/locomo.py against it over HTTP, stop the service. Extra arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ -n "${BENCH_URL:-}" ]; then
  exec "$PY" -m bench.locomo --base-url "$BENCH_URL" "$@"
fi
data=$(mktemp -d)
port=${BENCH_PORT:-8765}
MEMORY_AUTH_DISABLED=true MEMORY_DATA_DIR="$data" MEMORY_LOG_LEVEL=WARNING .venv/bin/memory-service serve --port "$port" > "$data/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 180); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$data/service.log"; exit 1; }
  sleep 1
done
"$PY" -m bench.locomo --base-url "http://127.0.0.1:$port" "$@"
