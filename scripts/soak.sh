#!/usr/bin/env bash
# The morphing soak: a server in --morph dynamic on a tight budget through alternating bursts
# (clients hang up at random) and idle phases, checked after every cycle (`morphserve soak --help`).
#   scripts/soak.sh                 10 minutes, report in runs/soak-report.json
#   scripts/soak.sh 30s [ARGS...]   any duration; further arguments go to `morphserve soak`
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10m}"
shift || true
[[ -x build/src/cli/morphserve ]] || scripts/build.sh
mkdir -p runs
exec build/src/cli/morphserve soak --duration "$duration" --report runs/soak-report.json --server-log runs/soak-server.log "$@"
