#!/usr/bin/env bash
# morphserve against llama.cpp on the same GGUF files and threads, in one run: decode (tg128),
# prefill (pp128, pp512) and morphserve's batched decode, printed as one table of ratios.
#
#   benchmarks/compare_llamacpp.sh [--shapes "small 1b"] [--types "f16 q8_0 q4_0 q4_k_m"] [--threads 2]
#                                  [--work DIR] [--reps 3]
#
# Models are random-weight dummies written by `morphserve export` (F16) and quantized with
# llama-quantize; both engines load weights into memory (llama-bench -mmp 0). Needs a Release build
# (scripts/build.sh) and ../shared/tools/llama.cpp; says so and exits 0 when llama.cpp is absent.
# llama.cpp has no batched-decode mode in llama-bench, so those rows are morphserve's alone.
set -euo pipefail
cd "$(dirname "$0")/.."

shapes="small 1b"
types="f16 q8_0 q4_0 q4_k_m"
threads=2
work="${TMPDIR:-/tmp}/morphserve-compare"
reps=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shapes) shapes="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_llamacpp.sh: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done

llama_src="${MORPHSERVE_LLAMA_CPP:-../shared/tools/llama.cpp}/bin"
if [[ ! -x "$llama_src/llama-bench" || ! -x "$llama_src/llama-quantize" ]]; then
  echo "compare_llamacpp.sh: skipped: no llama.cpp at $llama_src (llama-bench, llama-quantize)"
  exit 0
fi
morphserve=build/src/cli/morphserve
bench=build/benchmarks/bench_decode
for tool in "$morphserve" "$bench"; do
  [[ -x "$tool" ]] || { echo "compare_llamacpp.sh: $tool is missing: run scripts/build.sh first" >&2; exit 1; }
done

source benchmarks/llama_cpp_bin.sh

# CSV column by header name.
column() { awk -F, -v want="$1" 'NR == 1 { for (i = 1; i <= NF; ++i) { h = $i; gsub(/"/, "", h); if (h == want) c = i } next }
                                 { v = $c; gsub(/"/, "", v); print v }'; }

results="$work/results.txt"
: > "$results"
for shape in $shapes; do
  f16="$work/$shape.f16.gguf"
  [[ -f "$f16" ]] || "$morphserve" export -m "dummy:$shape:f16" -o "$f16" >&2
  for type in $types; do
    model="$work/$shape.$type.gguf"
    if [[ "$type" != f16 && ! -f "$model" ]]; then
      llama llama-quantize "$f16" "$model" "${type^^}" > "$work/quantize.log" 2>&1 ||
        { echo "llama-quantize $type failed: see $work/quantize.log" >&2; exit 1; }
    fi
    echo "== $shape $type: llama-bench" >&2
    llama llama-bench -m "$model" -t "$threads" -p 128,512 -n 128 -mmp 0 -r "$reps" -o csv 2> /dev/null > "$work/llama.csv"
    paste -d, <(column n_prompt < "$work/llama.csv") <(column n_gen < "$work/llama.csv") <(column avg_ts < "$work/llama.csv") |
      while IFS=, read -r np ng ts; do
        if [[ "$ng" == 0 ]]; then echo "$shape $type pp$np llama $ts"; else echo "$shape $type tg$ng llama $ts"; fi
      done >> "$results"
    echo "== $shape $type: morphserve" >&2
    MORPHSERVE_BENCH_THREADS="$threads" "$bench" --model="$model" --benchmark_format=csv 2> /dev/null |
      grep -v '^kernels:' > "$work/morphserve.csv"
    paste -d, <(column name < "$work/morphserve.csv") <(column tok/s < "$work/morphserve.csv") \
              <(column roofline < "$work/morphserve.csv") |
      while IFS=, read -r name ts roof; do
        case "$name" in
          decode/*) echo "$shape $type tg128 morphserve $ts $roof" ;;
          prefill/*) n="${name#prefill/*/}"; echo "$shape $type pp${n%%/*} morphserve $ts" ;;
          batch_decode/*) n="${name#batch_decode/*/}"; echo "$shape $type batch${n%%/*} morphserve $ts $roof" ;;
        esac
      done >> "$results"
  done
done

echo
echo "threads $threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); tok/s"
awk '
  { key = $1 " " $2 " " $3; if (!(key in seen)) { seen[key] = 1; order[n++] = key }
    if ($4 == "llama") llama[key] = $5; else { ms[key] = $5; roof[key] = $6 } }
  END {
    printf "| %-6s | %-7s | %-8s | %12s | %12s | %6s | %9s |\n", "model", "type", "test", "llama.cpp", "morphserve", "ratio", "roofline"
    printf "|--------|---------|----------|--------------|--------------|--------|-----------|\n"
    for (i = 0; i < n; ++i) {
      split(order[i], k, " ")
      l = (order[i] in llama) ? sprintf("%12.1f", llama[order[i]]) : sprintf("%12s", "-")
      m = (order[i] in ms) ? sprintf("%12.1f", ms[order[i]]) : sprintf("%12s", "-")
      r = ((order[i] in llama) && (order[i] in ms)) ? sprintf("%5.2fx", ms[order[i]] / llama[order[i]]) : sprintf("%6s", "-")
      f = (roof[order[i]] != "") ? sprintf("%8.0f%%", 100 * roof[order[i]]) : sprintf("%9s", "")
      printf "| %-6s | %-7s | %-8s | %s | %s | %s | %s |\n", k[1], k[2], k[3], l, m, r, f
    }
  }' "$results"
