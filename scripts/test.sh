#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every GoogleTest program under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
