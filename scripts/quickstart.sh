#!/usr/bin/env bash
# The README's first command: install, build, then run the main job on the built-in model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/src/cli/morphserve generate -p "Once upon a time" -n 48 --stats
