#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test command: installs dependencies, configures, builds and runs every test suite
# (unit, datapath, integration, agent, Kubernetes client, shipping, e2e) under ctest.
# Then a short fuzzing run (hack/fuzz.sh) and the suites again under ASan+UBSan
# (hack/test-sanitizers.sh), each in a build directory of its own; developers skip them with
# SLUICE_SKIP_FUZZ=1 / SLUICE_SKIP_SANITIZERS=1 (CI runs both).
# Usage: sudo hack/test.sh [extra ctest args, e.g. -L unit]
# Tests run SLUICE_TEST_JOBS at a time (default: one per CPU). Every test works in network and
# mount namespaces, links, pins and files named for its own process (or unshared for it), so any
# two can run side by side; the e2e suites (whole simulated clusters, traffic under restarts) are
# RUN_SERIAL: ctest runs each alone.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "hack/test.sh: the datapath and network-namespace tests need root: sudo hack/test.sh" >&2
  exit 1
fi

# Each stage's wall time, on stderr, for keeping CI's time in view.
stage_start=$SECONDS
stage() {
  echo "test.sh: $1 took $((SECONDS - stage_start)) s (total $SECONDS s)" >&2
  stage_start=$SECONDS
}

bash hack/install-deps.sh
stage "dependencies"
BUILD_DIR=${SLUICE_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_WERROR=ON -DSLUICE_LINE_TABLES=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
stage "build"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 -j "${SLUICE_TEST_JOBS:-$(nproc)}" "$@"
stage "tests"

if [[ ${SLUICE_SKIP_FUZZ:-0} != 1 ]]; then
  bash hack/fuzz.sh --time "${SLUICE_FUZZ_TIME:-20}"
  stage "fuzzing (build and run)"
fi
if [[ ${SLUICE_SKIP_SANITIZERS:-0} != 1 ]]; then
  bash hack/test-sanitizers.sh
  stage "sanitizers (build and tests)"
fi
