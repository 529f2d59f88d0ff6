#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Same-node pod-to-pod performance: Sluice (tc BPF on the host veths, bpf_redirect_peer
# straight into the other pod) vs the reference `bridge` plugin (cni0 bridge) vs the
# reference `ptp` plugin (veth + host routing) vs a bare veth pair between two namespaces
# (the limit). The four run interleaved, round after round, so drift on a shared machine hits
# them alike. Everything lives in network namespaces of its own (a "host" namespace per
# plugin, one per pod) and a trap removes all of it.
#
# Prints, per setup: TCP throughput (iperf3, one stream; median, min-max, per-round ratio to
# the bare pair), the CPU it cost (CPU-seconds per GB, /proc/stat deltas), TCP request/response
# RTT (sockperf ping-pong, client and server busy-polling, in slices taken in turn; median of
# per-round medians, per-round ratios, and the paired ratio: the median over all slices of the
# ratio to the bare pair's slice of the same turn; throughput and CPU per GB paired the same way,
# against the bare pair, `bridge` and `ptp`), and ADD/DEL latency (median, p99) over --pods
# pods for Sluice vs ptp. Then what Sluice's programs and the floor's cost per packet (kernel BPF
# statistics, in one more run of each test outside the rounds).
#
# Usage: sudo hack/bench/same-node.sh [--build-dir DIR] [--rounds N] [--duration S] [--pods N] [--mtu M]
#                                     [--rr-slices N (per round, default 5)]
#                                     [--tput-slices N (per round, default 1)] [--cc NAME]
# (--rounds 0 measures ADD/DEL latency only; --cc: the senders' TCP congestion control, cubic,
# bbr, ...; by default the machine's)
# shellcheck disable=SC2034 # SERVER is read through bench_round's namerefs (lib.sh)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=hack/bench/lib.sh
. "$REPO/hack/bench/lib.sh"

BUILD_DIR=$REPO/build
ROUNDS=5
DURATION=10
PODS=100
MTU=1500
REF_CNI=${SLUICE_REF_CNI_DIR:-/usr/lib/cni}
while (($#)); do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --pods) PODS=$2; shift 2 ;;
    --mtu) MTU=$2; shift 2 ;;
    --rr-slices) export BENCH_RR_SLICES=$2; shift 2 ;;
    --tput-slices) export BENCH_TPUT_SLICES=$2; shift 2 ;;
    --cc) export BENCH_TCP_CC=$2; shift 2 ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "same-node: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "same-node: needs root (network namespaces, bpffs)" >&2; exit 1; }
for t in ip tc clang iperf3 sockperf python3 ss; do
  command -v "$t" >/dev/null || { echo "same-node: missing $t: run hack/install-deps.sh" >&2; exit 1; }
done
PLUGIN=$BUILD_DIR/bin/sluice
AGENT=$BUILD_DIR/bin/sluice-agent
for b in "$PLUGIN" "$AGENT" "$REF_CNI/bridge" "$REF_CNI/ptp" "$REF_CNI/host-local"; do
  [[ -x $b ]] || { echo "same-node: $b not found (build first, or install containernetworking-plugins)" >&2; exit 1; }
done

P=slbs$$                                # every namespace of this run starts with it
WORK=$(mktemp -d /tmp/sluice-bench-XXXXXX)
BPF=$WORK/bpf
RES=$WORK/results
mkdir -p "$BPF" "$RES" "$WORK/sluice-state" "$WORK/host-local"

cleanup() {
  set +e
  bench_bpf_stats_restore
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do
    bench_kill_netns_procs "$ns"
    ip netns del "$ns" 2>/dev/null
  done
  if mountpoint -q "$BPF"; then umount -l "$BPF"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

netns_new() {
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# cni HOST_NS PLUGIN_PATH COMMAND CONTAINER_ID POD_NETNS CONF_FILE: a runtime-style exec in
# the host namespace; the result (or error) on stdout.
cni() {
  ip netns exec "$1" env -i PATH="$PATH" CNI_COMMAND="$3" CNI_CONTAINERID="$4" CNI_NETNS="/run/netns/$5" \
    CNI_IFNAME=eth0 CNI_PATH="$(dirname "$PLUGIN"):$REF_CNI" "$2" <"$6"
}

result_ip() {
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ips"][0]["address"].split("/")[0])' "$1"
}

# ---- the three plugin setups: a host namespace each, two pods each ----
cat >"$WORK/sluice.json" <<EOF
{"cniVersion": "1.0.0", "name": "bench-sluice", "type": "sluice", "mtu": $MTU,
 "bpfRoot": "$BPF", "stateDir": "$WORK/sluice-state", "logFile": "$WORK/sluice-state/cni.log",
 "logLevel": "warn", "ipam": {"type": "sluice-ipam", "ranges": [[{"subnet": "10.244.0.0/16"}]]}}
EOF
cat >"$WORK/bridge.json" <<EOF
{"cniVersion": "1.0.0", "name": "bench-bridge", "type": "bridge", "bridge": "cni0", "isGateway": true,
 "ipMasq": false, "mtu": $MTU,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.0.0/16"}]], "dataDir": "$WORK/host-local",
          "routes": [{"dst": "0.0.0.0/0"}]}}
EOF
cat >"$WORK/ptp.json" <<EOF
{"cniVersion": "1.0.0", "name": "bench-ptp", "type": "ptp", "ipMasq": false, "mtu": $MTU,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.246.0.0/16"}]], "dataDir": "$WORK/host-local",
          "routes": [{"dst": "0.0.0.0/0"}]}}
EOF

mount -t bpf bpf "$BPF"
for setup in sluice bridge ptp; do
  netns_new "$P-$setup"
  ip -n "$P-$setup" addr add 198.18.0.1/32 dev lo
  ip netns exec "$P-$setup" sysctl -qw net.ipv4.ip_forward=1
done
# The plugin runs from where the agent installs it on a node (--install-cni-bin copies it in
# 64 KiB writes), not from the linker's output: the page cache of a file the linker wrote holds
# it in small folios, and every exec then maps the plugin's code in more, slower faults
# (0.15 ms more for VERSION, 0.3 ms for ADD, measured here).
ip netns exec "$P-sluice" "$AGENT" --load-only --bpf-root "$BPF" --state-dir "$WORK/sluice-state" --log-level warn \
  --install-cni-bin "$BUILD_DIR/bin/sluice" --cni-bin-dir "$WORK/cni-bin"
PLUGIN=$WORK/cni-bin/sluice

declare -A CLIENT SERVER SERVER_IP
plugin_path() { case $1 in sluice) echo "$PLUGIN" ;; *) echo "$REF_CNI/$1" ;; esac; }
for setup in sluice bridge ptp; do
  for role in client server; do
    pod=$P-$setup-$role
    netns_new "$pod"
    out=$(cni "$P-$setup" "$(plugin_path "$setup")" ADD "bench-$setup-$role" "$pod" "$WORK/$setup.json") ||
      { echo "same-node: $setup ADD failed: $out" >&2; exit 1; }
    if [[ $role == client ]]; then CLIENT[$setup]=$pod; else SERVER[$setup]=$pod; SERVER_IP[$setup]=$(result_ip "$out"); fi
  done
done

# ---- the bare veth pair: the limit ----
netns_new "$P-bare-client"
netns_new "$P-bare-server"
ip -n "$P-bare-client" link add eth0 mtu "$MTU" type veth peer name eth0 netns "$P-bare-server" mtu "$MTU"
ip -n "$P-bare-client" addr add 10.247.0.1/24 dev eth0
ip -n "$P-bare-server" addr add 10.247.0.2/24 dev eth0
ip -n "$P-bare-client" link set eth0 up
ip -n "$P-bare-server" link set eth0 up
CLIENT[bare]=$P-bare-client
SERVER[bare]=$P-bare-server
SERVER_IP[bare]=10.247.0.2

# ---- the floor of Sluice's design: its plumbing, a program that only redirects ----
# Pod veths to a host namespace as the plugin builds them (one queue each), and on both host ends
# a tc program that does nothing but bpf_redirect_peer() to the other one; the pods know each
# other's MACs (permanent neighbours), so nothing needs rewriting. What it costs over the bare
# pair is what the tc hook and the second receive pass cost, before any of Sluice's own work.
netns_new "$P-floor"
for role in client server; do
  netns_new "$P-floor-$role"
  ip -n "$P-floor" link add "fl-$role" mtu "$MTU" numtxqueues 1 numrxqueues 1 type veth \
    peer name eth0 netns "$P-floor-$role" mtu "$MTU" numtxqueues 1 numrxqueues 1
  ip -n "$P-floor-$role" link set eth0 up
  ip -n "$P-floor" link set "fl-$role" up
done
ip -n "$P-floor-client" addr add 10.248.0.1/24 dev eth0
ip -n "$P-floor-server" addr add 10.248.0.2/24 dev eth0
mac() { ip -n "$1" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2; }
ip -n "$P-floor-client" neigh replace 10.248.0.2 lladdr "$(mac "$P-floor-server")" dev eth0 nud permanent
ip -n "$P-floor-server" neigh replace 10.248.0.1 lladdr "$(mac "$P-floor-client")" dev eth0 nud permanent
ifindex() { ip -n "$P-floor" -o link show "$1" | cut -d: -f1; }
cat >"$WORK/floor.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("tc")
int floor_redirect(struct __sk_buff *skb)
{
	return bpf_redirect_peer(skb->ingress_ifindex == IF_A ? IF_B : IF_A, 0);
}
char LICENSE[] SEC("license") = "GPL";
EOF
clang -O2 -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -DIF_A="$(ifindex fl-client)" \
  -DIF_B="$(ifindex fl-server)" -c "$WORK/floor.bpf.c" -o "$WORK/floor.bpf.o"
for role in client server; do
  ip netns exec "$P-floor" tc qdisc add dev "fl-$role" clsact
  ip netns exec "$P-floor" tc filter add dev "fl-$role" ingress prio 1 handle 1 bpf da obj "$WORK/floor.bpf.o" sec tc
done
CLIENT[floor]=$P-floor-client
SERVER[floor]=$P-floor-server
SERVER_IP[floor]=10.248.0.2

SETUPS=(bare floor sluice bridge ptp)
declare -A LABEL=([bare]="bare veth pair (limit)" [floor]="veth+tc redirect only" [sluice]="Sluice" [bridge]="bridge plugin"
  [ptp]="ptp plugin")
for s in "${SETUPS[@]}"; do
  ip netns exec "${CLIENT[$s]}" ping -c 1 -W 2 -q "${SERVER_IP[$s]}" >/dev/null ||
    { echo "same-node: ${LABEL[$s]}: client cannot reach ${SERVER_IP[$s]}" >&2; exit 1; }
done

echo "same-node benchmark: $ROUNDS rounds x ${DURATION}s per test, MTU $MTU, $(nproc) CPUs, kernel $(uname -r)," \
  "TCP congestion control $(bench_tcp_cc "${CLIENT[sluice]}")" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  bench_tput_round "$RES" tput 5201 "$DURATION" 1 CLIENT SERVER SERVER_IP "${SETUPS[@]}"
  bench_rr_round "$RES" 5302 "$DURATION" CLIENT SERVER SERVER_IP "${SETUPS[@]}"
done
# What Sluice's programs cost per packet, beside the floor's one-call program (nearly all of whose
# figure is the statistics' own cost): a throughput and an RR run of each, outside the rounds.
declare -A PROGS=([sluice]="sl_from_pod,sl_to_pod" [floor]=floor_redirect)
if ((ROUNDS > 0)); then
  echo "BPF cost: one more throughput and RR run of Sluice and the floor with BPF statistics on" >&2
  for s in sluice floor; do
    bench_bpf_cost "${PROGS[$s]}" -- bench_tput "${CLIENT[$s]}" "${SERVER[$s]}" "${SERVER_IP[$s]}" 5201 "$DURATION" 1 \
      >"$RES/$s.tput.bpf"
    bench_bpf_cost "${PROGS[$s]}" -- bench_rr "${CLIENT[$s]}" "${SERVER[$s]}" "${SERVER_IP[$s]}" 5302 "$DURATION" \
      >"$RES/$s.rr.bpf"
  done
fi

# ---- ADD/DEL latency: Sluice vs ptp, interleaved pod by pod ----
# Timed like a runtime pays it: from the host namespace, spawn the plugin as Go's os/exec does
# (vfork), exec, wait (hack/bench/cni_latency.py; no `ip netns exec` in the measurement).
echo "ADD/DEL latency: $PODS pods each for Sluice and ptp" >&2
python3 "$REPO/hack/bench/cni_latency.py" --pods "$PODS" --prefix "$P" --out "$RES/latency.json" \
  --cni-path "$(dirname "$PLUGIN"):$REF_CNI" \
  --setup sluice "$P-sluice" "$PLUGIN" "$WORK/sluice.json" \
  --setup ptp "$P-ptp" "$REF_CNI/ptp" "$WORK/ptp.json"
for s in sluice ptp; do
  for op in add del version; do
    python3 -c 'import json, sys; print("\n".join(map(str, json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3] + "_us"])))' \
      "$RES/latency.json" "$s" "$op" >"$RES/$s.$op.us"
  done
done

# ---- report ----
col() { awk -v c="$2" '{ print $c }' "$1"; }
ms() { awk -v u="$1" 'BEGIN { if (u == "nan") print "nan"; else printf "%.2f", u / 1000 }'; }
if ((ROUNDS > 0)); then  # --rounds 0: ADD/DEL latency only
  echo
  printf '%-24s %-22s %-34s %-9s %-22s %-10s %s\n' "setup" "TCP Gbit/s med (min-max)" "per-round ratio to bare" "ratio" \
    "RR RTT us med (min-max)" "RTT p99" "RTT ratio [per round] paired"
  # round_ratios KIND SETUP: the setup's first column over the bare pair's, round by round
  round_ratios() {
    local r out=""
    for ((r = 1; r <= ROUNDS; r++)); do
      out+="$(bench_ratio "$(sed -n "${r}p" "$RES/$2.$1" | cut -d' ' -f1)" "$(sed -n "${r}p" "$RES/bare.$1" | cut -d' ' -f1)") "
    done
    echo "${out% }"
  }
  for s in "${SETUPS[@]}"; do
    ratios=$(round_ratios tput "$s")
    tmed=$(col "$RES/$s.tput" 1 | bench_median)
    bmed=$(col "$RES/bare.tput" 1 | bench_median)
    rmed=$(col "$RES/$s.rr" 1 | bench_median)
    brmed=$(col "$RES/bare.rr" 1 | bench_median)
    printf '%-24s %-22s %-34s %-9s %-22s %-10s %s\n' "${LABEL[$s]}" "$(bench_fmt_range "$RES/$s.tput" 1)" "$ratios" \
      "$(bench_ratio "$tmed" "$bmed")" "$(bench_fmt_range "$RES/$s.rr" 1)" "$(col "$RES/$s.rr" 2 | bench_median)" \
      "$(bench_ratio "$rmed" "$brmed") [$(round_ratios rr "$s")] $(bench_paired_ratio "$RES" "$s" bare)"
  done
  echo
  printf '%-24s %-46s %s\n' "setup" "CPU-seconds per GB, med (min-max) [per round]" \
    "wake-up IPIs per GB, thousands (bench_wakeup_ipis)"
  for s in "${SETUPS[@]}"; do
    printf '%-24s %-46s %s\n' "${LABEL[$s]}" "$(bench_fmt_range "$RES/$s.tput" 2)  [$(col "$RES/$s.tput" 2 | paste -sd' ')]" \
      "$(bench_fmt_range "$RES/$s.tput" 3)"
  done
  # The targets compare setups: each throughput run beside the other setups' of the same turn
  # (--tput-slices N gives N turns per round), the median of those ratios.
  echo
  echo "paired, turn by turn over $(wc -l <"$RES/bare.tput-slices") throughput runs each (median of the per-turn ratios):"
  printf '%-24s %-22s %-22s %-22s %s\n' "setup" "throughput / bare" "CPU per GB / bare" "CPU per GB / bridge" \
    "CPU per GB / ptp"
  for s in "${SETUPS[@]}"; do
    printf '%-24s %-22s %-22s %-22s %s\n' "${LABEL[$s]}" "$(bench_paired_ratio "$RES" "$s" bare tput)" \
      "$(bench_paired_ratio "$RES" "$s" bare tput 2)" "$(bench_paired_ratio "$RES" "$s" bridge tput 2)" \
      "$(bench_paired_ratio "$RES" "$s" ptp tput 2)"
  done
  echo
  bench_bpf_cost_table "${LABEL[sluice]}" "TCP 1 stream" "$RES/sluice.tput.bpf" "${LABEL[sluice]}" "RR" "$RES/sluice.rr.bpf" \
    "${LABEL[floor]}" "TCP 1 stream" "$RES/floor.tput.bpf" "${LABEL[floor]}" "RR" "$RES/floor.rr.bpf"
  echo
fi
echo "ADD/DEL latency over $PODS pods (ms, vfork + exec of the plugin from the host namespace + its work; 'first/last 10': ADD median with 0-9 / $((PODS - 10))-$((PODS - 1)) pods already present; VERSION: the same spawn doing nothing but start and answer, before each ADD):"
lat_row='%-24s %-12s %-12s %-12s %-12s %-12s %-12s %-12s\n'  # the header and each plugin's row
# shellcheck disable=SC2059 # the format is lat_row, a constant
printf "$lat_row" "plugin" "ADD median" "ADD p99" "first 10" "last 10" "DEL median" "DEL p99" "VERSION med"
for s in sluice ptp; do
  # shellcheck disable=SC2059
  printf "$lat_row" "${LABEL[$s]}" "$(ms "$(bench_median <"$RES/$s.add.us")")" \
    "$(ms "$(bench_percentile 99 <"$RES/$s.add.us")")" "$(ms "$(head -n 10 "$RES/$s.add.us" | bench_median)")" \
    "$(ms "$(tail -n 10 "$RES/$s.add.us" | bench_median)")" "$(ms "$(bench_median <"$RES/$s.del.us")")" \
    "$(ms "$(bench_percentile 99 <"$RES/$s.del.us")")" "$(ms "$(bench_median <"$RES/$s.version.us")")"
done
