#!/usr/bin/env bash
# Fuzzes every libFuzzer target in fuzz/ for a fixed time each, one after another, and prints a
# table: target, executions, executions per second, corpus size, crashes. Builds build-fuzz/ first
# (clang-14, ASan + UBSan, MORPHSERVE_FUZZ=ON). Each target starts from a fresh scratch corpus
# seeded from fuzz/corpus/<target>; the committed corpus is never written. Crash, leak and timeout
# inputs land in the artifacts folder printed at the end. Exits non-zero on any crash.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (60)] [TARGET...]
#   MORPHSERVE_FUZZ_BUILD  build folder (build-fuzz)
#   MORPHSERVE_FUZZ_WORK   scratch corpora, logs and artifacts (BUILD/fuzz-run; emptied first)
#   MORPHSERVE_FUZZ_VOCAB  a GGUF whose tokenizer fuzz_tokenizer uses instead of its built-in ones
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2; }
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_gguf fuzz_tokenizer fuzz_completion_request fuzz_chat_request fuzz_chat_template fuzz_trace)
fi
build=${MORPHSERVE_FUZZ_BUILD:-build-fuzz}
work=${MORPHSERVE_FUZZ_WORK:-$build/fuzz-run}

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMORPHSERVE_SANITIZE=address -DMORPHSERVE_FUZZ=ON -DMORPHSERVE_BUILD_TESTS=OFF \
  -DMORPHSERVE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

rm -rf "$work"
artifacts=$work/artifacts
mkdir -p "$artifacts"
# One of libFuzzer's -print_final_stats lines from the current target's log.
final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
rows=()
failed=0
for target in "${targets[@]}"; do
  corpus=$work/corpus/$target
  log=$work/$target.log
  mkdir -p "$corpus"
  cp fuzz/corpus/"$target"/* "$corpus"/
  echo "fuzzing $target for ${seconds}s (log: $log)"
  rc=0
  "$build/fuzz/$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/$target-" "$corpus" >"$log" 2>&1 || rc=$?
  crashes=$(find "$artifacts" -name "$target-*" | wc -l)
  if ((rc != 0 && crashes == 0)); then crashes=1; fi  # e.g. killed before it could write the input
  ((crashes == 0)) || { failed=1; echo "  CRASH (exit $rc); see $log"; }
  rows+=("$(printf '%-26s %12s %9s %8s %8s' "$target" "$(final_stat number_of_executed_units)" \
    "$(final_stat average_exec_per_sec)" "$(find "$corpus" -type f | wc -l)" "$crashes")")
done

echo
printf '%-26s %12s %9s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${rows[@]}"
echo
echo "artifacts: $artifacts"
exit $failed
