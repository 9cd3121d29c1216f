#!/usr/bin/env bash
# morphserve's server against llama.cpp's llama-server on the same GGUF file and threads, in one
# run: the same workloads replayed by `morphserve bench` against `llama-server -np 16 --no-mmap` and
# against `morphserve serve --morph off`, printed as one table (req/s, TTFT p50/p95, TPOT p50/p99,
# output tok/s).
#
#   benchmarks/compare_server.sh [--shape small] [--type q4_k_m] [--threads 2] [--work DIR]
#                                [--workloads "synthetic trace batch4 batch16"]
#
# Workloads: `synthetic` is 64 requests of 128 prompt + 64 output tokens, 16 in flight at a time;
# `trace` is the first 72 s of the Azure code trace shaped as the README's pressure experiment
# (arrivals x1.25, prompts x0.05 capped at 512, outputs x8 capped at 384: 63 requests); `batchN` is
# batched decode, N sequences at once: 2N requests of 16 prompt + 128 output tokens, N in flight, so
# the output tok/s column is the server's decode throughput at N sequences. The model is
# a random-weight dummy written by `morphserve export` (F16) and quantized with llama-quantize.
# Both servers get room for 16 sequences of 1024 tokens (llama-server -c 16384; morphserve
# --max-num-seqs 16 --max-model-len 1024 with the auto budget), so neither is KV-bound.
# Needs a Release build (scripts/build.sh) and ../shared/tools/llama.cpp; says so and exits 0 when
# llama.cpp is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

shape=small
type=q4_k_m
threads=2
work="${TMPDIR:-/tmp}/morphserve-compare"
workloads="synthetic trace batch4 batch16"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) shape="$2"; shift 2 ;;
    --type) type="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_server.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done

llama_src="${MORPHSERVE_LLAMA_CPP:-../shared/tools/llama.cpp}/bin"
if [[ ! -x "$llama_src/llama-server" || ! -x "$llama_src/llama-quantize" ]]; then
  echo "compare_server.sh: skipped: no llama.cpp at $llama_src (llama-server, llama-quantize)"
  exit 0
fi
trace_file=../shared/data/traces/azure-llm-2023/AzureLLMInferenceTrace_code.csv
if [[ " $workloads " == *" trace "* && ! -f "$trace_file" ]]; then
  echo "compare_server.sh: $trace_file is absent: replaying the synthetic workload only" >&2
  workloads="${workloads//trace/}"
fi
command -v curl > /dev/null || { echo "compare_server.sh: needs curl (apt-get install curl)" >&2; exit 1; }
morphserve="$(pwd)/build/src/cli/morphserve"
[[ -x "$morphserve" ]] || { echo "compare_server.sh: $morphserve is missing: run scripts/build.sh first" >&2; exit 1; }

source benchmarks/llama_cpp_bin.sh

model="$work/$shape.$type.gguf"
f16="$work/$shape.f16.gguf"
[[ -f "$f16" ]] || "$morphserve" export -m "dummy:$shape:f16" -o "$f16" >&2
if [[ "$type" != f16 && ! -f "$model" ]]; then
  llama llama-quantize "$f16" "$model" "${type^^}" > "$work/quantize.log" 2>&1 ||
    { echo "llama-quantize $type failed: see $work/quantize.log" >&2; exit 1; }
fi
# The dummies' vocabularies (bench's pseudo-random prompt ids stay below it).
case "$shape" in tiny) vocab=512 ;; llama3-*) vocab=128256 ;; qwen2*) vocab=151936 ;; *) vocab=32000 ;; esac

port=18431
server_pid=
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2> /dev/null || true
    wait "$server_pid" 2> /dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT
wait_ready() {
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null 2>&1; then return 0; fi
    kill -0 "$server_pid" 2> /dev/null || { echo "compare_server.sh: $1 exited at start: see $work/$1.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "compare_server.sh: $1 did not answer within 300 s: see $work/$1.log" >&2
  exit 1
}

# 16 slots of the longest request (512 + 384 tokens, rounded up).
context=$((16 * 1024))
start_server() {
  case "$1" in
    llama-server)
      # llama-server runs even /v1/completions output through its chat parser, which refuses text
      # that ends inside a UTF-8 character ("does not match the expected Content-only format", with
      # or without --jinja); random weights end there now and then, and those requests fail. The
      # table's "completed" column shows how many.
      LD_LIBRARY_PATH="$bin" "$bin/llama-server" -m "$model" -t "$threads" -tb "$threads" --port "$port" \
        --host 127.0.0.1 -np 16 -c "$context" --no-mmap --metrics > "$work/$1.log" 2>&1 &
      ;;
    morphserve)
      "$morphserve" serve -m "$model" --threads "$threads" --port "$port" --host 127.0.0.1 --morph off \
        --max-num-seqs 16 --max-model-len 1024 > "$work/$1.log" 2>&1 &
      ;;
  esac
  server_pid=$!
  wait_ready "$1"
}

run_workload() {
  local workload="$1" out="$2"
  case "$workload" in
    synthetic)
      "$morphserve" bench --url "http://127.0.0.1:$port" --vocab-size "$vocab" \
        --synthetic rate=1000,requests=64,prompt=128,output=64 --max-in-flight 16 --out "$out.json" > "$out.txt"
      ;;
    trace)
      "$morphserve" bench --url "http://127.0.0.1:$port" --vocab-size "$vocab" --trace "$trace_file" \
        --window 0:72 --time-scale 1.25 --prompt-scale 0.05 --output-scale 8 --max-prompt 512 --max-output 384 \
        --out "$out.json" > "$out.txt"
      ;;
    batch*)
      local n="${workload#batch}"
      "$morphserve" bench --url "http://127.0.0.1:$port" --vocab-size "$vocab" \
        --synthetic "rate=1000,requests=$((2 * n)),prompt=16,output=128" --max-in-flight "$n" --out "$out.json" > "$out.txt"
      ;;
    *) echo "compare_server.sh: unknown workload '$workload' (synthetic, trace, batchN)" >&2; exit 1 ;;
  esac
}

source benchmarks/bench_summary.sh

results="$work/server-results.txt"
: > "$results"
for engine in llama-server morphserve; do
  echo "== $engine on $model" >&2
  start_server "$engine"
  for workload in $workloads; do
    echo "   $workload" >&2
    run_workload "$workload" "$work/$engine.$workload"
    echo "$workload $engine $(summarize "$work/$engine.$workload.txt")" >> "$results"
  done
  stop_server
done

echo
echo "$shape $type, threads $threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
awk '
  { w = $1; if (!(w in seen)) { seen[w] = 1; order[n++] = w }
    row[w, $2] = $0; rps[w, $2] = $3; t50[w, $2] = $5; otps[w, $2] = $9 }
  END {
    printf "| %-9s | %-12s | %8s | %9s | %10s | %10s | %10s | %10s | %10s |\n", "workload", "engine", "req/s", "completed",
           "TTFT p50", "TTFT p95", "TPOT p50", "TPOT p99", "out tok/s"
    printf "|-----------|--------------|----------|-----------|------------|------------|------------|------------|------------|\n"
    for (i = 0; i < n; ++i) {
      w = order[i]
      for (e = 0; e < 2; ++e) {
        engine = e == 0 ? "llama-server" : "morphserve"
        if (!((w, engine) in row)) continue
        split(row[w, engine], f, " ")
        printf "| %-9s | %-12s | %8s | %9s | %7s ms | %7s ms | %7s ms | %7s ms | %10s |\n", w, engine, f[3], f[4], f[5], f[6], f[7], f[8], f[9]
      }
      if (((w, "llama-server") in row) && ((w, "morphserve") in row) && rps[w, "llama-server"] > 0 && t50[w, "morphserve"] > 0 &&
          otps[w, "llama-server"] > 0)
        printf "| %-9s | %-12s | %7.2fx | %9s | %9.2fx | %10s | %10s | %10s | %9.2fx |\n", w, "ratio", rps[w, "morphserve"] / rps[w, "llama-server"], "",
               t50[w, "llama-server"] / t50[w, "morphserve"], "", "", "", otps[w, "morphserve"] / otps[w, "llama-server"]
    }
  }' "$results"
echo "ratio: morphserve req/s and output tok/s over llama-server's; TTFT p50: llama-server's over morphserve's (above 1: morphserve faster)"
