#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets (tests/fuzz, clang, ASan+UBSan) in a build directory of their
# own and runs each for a while, starting from the checked-in seed corpus. Any crash, leak,
# sanitizer report or violated invariant is saved and makes the script exit non-zero.
#
#   hack/fuzz.sh                      every target ~20 s (what CI runs)
#   hack/fuzz.sh --time 3600          an hour each (a real campaign)
#   hack/fuzz.sh --time 600 netconf kubeconfig
#   hack/fuzz.sh --jobs 2 --time 3600 datapath
#
# Options: --time SECONDS per target (default 20), --jobs N parallel fuzzing processes per
# target (default 1: then one target per CPU runs at a time), --build-dir DIR (default
# build-fuzz), --crash-dir DIR (default <build-dir>/fuzz-crashes), --no-build. Targets:
# netconf cni_env nodes_file k8s_watch kubeconfig datapath (default: all; datapath needs root).
# New interesting inputs go to <build-dir>/fuzz-corpus/<target>/; copy the small, telling ones
# into tests/fuzz/corpus/<target>/ (a crash's input, once fixed, as regress-<what>).
# To reproduce a crash: <build-dir>/fuzz/fuzz_<target> <crash file>.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(netconf cni_env nodes_file k8s_watch kubeconfig datapath)
TIME=20
JOBS=1
BUILD_DIR=build-fuzz
CRASH_DIR=
BUILD=1
targets=()
while (($#)); do
  case $1 in
    --time) TIME=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --crash-dir) CRASH_DIR=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (${ALL_TARGETS[*]})" >&2; exit 2; }
done
[[ $TIME =~ ^[0-9]+$ && $TIME -gt 0 ]] || { echo "fuzz.sh: --time wants seconds" >&2; exit 2; }
CRASH_DIR=${CRASH_DIR:-$BUILD_DIR/fuzz-crashes}

if ((BUILD)); then
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ missing (hack/install-deps.sh)" >&2; exit 1; }
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_LINE_TABLES=ON \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target sluice_fuzzers
fi

mkdir -p "$CRASH_DIR"
# run_target T: fuzzes T; leaves 0 (clean) or 1 in <build-dir>/fuzz-T.status.
run_target() {
  local t=$1 bin corpus st=0
  bin=$BUILD_DIR/fuzz/fuzz_$t
  if [[ ! -x $bin ]]; then
    echo "fuzz.sh: $bin not built" >&2
    echo 1 >"$BUILD_DIR/fuzz-$t.status"
    return
  fi
  corpus=$BUILD_DIR/fuzz-corpus/$t
  mkdir -p "$corpus" "$CRASH_DIR/$t"
  local args=(-max_total_time="$TIME" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
              -artifact_prefix="$CRASH_DIR/$t/")
  # BPF_PROG_TEST_RUN takes a page at most.
  [[ $t == datapath ]] && args+=(-max_len=2048)
  ((JOBS > 1)) && args+=(-fork="$JOBS" -ignore_crashes=1)
  # The first corpus directory receives new inputs; the checked-in seeds stay untouched.
  "$bin" "${args[@]}" "$corpus" "tests/fuzz/corpus/$t" 2>"$BUILD_DIR/fuzz-$t.log" || st=1
  compgen -G "$CRASH_DIR/$t/*" >/dev/null && st=1
  echo "$st" >"$BUILD_DIR/fuzz-$t.status"
}

# One fuzzing process per target and per CPU (with --jobs 1): the targets share no state, and
# each gets its full --time.
slots=$(nproc)
((JOBS > 1)) && slots=1
echo "=== fuzzing ${targets[*]}: ${TIME}s each, $slots at a time" >&2
for t in "${targets[@]}"; do
  rm -f "$BUILD_DIR/fuzz-$t.status"
  run_target "$t" &
  while (($(jobs -rp | wc -l) >= slots)); do wait -n || true; done
done
wait
failed=()
for t in "${targets[@]}"; do
  echo "=== fuzz_$t" >&2
  [[ -f $BUILD_DIR/fuzz-$t.log ]] &&
    { grep -E '^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::new_units_added)' "$BUILD_DIR/fuzz-$t.log" >&2 || true; }
  [[ $(cat "$BUILD_DIR/fuzz-$t.status" 2>/dev/null) == 0 ]] || failed+=("$t")
done

if ((${#failed[@]})); then
  for t in "${failed[@]}"; do
    echo "--- fuzz_$t FAILED; log $BUILD_DIR/fuzz-$t.log, inputs:" >&2
    ls -l "$CRASH_DIR/$t" >&2 || true
    grep -E -A30 'ERROR: |fuzz invariant violated|SUMMARY' "$BUILD_DIR/fuzz-$t.log" | head -60 >&2 || true
  done
  echo "fuzz: ${#targets[@]} targets, ${#failed[@]} failed (${failed[*]})" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${TIME}s each, no crash"
