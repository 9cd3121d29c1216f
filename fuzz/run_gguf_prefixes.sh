#!/usr/bin/env bash
# Runs fuzz_gguf once on each of a set of prefixes of a real GGUF file (and the whole file). The
# prefixes are cut in the build folder at test time, so the model never enters the repository.
# Usage: run_gguf_prefixes.sh FUZZ_GGUF MODEL.gguf SCRATCH
set -euo pipefail
fuzzer=$1 model=$2 scratch=$3
if [[ ! -f $model ]]; then
  echo "SKIPPED: $model not found (see ../shared/data/SOURCES.md)"
  exit 0
fi
rm -rf "$scratch"
mkdir -p "$scratch"
size=$(stat -c %s "$model")
# Cuts inside the header, the metadata, the tensor infos and the data, plus a spread of others.
cuts=(1 4 7 8 16 23 24 25 31 32 40 100 500 1000 2000 4000 8000 12000 14000 14175 14176 14177 20000 100000 500000)
for ((i = 1; i <= 16; i++)); do cuts+=($((size * i / 17))); done
cuts+=($((size - 1)) "$size")
for n in "${cuts[@]}"; do
  ((n <= size)) && head -c "$n" "$model" >"$scratch/prefix_$n"
done
# With files (not folders) as arguments libFuzzer runs each input once and exits.
exec "$fuzzer" -artifact_prefix="$scratch/" "$scratch"/prefix_*
