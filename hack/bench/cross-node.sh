#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Cross-node pod-to-pod performance: Sluice (BPF redirect into a collect-metadata VXLAN
# device) vs a flannel-style kernel VXLAN setup (cni0 bridge + flannel.1 with static
# fdb/neigh entries) vs the bare underlay between the two nodes (the limit). All three share
# one topology (two node namespaces on a bridge in an underlay namespace) and run
# interleaved, round after round, so drift on a shared machine hits them alike.
#
# Prints, per setup: TCP throughput single-stream and 4 streams (iperf3; median, min-max),
# CPU-seconds per GB transferred (from /proc/stat), TCP request/response latency (sockperf
# ping-pong, client and server busy-polling, in slices taken in turn), and the ratios to the
# underlay, also as paired ratios (the median over slices of the ratio to the other setup's
# slice of the same turn, bench_paired_ratio in lib.sh; throughput and CPU per GB paired the same
# way against the underlay and kernel VXLAN, one turn per round unless --tput-slices gives more).
# Then what each of Sluice's programs costs per packet (kernel BPF statistics, in one more run of
# each test outside the rounds, summed over both nodes).
#
# With --native, a second Sluice cluster in native routing mode (no encapsulation,
# bpf_redirect_neigh over the L2-adjacent underlay) joins as one more setup. With
# --baseline-build DIR, a Sluice cluster of another build (DIR/bin: sluice, sluice-agent) joins
# as "baseline": before/after a change, measured in the same interleaved rounds.
#
# Usage: sudo hack/bench/cross-node.sh [--rounds N] [--duration S] [--build-dir DIR] [--native]
#                                      [--baseline-build DIR] [--rr-slices N (per round, default 5)]
#                                      [--tput-slices N (per round, default 1)] [--cc NAME]
# --cc: the senders' TCP congestion control (cubic, bbr, ...); by default the machine's.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=hack/bench/lib.sh
. "$REPO/hack/bench/lib.sh"
ROUNDS=5
DURATION=8
BUILD_DIR=$REPO/build
NATIVE=0
BASELINE_BUILD=
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --native) NATIVE=1; shift ;;
    --rr-slices) export BENCH_RR_SLICES=$2; shift 2 ;;
    --tput-slices) export BENCH_TPUT_SLICES=$2; shift 2 ;;
    --baseline-build) BASELINE_BUILD=$2; shift 2 ;;
    --cc) export BENCH_TCP_CC=$2; shift 2 ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "needs root" >&2; exit 1; }
for t in iperf3 sockperf python3; do command -v "$t" >/dev/null || { echo "missing $t: hack/install-deps.sh" >&2; exit 1; }; done

export SLUICE_CLUSTER_PREFIX=slb$$
export SLUICE_BUILD_DIR=$BUILD_DIR
FL=slf$$            # flannel-style setup prefix
RESULTS=$(mktemp -d)

NATIVE_PREFIX=slbn$$
BASELINE_PREFIX=slbb$$
cleanup() {
  bench_bpf_stats_restore
  bash "$REPO/hack/cluster.sh" down >/dev/null 2>&1 || true
  SLUICE_CLUSTER_PREFIX=$NATIVE_PREFIX bash "$REPO/hack/cluster.sh" down >/dev/null 2>&1 || true
  SLUICE_CLUSTER_PREFIX=$BASELINE_PREFIX bash "$REPO/hack/cluster.sh" down >/dev/null 2>&1 || true
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$FL-" || true); do
    ip netns pids "$ns" | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$RESULTS"
}
trap cleanup EXIT

# ---- Sluice: the simulated cluster, 2 nodes with one pod each ----
bash "$REPO/hack/cluster.sh" up --nodes 2 --pods-per-node 1 >/dev/null
pod_ip() { awk -F'\t' -v n="$1" '$1 == n {print $4}' "/run/sluice-cluster/${2:-$SLUICE_CLUSTER_PREFIX}/pods.tsv"; }
# setup -> client netns, server netns, server address
declare -A CLIENT SERVER SERVER_IP
# add_setup NAME CLIENT_NS SERVER_NS SERVER_IP
# shellcheck disable=SC2034 # SERVER is read through bench_round's namerefs (lib.sh)
add_setup() { CLIENT[$1]=$2; SERVER[$1]=$3; SERVER_IP[$1]=$4; }
add_setup sluice "$SLUICE_CLUSTER_PREFIX-n1-p1" "$SLUICE_CLUSTER_PREFIX-n2-p1" "$(pod_ip pod-2-1)"
add_setup underlay "$SLUICE_CLUSTER_PREFIX-n1" "$SLUICE_CLUSTER_PREFIX-n2" 198.18.0.2
SETUPS=(underlay sluice flannel)
if ((NATIVE)); then
  SLUICE_CLUSTER_PREFIX=$NATIVE_PREFIX bash "$REPO/hack/cluster.sh" up --mode native --nodes 2 --pods-per-node 1 >/dev/null
  add_setup native "$NATIVE_PREFIX-n1-p1" "$NATIVE_PREFIX-n2-p1" "$(pod_ip pod-2-1 "$NATIVE_PREFIX")"
  SETUPS+=(native)
fi
if [[ -n $BASELINE_BUILD ]]; then
  SLUICE_BUILD_DIR=$BASELINE_BUILD SLUICE_CLUSTER_PREFIX=$BASELINE_PREFIX \
    bash "$REPO/hack/cluster.sh" up --nodes 2 --pods-per-node 1 >/dev/null
  add_setup baseline "$BASELINE_PREFIX-n1-p1" "$BASELINE_PREFIX-n2-p1" "$(pod_ip pod-2-1 "$BASELINE_PREFIX")"
  SETUPS+=(baseline)
fi

# ---- flannel-style kernel VXLAN: cni0 bridge per node, flannel.1 with static entries ----
ip netns add "$FL-ul"
ip -n "$FL-ul" link add br0 type bridge
ip -n "$FL-ul" link set br0 up
for i in 1 2; do
  ns=$FL-n$i
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$FL-ul" link add "n$i" type veth peer name eth0 netns "$ns"
  ip -n "$FL-ul" link set "n$i" master br0 up
  ip -n "$ns" addr add "198.19.0.$i/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$ns" link add flannel.1 address "02:f1:00:00:00:0$i" type vxlan id 1 local "198.19.0.$i" dev eth0 \
    dstport 8472 nolearning
  ip -n "$ns" addr add "10.245.$i.0/32" dev flannel.1
  ip -n "$ns" link set flannel.1 mtu 1450 up
  ip -n "$ns" link add cni0 type bridge
  ip -n "$ns" addr add "10.245.$i.1/24" dev cni0
  ip -n "$ns" link set cni0 mtu 1450 up
  pod=$FL-n$i-p1
  ip netns add "$pod"
  ip -n "$pod" link set lo up
  ip -n "$ns" link add "veth$i" mtu 1450 type veth peer name eth0 netns "$pod" mtu 1450
  ip -n "$ns" link set "veth$i" master cni0 up
  ip -n "$pod" addr add "10.245.$i.2/24" dev eth0
  ip -n "$pod" link set eth0 up
  ip -n "$pod" route add default via "10.245.$i.1"
done
for i in 1 2; do
  k=$((3 - i))
  ns=$FL-n$i
  ip -n "$ns" route add "10.245.$k.0/24" via "10.245.$k.0" dev flannel.1 onlink
  ip -n "$ns" neigh add "10.245.$k.0" lladdr "02:f1:00:00:00:0$k" dev flannel.1 nud permanent
  ip netns exec "$ns" bridge fdb append "02:f1:00:00:00:0$k" dev flannel.1 dst "198.19.0.$k"
done
add_setup flannel "$FL-n1-p1" "$FL-n2-p1" 10.245.2.2

for setup in "${SETUPS[@]}"; do
  ip netns exec "${CLIENT[$setup]}" ping -c 1 -W 2 -q "${SERVER_IP[$setup]}" >/dev/null ||
    { echo "cross-node: $setup: client cannot reach ${SERVER_IP[$setup]}" >&2; exit 1; }
done

echo "cross-node benchmark: $ROUNDS rounds x ${DURATION}s, $(nproc) CPUs, kernel $(uname -r)," \
  "TCP congestion control $(bench_tcp_cc "${CLIENT[sluice]}")" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  bench_tput_round "$RESULTS" tput1 5301 "$DURATION" 1 CLIENT SERVER SERVER_IP "${SETUPS[@]}"
  bench_tput_round "$RESULTS" tput4 5301 "$DURATION" 4 CLIENT SERVER SERVER_IP "${SETUPS[@]}"
  bench_rr_round "$RESULTS" 5302 "$DURATION" CLIENT SERVER SERVER_IP "${SETUPS[@]}"
done
# What Sluice's programs cost per packet on each node: one more run of each test, outside the rounds.
BPF_SETUPS=(sluice)
((NATIVE)) && BPF_SETUPS+=(native)
declare -A PROGS=([sluice]="sl_from_pod,sl_from_tunnel,sl_to_pod,sl_from_overlay,sl_to_overlay"
  [native]="sl_from_pod,sl_from_native,sl_to_native,sl_to_pod")
if ((ROUNDS > 0)); then
  echo "BPF cost: one more run of each test with BPF statistics on" >&2
  for s in "${BPF_SETUPS[@]}"; do
    bench_bpf_cost "${PROGS[$s]}" -- bench_tput "${CLIENT[$s]}" "${SERVER[$s]}" "${SERVER_IP[$s]}" 5301 "$DURATION" 1 \
      >"$RESULTS/$s.tput1.bpf"
    bench_bpf_cost "${PROGS[$s]}" -- bench_tput "${CLIENT[$s]}" "${SERVER[$s]}" "${SERVER_IP[$s]}" 5301 "$DURATION" 4 \
      >"$RESULTS/$s.tput4.bpf"
    bench_bpf_cost "${PROGS[$s]}" -- bench_rr "${CLIENT[$s]}" "${SERVER[$s]}" "${SERVER_IP[$s]}" 5302 "$DURATION" \
      >"$RESULTS/$s.rr.bpf"
  done
fi

python3 - "$RESULTS" <<'PY'
import os, statistics, sys
d = sys.argv[1]
def col(name, kind, idx=0):
    p = os.path.join(d, f"{name}.{kind}")
    if not os.path.exists(p): return []
    return [float(l.split()[idx]) for l in open(p) if l.strip()]
setups = [("underlay", "bare underlay (limit)"), ("sluice", "Sluice"), ("flannel", "kernel VXLAN (flannel-style)")]
if os.path.exists(os.path.join(d, "native.tput1")):
    setups.append(("native", "Sluice native routing"))
if os.path.exists(os.path.join(d, "baseline.tput1")):
    setups.append(("baseline", "Sluice, baseline build"))
def fmt(v, unit=""):
    if not v: return "n/a"
    return f"{statistics.median(v):.2f}{unit} ({min(v):.2f}-{max(v):.2f})"
print()
print(f"{'setup':32} {'TCP 1 stream Gbit/s':24} {'CPU s/GB':10} {'TCP 4 streams Gbit/s':24} {'CPU s/GB':10} {'RR RTT us':20}")
for key, label in setups:
    t1, c1 = col(key, "tput1"), col(key, "tput1", 1)
    t4, c4 = col(key, "tput4"), col(key, "tput4", 1)
    rr = col(key, "rr")
    print(f"{label:32} {fmt(t1):24} {statistics.median(c1) if c1 else 0:<10.2f} {fmt(t4):24} {statistics.median(c4) if c4 else 0:<10.2f} {fmt(rr):20}")
print()
print("wake-up IPIs per GB, thousands (CAL + RES over both CPUs, bench_wakeup_ipis in lib.sh):")
print(f"{'setup':32} {'TCP 1 stream':24} {'TCP 4 streams':24}")
for key, label in setups:
    print(f"{label:32} {fmt(col(key, 'tput1', 2)):24} {fmt(col(key, 'tput4', 2)):24}")
print()
print("ratios (medians):")
def med(k, kind, i=0):
    v = col(k, kind, i)
    return statistics.median(v) if v else float("nan")
def paired(k, base, kind="rr", idx=0):  # median over slices of k's number idx over base's, turn by turn
    a, b = col(k, kind + "-slices", idx), col(base, kind + "-slices", idx)
    r = [x / y for x, y in zip(a, b) if y == y and x == x and y > 0]
    return statistics.median(r) if r else float("nan")
def rounds(k, kind):  # the setup's first column over the underlay's, round by round
    return " ".join(f"{a / b:.2f}" for a, b in zip(col(k, kind), col("underlay", kind)) if b)
for key, label in setups[1:]:
    print(f"  {label:30} throughput 1 stream {med(key,'tput1')/med('underlay','tput1'):.2f}x underlay, "
          f"4 streams {med(key,'tput4')/med('underlay','tput4'):.2f}x, RTT {med(key,'rr')/med('underlay','rr'):.2f}x "
          f"(paired slices {paired(key, 'underlay'):.2f}x)")
    print(f"  {'':30} paired slices: 1 stream {paired(key, 'underlay', 'tput1'):.2f}x, "
          f"4 streams {paired(key, 'underlay', 'tput4'):.2f}x; CPU/GB 1 stream "
          f"{paired(key, 'underlay', 'tput1', 1):.2f}x, 4 streams {paired(key, 'underlay', 'tput4', 1):.2f}x")
    print(f"  {'':30} per round: 1 stream [{rounds(key, 'tput1')}], 4 streams [{rounds(key, 'tput4')}], "
          f"RTT [{rounds(key, 'rr')}]")
print(f"  Sluice / kernel VXLAN: throughput 1 stream {med('sluice','tput1')/med('flannel','tput1'):.2f}x, "
      f"4 streams {med('sluice','tput4')/med('flannel','tput4'):.2f}x, "
      f"CPU/GB {med('sluice','tput1',1)/med('flannel','tput1',1):.2f}x, RTT {med('sluice','rr')/med('flannel','rr'):.2f}x "
      f"(paired slices {paired('sluice', 'flannel'):.2f}x)")
print(f"  Sluice / kernel VXLAN, 4 streams CPU/GB {med('sluice','tput4',1)/med('flannel','tput4',1):.2f}x")
print(f"  Sluice / kernel VXLAN, paired slices: throughput 1 stream {paired('sluice', 'flannel', 'tput1'):.2f}x, "
      f"4 streams {paired('sluice', 'flannel', 'tput4'):.2f}x; CPU/GB 1 stream {paired('sluice', 'flannel', 'tput1', 1):.2f}x, "
      f"4 streams {paired('sluice', 'flannel', 'tput4', 1):.2f}x")
if os.path.exists(os.path.join(d, "baseline.tput1")):
    print(f"  Sluice / baseline build: throughput 1 stream {med('sluice','tput1')/med('baseline','tput1'):.2f}x, "
          f"4 streams {med('sluice','tput4')/med('baseline','tput4'):.2f}x, "
          f"CPU/GB 1 stream {med('sluice','tput1',1)/med('baseline','tput1',1):.2f}x, "
          f"4 streams {med('sluice','tput4',1)/med('baseline','tput4',1):.2f}x, RTT {med('sluice','rr')/med('baseline','rr'):.2f}x "
          f"(paired slices {paired('sluice', 'baseline'):.2f}x)")
PY
if ((ROUNDS > 0)); then
  declare -A BPF_LABEL=([sluice]="Sluice" [native]="Sluice native routing")
  rows=()
  for s in "${BPF_SETUPS[@]}"; do
    rows+=("${BPF_LABEL[$s]}" "TCP 1 stream" "$RESULTS/$s.tput1.bpf" "${BPF_LABEL[$s]}" "TCP 4 streams" "$RESULTS/$s.tput4.bpf"
      "${BPF_LABEL[$s]}" "RR" "$RESULTS/$s.rr.bpf")
  done
  echo
  bench_bpf_cost_table "${rows[@]}"
fi
