#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing morphserve needs. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libfuzzer-14-dev libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer with ASan/UBSan
  haproxy  # scripts/cluster.sh and its test: instances behind a real load balancer
  chromium fonts-dejavu-core  # tests/server/dashboard_test: GET /dashboard drawn in headless Chromium
)
# The OpenAI client test (tests/server/openai_client) runs the official npm package with Node.js.
# A node that is already there (e.g. NodeSource's, which bundles npm) is used as it is: installing
# Debian's packages beside it would conflict.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
