#!/usr/bin/env bash
# The official OpenAI Node.js client against `morphserve serve -m dummy:tiny`.
# Usage: run.sh MORPHSERVE_BINARY [WORK_DIR]
# Installs the `openai` npm package into WORK_DIR (kept between runs), starts the server on a free
# loopback port and runs client.mjs. Prints "SKIPPED: ..." and exits 0 only when node/npm are
# missing or npm cannot reach its registry.
set -euo pipefail
binary=$1
here=$(cd "$(dirname "$0")" && pwd)
pid=""
if [[ -n "${2:-}" ]]; then
  work=$2
  keep_work=1
else
  work=$(mktemp -d)
  keep_work=0
fi
mkdir -p "$work"
cleanup() {
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [[ $keep_work -eq 0 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "SKIPPED: node and npm are needed for the OpenAI client test (scripts/install-deps.sh installs them)"
  exit 0
fi
cp "$here/package.json" "$here/client.mjs" "$work/"
if [[ ! -f "$work/node_modules/openai/package.json" ]]; then
  if ! timeout 300 npm install --no-audit --no-fund --prefix "$work" openai@4 >"$work/npm.log" 2>&1; then
    if grep -qiE "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|network|proxy" "$work/npm.log"; then
      echo "SKIPPED: npm cannot reach its registry:"
      tail -n 5 "$work/npm.log"
      exit 0
    fi
    cat "$work/npm.log"
    exit 1
  fi
fi

"$binary" serve -m dummy:tiny --port 0 2>"$work/server.log" &
pid=$!
port=""
for _ in $(seq 600); do
  port=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$work/server.log" | grep -oE '[0-9]+$' || true)
  [[ -n "$port" ]] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "the server did not start:"
  cat "$work/server.log"
  exit 1
fi
if ! timeout 180 node "$work/client.mjs" "http://127.0.0.1:$port"; then
  echo "--- server log ---"
  tail -n 30 "$work/server.log"
  exit 1
fi
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
if [[ $status -ne 0 ]]; then
  echo "the server exited with $status after SIGTERM"
  exit 1
fi
