#!/usr/bin/env bash
# Several `morphserve serve` instances on 127.0.0.1 behind HAProxy, in the foreground until
# SIGINT/SIGTERM (then HAProxy stops and every instance drains).
#
#   scripts/cluster.sh [--instances 3] [--port 8080] [--stats-port PORT+1] [--threads 1] [--dir DIR]
#                      [--morphserve PATH] [--instance-args K "ARGS"]... [-- SERVE ARGS...]
#
# Every instance runs `serve SERVE ARGS` (default: -m dummy:small) with --threads and free ports
# for HTTP and for its HAProxy agent (--haproxy-agent-port); --instance-args adds ARGS to
# instance K only (0-based, e.g. --instance-args 2 "--morph static-w4"). HAProxy balances
# leastconn; each server is checked on GET /health (503 while loading or draining takes it out) and
# by its agent, whose weight falls with KV use, queue and precision. A request refused with 503 or
# a failed connection is retried on another instance, so draining loses none. Responses name their
# instance in X-Served-By. The stats page is http://127.0.0.1:STATS/stats (CSV: /stats;csv).
# DIR (default: a new temporary folder) holds haproxy.cfg, the logs, and `instances` with one line
# "NAME PID HTTP_PORT AGENT_PORT" per instance. Ready when stderr says "listening on http://...".
# Needs haproxy (scripts/install-deps.sh installs it) and a build (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

instances=3
port=8080
stats_port=""
threads=1
dir=""
morphserve=build/src/cli/morphserve
declare -A instance_args=()
serve_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --instances) instances="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --stats-port) stats_port="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --morphserve) morphserve="$2"; shift 2 ;;
    --instance-args) instance_args["$2"]="$3"; shift 3 ;;
    --) shift; serve_args=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done
[[ "$instances" =~ ^[1-9][0-9]*$ ]] || { echo "cluster.sh: --instances must be a positive number, got '$instances'" >&2; exit 1; }
((${#serve_args[@]})) || serve_args=(-m dummy:small)
stats_port="${stats_port:-$((port + 1))}"
command -v haproxy > /dev/null || { echo "cluster.sh: haproxy is not installed: run scripts/install-deps.sh" >&2; exit 1; }
[[ -x "$morphserve" ]] || { echo "cluster.sh: $morphserve is missing: run scripts/build.sh first" >&2; exit 1; }
dir="${dir:-$(mktemp -d "${TMPDIR:-/tmp}/morphserve-cluster.XXXXXX")}"
mkdir -p "$dir"

pids=()
haproxy_pid=""
stop_all() {
  trap - EXIT INT TERM
  [[ -z "$haproxy_pid" ]] || kill "$haproxy_pid" 2> /dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM

for ((k = 0; k < instances; ++k)); do
  # shellcheck disable=SC2086 # --instance-args is a list of words
  "$morphserve" serve --host 127.0.0.1 --port 0 --haproxy-agent-port 0 --threads "$threads" \
    "${serve_args[@]}" ${instance_args[$k]:-} > "$dir/m$k.log" 2>&1 &
  pids+=($!)
done

# Each instance prints its ports at once and "serving ..." once its model is loaded.
: > "$dir/instances"
for ((k = 0; k < instances; ++k)); do
  log="$dir/m$k.log"
  for ((tries = 0; ; ++tries)); do
    if ! kill -0 "${pids[$k]}" 2> /dev/null; then
      echo "cluster.sh: instance m$k exited at start:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    grep -q "serving " "$log" && break
    ((tries < 1200)) || { echo "cluster.sh: instance m$k not ready after 120 s (see $log)" >&2; exit 1; }
    sleep 0.1
  done
  http_port=$(sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$log" | head -n 1)
  agent_port=$(sed -n 's|^haproxy agent listening on [^:]*:\([0-9]*\).*|\1|p' "$log" | head -n 1)
  echo "m$k ${pids[$k]} $http_port $agent_port" >> "$dir/instances"
done

{
  cat << EOF
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 15m
    timeout server 15m
    timeout http-request 30s
    # A 503 (draining, loading) or a failed connection is retried elsewhere: nothing was processed.
    # Retrying needs the whole request in HAProxy first, so bodies are buffered before a server
    # is picked (completion requests are small).
    option http-buffer-request
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503

frontend morphserve
    bind 127.0.0.1:$port
    default_backend instances

backend instances
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    http-response set-header X-Served-By %s
    default-server check inter 500ms fall 2 rise 1 agent-check agent-inter 500ms weight 100
EOF
  while read -r name _ http_port agent_port; do
    echo "    server $name 127.0.0.1:$http_port agent-port $agent_port"
  done < "$dir/instances"
  cat << EOF

listen stats
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
    stats refresh 1s
EOF
} > "$dir/haproxy.cfg"
haproxy -c -q -f "$dir/haproxy.cfg" || { echo "cluster.sh: haproxy refused $dir/haproxy.cfg" >&2; exit 1; }
haproxy -db -f "$dir/haproxy.cfg" > "$dir/haproxy.log" 2>&1 &
haproxy_pid=$!
for ((tries = 0; ; ++tries)); do
  kill -0 "$haproxy_pid" 2> /dev/null || { echo "cluster.sh: haproxy exited:" >&2; cat "$dir/haproxy.log" >&2; exit 1; }
  (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  ((tries < 100)) || { echo "cluster.sh: haproxy is not listening on $port (see $dir/haproxy.log)" >&2; exit 1; }
  sleep 0.1
done
echo "listening on http://127.0.0.1:$port (HAProxy over $instances instances; stats http://127.0.0.1:$stats_port/stats; files in $dir)" >&2
wait "$haproxy_pid"
