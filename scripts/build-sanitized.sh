#!/usr/bin/env bash
# Builds morphserve under sanitizers with clang 14 (tests/README.md, "Sanitizers and fuzzing"):
#   scripts/build-sanitized.sh address   ASan + UBSan, all tests and the fuzz targets -> build-asan/
#   scripts/build-sanitized.sh thread    TSan, the backend, engine and morph tests     -> build-tsan/
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:?usage: scripts/build-sanitized.sh address|thread}"
common=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
        -DMORPHSERVE_BUILD_BENCHMARKS=OFF -DMORPHSERVE_SANITIZE="$kind")
case "$kind" in
  address)
    cmake -S . -B build-asan "${common[@]}" -DMORPHSERVE_FUZZ=ON >/dev/null
    cmake --build build-asan -j"$(nproc)"
    ;;
  thread)
    # The concurrency lives in the engine thread, the backend's copy worker and the thread pool.
    cmake -S . -B build-tsan "${common[@]}" -DMORPHSERVE_TEST_FOLDERS="backend;engine;morph" >/dev/null
    cmake --build build-tsan -j"$(nproc)" --target test_backend test_engine test_morph
    ;;
  *)
    echo "unknown sanitizer '$kind': address or thread" >&2
    exit 2
    ;;
esac
