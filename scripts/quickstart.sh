#!/usr/bin/env bash
# The README's first command: install, build, then serve the built-in model on http://127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/src/cli/morphserve serve --port 8080
