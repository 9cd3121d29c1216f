#!/usr/bin/env bash
# One instance against several behind HAProxy (scripts/cluster.sh), on the same trace window, in one
# run: req/s, TTFT p50/p95 and TPOT p50/p99 from `morphserve bench` through the balancer.
#
#   benchmarks/cluster_scaling.sh [--instances "1 3"] [--model dummy:small] [--threads 1] [--work DIR]
#
# The workload is compare_server.sh's trace: the first 72 s of the Azure code trace, arrivals x1.25,
# prompts x0.05 capped at 512, outputs x8 capped at 384 (63 requests). Every instance serves with
# --threads (one each by default: on a 2-core machine, three instances share two cores, so the
# figure says what a balancer adds when cores, not instances, are the limit) and --max-model-len 1024.
# Needs a Release build (scripts/build.sh), haproxy (scripts/install-deps.sh) and the trace in
# ../shared/data; says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

counts="1 3"
model=dummy:small
threads=1
work="${TMPDIR:-/tmp}/morphserve-cluster-scaling"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --instances) counts="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster_scaling.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done
trace_file=../shared/data/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv
[[ -f "$trace_file" ]] || { echo "cluster_scaling.sh: skipped: $trace_file is absent"; exit 0; }
command -v haproxy > /dev/null || { echo "cluster_scaling.sh: haproxy is not installed: run scripts/install-deps.sh" >&2; exit 1; }
morphserve=build/src/cli/morphserve
[[ -x "$morphserve" ]] || { echo "cluster_scaling.sh: $morphserve is missing: run scripts/build.sh first" >&2; exit 1; }
mkdir -p "$work"

port=18531
cluster_pid=
stop_cluster() {
  if [[ -n "$cluster_pid" ]]; then
    kill "$cluster_pid" 2> /dev/null || true
    wait "$cluster_pid" 2> /dev/null || true
    cluster_pid=
  fi
}
trap stop_cluster EXIT

source benchmarks/bench_summary.sh

results="$work/results.txt"
: > "$results"
for n in $counts; do
  echo "== $n instance(s) of $model, $threads thread(s) each" >&2
  rm -rf "$work/cluster-$n"
  scripts/cluster.sh --instances "$n" --port "$port" --stats-port $((port + 1)) --threads "$threads" \
    --dir "$work/cluster-$n" -- -m "$model" --max-model-len 1024 2> "$work/cluster-$n.log" &
  cluster_pid=$!
  for ((tries = 0; ; ++tries)); do
    grep -q "^listening on" "$work/cluster-$n.log" 2> /dev/null && break
    kill -0 "$cluster_pid" 2> /dev/null || { echo "cluster_scaling.sh: cluster.sh failed:" >&2; cat "$work/cluster-$n.log" >&2; exit 1; }
    ((tries < 3000)) || { echo "cluster_scaling.sh: the cluster was not ready in 300 s" >&2; exit 1; }
    sleep 0.1
  done
  "$morphserve" bench --url "http://127.0.0.1:$port" --trace "$trace_file" --window 0:72 --time-scale 1.25 \
    --prompt-scale 0.05 --output-scale 8 --max-prompt 512 --max-output 384 --sample-interval 0 \
    --out "$work/bench-$n.json" > "$work/bench-$n.txt"
  echo "$n $(summarize "$work/bench-$n.txt")" >> "$results"
  stop_cluster
done

echo
echo "$model, $threads thread(s) per instance; $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
awk '
  { n[NR] = $1; rps[NR] = $2; done[NR] = $3; t50[NR] = $4; t95[NR] = $5; p50[NR] = $6; p99[NR] = $7 }
  END {
    print "| instances | req/s | completed | TTFT p50 ms | TTFT p95 ms | TPOT p50 ms | TPOT p99 ms |"
    print "|---|---|---|---|---|---|---|"
    for (i = 1; i <= NR; ++i) printf "| %s | %s | %s | %s | %s | %s | %s |\n", n[i], rps[i], done[i], t50[i], t95[i], p50[i], p99[i]
    if (NR > 1 && rps[1] > 0 && t50[NR] > 0)
      printf "\n%s vs %s instances: req/s %.2fx, TTFT p50 %.2fx lower\n", n[NR], n[1], rps[NR] / rps[1], t50[1] / t50[NR]
  }' "$results"
