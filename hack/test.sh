#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: installs dependencies, configures, builds and runs every test suite
# (unit, datapath, integration, agent, Kubernetes client, shipping, e2e) under ctest.
# Usage: sudo hack/test.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "hack/test.sh: the datapath and network-namespace tests need root: sudo hack/test.sh" >&2
  exit 1
fi

bash hack/install-deps.sh
BUILD_DIR=${SLUICE_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 "$@"
