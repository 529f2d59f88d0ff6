#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The statistics and the RR slicing of hack/bench/lib.sh, on known inputs: the benchmarks'
# tables are only as true as these. bench_rr (sockperf in namespaces) is replaced by a stub
# that answers from a table, so bench_rr_round's turn order, per-round medians and the slice
# files bench_paired_ratio pairs are checked without a network; bench_bpf_cost's arithmetic on
# stubbed bpftool snapshots.
# shellcheck disable=SC2034 # CLIENT, SERVER and IP are read through bench_round's namerefs
set -euo pipefail
# shellcheck source=hack/bench/lib.sh
. "$(dirname "$0")/../hack/bench/lib.sh"

fails=0
expect() {  # expect WHAT GOT WANT
  if [[ $2 == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: got '$2', want '$3'"; fails=$((fails + 1)); fi
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

expect "median of an odd count" "$(printf '3\n1\n2\n' | bench_median)" 2
expect "median of an even count" "$(printf '4\n1\n2\n3\n' | bench_median)" 2.5
expect "median skips nan and blanks" "$(printf 'nan\n\n5\n7\n' | bench_median)" 6
expect "median of nothing" "$(printf 'nan\n' | bench_median)" nan
expect "p99 nearest rank" "$(seq 1 200 | bench_percentile 99)" 198
expect "min and max" "$(printf '10\n2\n33\n' | bench_min) $(printf '10\n2\n33\n' | bench_max)" "2 33"
expect "ratio" "$(bench_ratio 3 2)" 1.50
expect "ratio over zero" "$(bench_ratio 3 0)" nan
expect "ratio of a missing value" "$(bench_ratio nan 2)" nan
printf '1 9\n3 8\n2 7\n' >"$out/range"
expect "median (min-max) of a column" "$(bench_fmt_range "$out/range" 2)" "8 (7-9)"
expect "cpu s/GB" "$(bench_cpu_s_per_gb 0 "$(getconf CLK_TCK)" 2000000000)" 0.500
expect "thousands per GB" "$(bench_k_per_gb 1000 31000 4000000000)" 7.50
expect "per GB of nothing" "$(bench_k_per_gb 0 5 0)" nan
# /proc/interrupts as a 2-CPU guest has it: CAL and RES summed over the CPUs, nothing else counted
# (the description's words are not numbers, and a CPU column ends at the first one).
cat >"$out/interrupts" <<'EOF2'
           CPU0       CPU1
  0:         40          0   IO-APIC    2-edge      timer
LOC:   18215005   17926017   Local timer interrupts
RES:     535642     509931   Rescheduling interrupts
CAL:   11460218   11651916   Function call interrupts 2
TLB:       1000       2000   TLB shootdowns
EOF2
expect "wake-up IPIs: CAL + RES over every CPU" "$(BENCH_INTERRUPTS=$out/interrupts bench_wakeup_ipis)" 24157707
expect "wake-up IPIs of this machine: a count" "$(bench_wakeup_ipis | grep -cE '^[0-9]+$')" 1

# bench_rr stub: the RTT is the setup's base plus the call count, so every slice is distinct and
# the order of the calls is visible in the slice files.
declare -A BASE_US=([bare]=10 [fast]=11 [slow]=20) CLIENT=() SERVER=() IP=()
for s in bare fast slow; do CLIENT[$s]=c-$s; SERVER[$s]=s-$s; IP[$s]=$s; done
bench_rr() {
  local calls
  echo "$1 $2 $3 $5" >>"$out/calls"
  calls=$(wc -l <"$out/calls")
  if [[ $3 == slow && $calls == 6 ]]; then echo "nan nan"; return; fi
  echo "$((BASE_US[$3] + calls)) $((BASE_US[$3] + calls + 100))"
}
BENCH_RR_SLICES=3 bench_rr_round "$out" 5302 9 CLIENT SERVER IP bare fast slow
expect "calls in turn across setups, SECONDS/slices each" "$(awk '{ printf "%s/%s ", $3, $4 }' "$out/calls")" \
  "bare/3 fast/3 slow/3 bare/3 fast/3 slow/3 bare/3 fast/3 slow/3 "
expect "namespaces from the arrays" "$(head -n1 "$out/calls" | cut -d' ' -f1,2)" "c-bare s-bare"
expect "per-round median p50 and p99" "$(cat "$out/bare.rr")" "14 114"
expect "a failed slice is left out of the round's median" "$(cat "$out/slow.rr")" "26 126"
expect "every slice kept in turn order" "$(cut -d' ' -f1 "$out/fast.rr-slices" | tr '\n' ' ')" "13 16 19 "
# turn ratios fast/bare: 13/11, 16/14, 19/17 -> median 16/14
expect "paired ratio: median over turns" "$(bench_paired_ratio "$out" fast bare)" 1.14
# slow/bare: 23/11, nan, 29/17 -> the failed turn is skipped; median (2.09 + 1.71) / 2
expect "paired ratio skips failed slices" "$(bench_paired_ratio "$out" slow bare)" 1.90
: >"$out/calls"
BENCH_RR_SLICES=3 bench_rr_round "$out" 5302 9 CLIENT SERVER IP bare fast slow
expect "rounds append" "$(wc -l <"$out/bare.rr") $(wc -l <"$out/bare.rr-slices")" "2 6"
expect "no per-round leftovers" "$(find "$out" -name '*.rr-round' | wc -l)" 0
BENCH_RR_SLICES=20 bench_rr_round "$out" 5302 9 CLIENT SERVER IP bare
expect "slices never shorter than a second" "$(tail -n1 "$out/calls" | cut -d' ' -f4)" 1
# bench_tput stub: "GBIT CPU_S_PER_GB" (call number x base, 0.call number; the real one adds
# KIPI_PER_GB, a column like any other here); the arguments after the address are PORT SECONDS
# STREAMS. Turns: bare 10, fast 22; bare 30, fast 44.
: >"$out/calls"
bench_tput() {
  echo "$3 $4 $5 $6" >>"$out/calls"
  [[ $3 != broken ]] || return 1
  echo "$(($(wc -l <"$out/calls") * BASE_US[$3])) 0.$(wc -l <"$out/calls")"
}
BENCH_TPUT_SLICES=2 bench_tput_round "$out" tput4 5201 9 4 CLIENT SERVER IP bare fast
expect "throughput slices: SECONDS/slices, streams passed" "$(sort -u "$out/calls")" "bare 5201 4 4
fast 5201 4 4"
expect "throughput per-round median per column" "$(cat "$out/fast.tput4")" "33 0.3"
expect "throughput paired ratio by kind" "$(bench_paired_ratio "$out" fast bare tput4)" 1.83
# CPU per GB, turn by turn: fast 0.2 / bare 0.1, fast 0.4 / bare 0.3 -> median (2 + 1.33) / 2
expect "paired ratio of another column" "$(bench_paired_ratio "$out" fast bare tput4 2)" 1.67
bench_tput_round "$out" tput1 5201 9 1 CLIENT SERVER IP bare
expect "one throughput slice by default, the whole duration" "$(tail -n1 "$out/calls")" "bare 5201 9 1"
CLIENT[broken]=c; SERVER[broken]=s; IP[broken]=broken
expect "a failed throughput run fails the round" \
  "$(bench_tput_round "$out" tput1 5201 9 1 CLIENT SERVER IP broken && echo passed || echo failed)" failed
printf 'nan nan\n' >"$out/none.rr-slices"
head -n1 "$out/bare.rr-slices" >"$out/one.rr-slices"
expect "paired ratio with nothing to pair" "$(bench_paired_ratio "$out" none one)" nan

# bench_bpf_cost: bpftool, sysctl and the CPU clock replaced by stubs. Two nodes' sl_from_pod
# (ids 7 and 9) ran 300 times in 90000 ns between the snapshots, sl_to_pod never ran (bpftool
# leaves its fields out), a program of another name does not count; 1 s of busy CPU in between.
bpftool() {
  local n
  n=$(wc -l <"$out/bpftool")
  echo call >>"$out/bpftool"
  if ((n == 0)); then
    echo '[{"id":7,"name":"sl_from_pod","run_time_ns":1000,"run_cnt":10},{"id":8,"name":"sl_to_pod"},
           {"id":9,"name":"sl_from_pod","run_time_ns":500,"run_cnt":5},{"id":3,"name":"other","run_time_ns":1,"run_cnt":1}]'
  else
    echo '[{"id":7,"name":"sl_from_pod","run_time_ns":61000,"run_cnt":210},{"id":8,"name":"sl_to_pod"},
           {"id":9,"name":"sl_from_pod","run_time_ns":30500,"run_cnt":105},{"id":3,"name":"other","run_time_ns":9e9,"run_cnt":9},
           {"id":12,"name":"sl_from_pod","run_time_ns":0,"run_cnt":0}]'
  fi
}
sysctl() {
  if [[ $1 == -n ]]; then echo 0; else echo "$2" >>"$out/sysctl"; fi
}
ticks=("$((1000 * $(getconf CLK_TCK)))" "$((1001 * $(getconf CLK_TCK)))")
bench_cpu_ticks() { echo "${ticks[$(wc -l <"$out/ticks")]}"; echo t >>"$out/ticks"; }
: >"$out/bpftool"
: >"$out/ticks"
workload() { echo "workload output is not the table's"; grep -c kernel.bpf_stats_enabled=1 "$out/sysctl" >"$out/during"; }
expect "bpf cost per program name, over the nodes' programs" \
  "$(bench_bpf_cost sl_from_pod,sl_to_pod -- workload)" "sl_from_pod 300 300 0.01
sl_to_pod 0 nan 0.00"
expect "statistics on while the command runs, back to what they were after" \
  "$(cat "$out/during") $(tr '\n' ' ' <"$out/sysctl")" "1 kernel.bpf_stats_enabled=1 kernel.bpf_stats_enabled=0 "
: >"$out/bpftool"
: >"$out/ticks"
bench_bpf_cost sl_from_pod,sl_to_pod -- workload >"$out/cost"
expect "the table leaves out programs that did not run" \
  "$(bench_bpf_cost_table Sluice RR "$out/cost" | tail -n +5 | tr -s ' ')" "Sluice RR sl_from_pod 300 300 0.01%"
: >"$out/bpftool"
: >"$out/ticks"
failing() { return 3; }
expect "a failing command fails bench_bpf_cost, the statistics restored" \
  "$(bench_bpf_cost sl_from_pod -- failing 2>/dev/null && echo passed || echo "failed $?") $(tail -n1 "$out/sysctl")" \
  "failed 3 kernel.bpf_stats_enabled=0"

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all bench lib checks passed"
