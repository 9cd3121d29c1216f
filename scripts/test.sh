#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every GoogleTest program under ctest;
# then again under ASan+UBSan (with the fuzz targets on their seed corpora), and the backend,
# engine and morph tests under TSan. Any sanitizer report fails the test it happened in.
# MORPHSERVE_SANITIZERS=0 skips the two sanitizer stages (a quick local run).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time, so a slow CI run shows where the time went.
step() { echo "== $* (${SECONDS} s so far) =="; }
step "dependencies"
scripts/install-deps.sh
step "Release build"
scripts/build.sh
step "Release tests"
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900)
[[ "${MORPHSERVE_SANITIZERS:-1}" == 0 ]] && { step "done"; exit 0; }

step "ASan + UBSan build"
scripts/build-sanitized.sh address
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:check_initialization_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# The perplexity tests are the Release run's accuracy checks; at -O1 under ASan they take minutes
# and reach no code the runner tests do not (tests/README.md).
step "ASan + UBSan tests"
(cd build-asan && ctest --output-on-failure -j"$(nproc)" --timeout 1200 -E '^Perplexity\.')

step "TSan build"
scripts/build-sanitized.sh thread
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
step "TSan tests"
(cd build-tsan && ctest --output-on-failure -j"$(nproc)" --timeout 1200 -E '^Perplexity\.')
step "done"
