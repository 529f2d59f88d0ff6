# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the hack/bench scripts: statistics over one-number-per-line input, CPU
# accounting from /proc/stat, readiness waits and tool output parsing. Source it; it defines
# functions only and changes no shell options.

# Busy CPU time of the whole machine so far, in clock ticks: user + nice + system + irq +
# softirq (idle, iowait and steal excluded).
bench_cpu_ticks() {
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
}

# bench_per_gb BEFORE AFTER BYTES UNIT DECIMALS -> a counter's growth, in UNITs, per GB (1e9
# bytes) moved, with DECIMALS decimals; "nan" when nothing moved.
bench_per_gb() {
  awk -v a="$1" -v b="$2" -v bytes="$3" -v unit="$4" -v dec="$5" \
    'BEGIN { if (bytes <= 0) { print "nan"; exit } printf "%.*f\n", dec, ((b - a) / unit) / (bytes / 1e9) }'
}

# bench_cpu_s_per_gb TICKS_BEFORE TICKS_AFTER BYTES -> CPU-seconds spent per GB (1e9 bytes).
bench_cpu_s_per_gb() { bench_per_gb "$1" "$2" "$3" "$(getconf CLK_TCK)" 3; }

# Wake-up IPIs so far, summed over every CPU: function-call interrupts (CAL: this kernel queues a
# wake-up of a task on another CPU there, TTWU_QUEUE) plus rescheduling interrupts (RES). On a VM
# each one is an exit to the hypervisor, paid by the CPU that wakes the other.
bench_wakeup_ipis() {
  awk '$1 == "CAL:" || $1 == "RES:" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i }
       END { print n + 0 }' "${BENCH_INTERRUPTS:-/proc/interrupts}"
}

# bench_k_per_gb BEFORE AFTER BYTES -> a counter's increments per GB (1e9 bytes), in thousands.
bench_k_per_gb() { bench_per_gb "$1" "$2" "$3" 1000 2; }

# Statistics over numbers read from stdin, one per line (blank lines and "nan" ignored).
bench_median() {
  grep -Ev '^(nan|)$' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan"; exit }
          if (NR % 2) printf "%.6g\n", v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
bench_min() { grep -Ev '^(nan|)$' | sort -g | head -n1 | awk '{ printf "%.6g\n", $1 } END { if (NR == 0) print "nan" }'; }
bench_max() { grep -Ev '^(nan|)$' | sort -g | tail -n1 | awk '{ printf "%.6g\n", $1 } END { if (NR == 0) print "nan" }'; }
# bench_percentile P: nearest-rank percentile (P in 0..100).
bench_percentile() {
  grep -Ev '^(nan|)$' | sort -g | awk -v p="$1" '{ v[NR] = $1 }
    END { if (NR == 0) { print "nan"; exit }
          r = int((p / 100) * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR; printf "%.6g\n", v[r] }'
}

# bench_ratio A B -> A/B with two decimals ("nan" if either is missing or B is zero).
bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b + 0 == 0) print "nan"; else printf "%.2f\n", a / b }'
}

# bench_fmt_range FILE [COLUMN] -> "median (min-max)" of a column of a results file.
bench_fmt_range() {
  local file=$1 col=${2:-1} vals
  vals=$(awk -v c="$col" '{ print $c }' "$file" 2>/dev/null || true)
  printf '%s (%s-%s)' "$(bench_median <<<"$vals")" "$(bench_min <<<"$vals")" "$(bench_max <<<"$vals")"
}

# Nanoseconds since the epoch.
bench_now_ns() { date +%s%N; }

# bench_wait_listen NETNS PORT: waits (up to ~10 s) until a TCP listener is bound to PORT
# inside NETNS. A readiness wait, not a measurement.
bench_wait_listen() {
  local ns=$1 port=$2 i
  for ((i = 0; i < 100; i++)); do
    if ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "bench: nothing listens on port $port in $ns" >&2
  return 1
}

# bench_iperf3_summary JSON -> "BITS_PER_SECOND BYTES" of the receiver side.
bench_iperf3_summary() {
  python3 -c 'import json, sys
d = json.loads(sys.argv[1])
e = d["end"]["sum_received"]
print(e["bits_per_second"], int(e["bytes"]))' "$1"
}

# bench_sockperf_percentile OUTPUT P -> the RTT/latency percentile line's value (usec), e.g. P=50.000.
bench_sockperf_percentile() {
  awk -v p="$2" '$0 ~ ("percentile " p " =") { print $NF; found = 1 } END { if (!found) print "nan" }' <<<"$1"
}

# bench_tput CLIENT_NS SERVER_NS SERVER_IP PORT SECONDS STREAMS -> "GBIT CPU_S_PER_GB KIPI_PER_GB":
# one iperf3 run (STREAMS parallel TCP streams) against a one-shot server; the machine's busy CPU
# time over the run per GB received, and its wake-up IPIs per GB, in thousands
# (bench_wakeup_ipis). Fails, saying so, when the client fails. The sending sockets use the
# namespace's TCP congestion control (the machine's, which new namespaces inherit) unless
# BENCH_TCP_CC names another (iperf3 -C: set per socket, so also ones the namespace may not
# make its default).
bench_tput() {
  local cns=$1 sns=$2 ip=$3 port=$4 secs=$5 streams=$6 pid out c0 c1 i0 i1 sum
  ip netns exec "$sns" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
  pid=$!
  bench_wait_listen "$sns" "$port" || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 1; }
  c0=$(bench_cpu_ticks)
  i0=$(bench_wakeup_ipis)
  out=$(ip netns exec "$cns" iperf3 -c "$ip" -p "$port" -t "$secs" -P "$streams" ${BENCH_TCP_CC:+-C "$BENCH_TCP_CC"} \
    -J 2>/dev/null) ||
    { echo "bench: iperf3 from $cns to $ip failed" >&2; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; return 1; }
  c1=$(bench_cpu_ticks)
  i1=$(bench_wakeup_ipis)
  wait "$pid" 2>/dev/null || true
  sum=$(bench_iperf3_summary "$out")
  echo "$(awk -v b="${sum% *}" 'BEGIN { printf "%.3f", b / 1e9 }') $(bench_cpu_s_per_gb "$c0" "$c1" "${sum#* }")" \
    "$(bench_k_per_gb "$i0" "$i1" "${sum#* }")"
}

# bench_rr CLIENT_NS SERVER_NS SERVER_IP PORT SECONDS -> "P50_US P99_US": TCP request/response
# round-trip time of 64-byte messages (sockperf ping-pong), client and server both busy-polling.
# Both sockets are non-blocking (--nonblocked), so each side spins on recvfrom(); sockperf's
# ping-pong on one socket reads with a plain recvfrom() whatever --timeout says, and a blocking one
# puts both sides to sleep on every message: on this VM that measures two scheduler wake-ups
# (~110 us on loopback) instead of the path (~11 us on loopback). Two spinning processes take two
# CPUs: the kernel's network work runs in their system calls.
bench_rr() {
  local cns=$1 sns=$2 ip=$3 port=$4 secs=$5 pid out
  ip netns exec "$sns" sockperf server --tcp --nonblocked -i "$ip" -p "$port" >/dev/null 2>&1 &
  pid=$!
  bench_wait_listen "$sns" "$port" || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; echo "nan nan"; return 0; }
  out=$(ip netns exec "$cns" sockperf ping-pong --tcp --nonblocked -i "$ip" -p "$port" -t "$secs" -m 64 \
    --full-rtt 2>&1) || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$(bench_sockperf_percentile "$out" 50.000) $(bench_sockperf_percentile "$out" 99.000)"
}

# bench_round OUTDIR KIND SLICES CLIENTS SERVERS IPS SETUP... -- COMMAND...: one round of a
# measurement taken in SLICES slices, in turn across the setups: for each slice and SETUP, runs
# COMMAND CLIENT_NS SERVER_NS SERVER_IP (a bench_tput or bench_rr call, less its first three
# arguments), which prints one line of numbers. Appends each setup's per-column median over the
# round's slices to OUTDIR/SETUP.KIND, and every slice, in order, to OUTDIR/SETUP.KIND-slices:
# line K of every setup's file is the same turn (bench_paired_ratio). CLIENTS, SERVERS and IPS
# name associative arrays from setup to client netns, server netns and server address.
# Throughput and busy-poll RTT here drift by +-15-20 % from one run of a few seconds to the next
# (vCPU scheduling on the host; pinning changes nothing), more than a datapath adds: slices in
# turn put that drift on every setup alike, where one long run each would hand it to whichever
# setup ran at the time.
bench_round() {
  local out=$1 kind=$2 slices=$3 s i
  local -n b_clients=$4 b_servers=$5 b_ips=$6
  shift 6
  local setups=()
  while (($#)) && [[ $1 != -- ]]; do setups+=("$1"); shift; done
  shift
  for ((i = 0; i < slices; i++)); do
    for s in "${setups[@]}"; do
      "$1" "${b_clients[$s]}" "${b_servers[$s]}" "${b_ips[$s]}" "${@:2}" >>"$out/$s.$kind-round" || return 1
    done
  done
  local f ncol c
  for s in "${setups[@]}"; do
    f=$out/$s.$kind-round
    ncol=$(awk 'NF > n { n = NF } END { print n + 0 }' "$f")
    for ((c = 1; c <= ncol; c++)); do awk -v c="$c" '{ print $c }' "$f" | bench_median; done | paste -sd' ' >>"$out/$s.$kind"
    cat "$f" >>"$out/$s.$kind-slices"
    rm -f "$f"
  done
}

# bench_rr_round OUTDIR PORT SECONDS CLIENTS SERVERS IPS SETUP...: busy-poll RR (bench_rr) in
# BENCH_RR_SLICES (default 5) slices of SECONDS/slices (bench_round, KIND "rr").
bench_rr_round() {
  local out=$1 port=$2 slices=${BENCH_RR_SLICES:-5} secs
  secs=$(($3 / slices))
  ((secs >= 1)) || secs=1
  bench_round "$out" rr "$slices" "$4" "$5" "$6" "${@:7}" -- bench_rr "$port" "$secs"
}

# bench_tput_round OUTDIR KIND PORT SECONDS STREAMS CLIENTS SERVERS IPS SETUP...: throughput
# (bench_tput) in BENCH_TPUT_SLICES (default 1) slices of SECONDS/slices (bench_round).
bench_tput_round() {
  local out=$1 kind=$2 port=$3 slices=${BENCH_TPUT_SLICES:-1} secs streams=$5
  secs=$(($4 / slices))
  ((secs >= 1)) || secs=1
  bench_round "$out" "$kind" "$slices" "$6" "$7" "$8" "${@:9}" -- bench_tput "$port" "$secs" "$streams"
}

# bench_paired_ratio OUTDIR SETUP BASE [KIND [COLUMN]] -> the median over all slices of KIND
# (default rr) of SETUP's number in COLUMN (default 1; bench_tput's 2 is CPU-seconds per GB) over
# BASE's in the same turn (bench_round), with two decimals. Pairing slices taken seconds apart
# cancels most of the drift that a ratio of medians keeps.
bench_paired_ratio() {
  paste -d' ' "$1/$2.${4:-rr}-slices" "$1/$3.${4:-rr}-slices" |
    awk -v c="${5:-1}" '{ n = NF / 2; a = $c; b = $(n + c) } a != "nan" && b != "nan" && b > 0 { print a / b }' |
    bench_median | awk '$1 == "nan" { print; next } { printf "%.2f\n", $1 }'
}

# bench_bpf_prog_stats -> "ID NAME RUN_TIME_NS RUN_CNT" per loaded BPF program (the kernel counts
# only while kernel.bpf_stats_enabled is on; bpftool leaves the fields out until a program ran).
bench_bpf_prog_stats() {
  bpftool -j prog show | python3 -c 'import json, sys
for p in json.load(sys.stdin):
    print(p["id"], p.get("name") or "-", p.get("run_time_ns", 0), p.get("run_cnt", 0))'
}

# bench_bpf_cost NAMES -- COMMAND...: runs COMMAND once (its output discarded) with the kernel's
# BPF run-time statistics on, and prints "NAME RUNS NS_PER_RUN PCT" for each program name in NAMES
# (comma-separated), summed over every program of that name (one per node): how often it ran,
# what one run cost, and its share of the machine's busy CPU time over the run ("0 nan 0.00" if
# it never ran). kernel.bpf_stats_enabled goes back to what it was (bench_bpf_stats_restore, for
# an interrupted run's trap). The statistics' two clock reads per run are in every figure (a
# program that does nothing shows what they cost): keep such a run out of any comparison.
BENCH_BPF_STATS_PREV=
bench_bpf_cost() {
  local names=$1 before after c0 c1 rc=0
  shift 2
  BENCH_BPF_STATS_PREV=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -qw kernel.bpf_stats_enabled=1
  before=$(bench_bpf_prog_stats)
  c0=$(bench_cpu_ticks)
  "$@" >/dev/null || rc=$?
  c1=$(bench_cpu_ticks)
  after=$(bench_bpf_prog_stats)
  bench_bpf_stats_restore
  ((rc == 0)) || { echo "bench: $* failed under BPF statistics" >&2; return "$rc"; }
  awk -v names="$names" -v busy_ns="$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz * 1e9 }')" '
    NR == FNR { t[$1] = $3; c[$1] = $4; next }
    { dt[$2] += $3 - t[$1]; dc[$2] += $4 - c[$1] }
    END {
      n = split(names, want, ",")
      for (i = 1; i <= n; i++) {
        w = want[i]
        pct = busy_ns > 0 ? 100 * dt[w] / busy_ns : 0
        if (dc[w] > 0) printf "%s %d %.0f %.2f\n", w, dc[w], dt[w] / dc[w], pct
        else printf "%s 0 nan 0.00\n", w
      }
    }' <(printf '%s\n' "$before") <(printf '%s\n' "$after")
}
bench_bpf_stats_restore() {
  [[ -z $BENCH_BPF_STATS_PREV ]] || sysctl -qw kernel.bpf_stats_enabled="$BENCH_BPF_STATS_PREV"
  BENCH_BPF_STATS_PREV=
}

# bench_bpf_cost_table (SETUP_LABEL TEST FILE)...: bench_bpf_cost's output files as one table.
bench_bpf_cost_table() {
  echo "BPF programs' own cost: one extra run of each test with the kernel's BPF statistics on, kept out"
  echo "of the figures above; ns/run includes the statistics' own two clock reads per run (programs"
  echo "that did not run are left out):"
  printf '%-24s %-16s %-16s %10s %8s %s\n' "setup" "test" "program" "runs" "ns/run" "share of busy CPU"
  local name runs ns pct
  while (($# >= 3)); do
    while read -r name runs ns pct; do
      ((runs > 0)) || continue
      printf '%-24s %-16s %-16s %10s %8s %s%%\n' "$1" "$2" "$name" "$runs" "$ns" "$pct"
    done <"$3"
    shift 3
  done
}

# bench_kill_netns_procs NETNS: SIGKILLs every process living in NETNS.
bench_kill_netns_procs() {
  ip netns pids "$1" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
}

# bench_tcp_cc NETNS -> the congestion control the throughput runs use from NETNS, for the header.
bench_tcp_cc() { echo "${BENCH_TCP_CC:-$(ip netns exec "$1" sysctl -n net.ipv4.tcp_congestion_control)}"; }
