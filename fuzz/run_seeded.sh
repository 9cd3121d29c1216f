#!/usr/bin/env bash
# ctest's short fuzzing run: copies a seed corpus to a fresh scratch folder and fuzzes that, so
# the committed corpus is never modified. A crash, leak or sanitizer report fails the test and
# leaves the input in SCRATCH/crash-*.
# Usage: run_seeded.sh [--require FILE] FUZZER CORPUS SCRATCH [libFuzzer flags...]
set -euo pipefail
if [[ ${1:-} == --require ]]; then
  if [[ ! -f $2 ]]; then
    echo "SKIPPED: $2 not found (see ../shared/data/SOURCES.md)"
    exit 0
  fi
  shift 2
fi
fuzzer=$1 corpus=$2 scratch=$3
shift 3
rm -rf "$scratch"
mkdir -p "$scratch/corpus"
cp "$corpus"/* "$scratch/corpus/"
exec "$fuzzer" -artifact_prefix="$scratch/" "$@" "$scratch/corpus"
