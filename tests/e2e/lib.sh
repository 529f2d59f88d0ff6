#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared by the e2e tests: a cluster of our own (per-run prefix), torn down on any exit, and
# small assertion helpers. Source it; then call e2e_up with hack/cluster.sh up arguments.
set -euo pipefail
# Debian's python3 (hack/install-deps.sh installs it) ahead of a version manager's shim in PATH:
# a pyenv shim costs 0.3 s per start, and the suites start Python hundreds of times (it was
# most of e2e_restart's time on a machine with one).
[[ -x /usr/bin/python3 ]] && PATH=/usr/bin:$PATH

E2E_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SLUICE_CLUSTER_PREFIX=${SLUICE_CLUSTER_PREFIX:-slte$$}
export SLUICE_BUILD_DIR=${SLUICE_BUILD_DIR:-$E2E_REPO/build}
# The datapath mode of every cluster this run brings up (hack/cluster.sh reads it as the
# default of up --mode): vxlan or native. Scripts branch on it with native_mode.
export SLUICE_MODE=${SLUICE_MODE:-vxlan}
CLUSTER="$E2E_REPO/hack/cluster.sh"
CROOT=/run/sluice-cluster/$SLUICE_CLUSTER_PREFIX
AGENT=$SLUICE_BUILD_DIR/bin/sluice-agent
E2E_FAILS=0
E2E_BG_PIDS=()

e2e_cleanup() {
  local rc=$?
  local pid
  for pid in "${E2E_BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if ((rc != 0 || E2E_FAILS != 0)) && [[ -d $CROOT ]]; then
    echo "---- agent logs (last lines) ----" >&2
    tail -n 30 "$CROOT"/n*/agent.out "$CROOT"/n*/state/cni.log 2>/dev/null >&2 || true
  fi
  bash "$CLUSTER" down >/dev/null 2>&1 || true
  exit "$rc"
}
trap e2e_cleanup EXIT

e2e_up() { bash "$CLUSTER" up "$@" >&2; }

# Each result line ends with the seconds since the previous one (what that check, and whatever
# ran before it, took: where an e2e suite spends CI's time).
E2E_LAST=$EPOCHREALTIME
result() {  # result PASS|FAIL description
  local now=$EPOCHREALTIME
  printf '%s %s [%s s]\n' "$1" "$2" "$(awk -v a="$E2E_LAST" -v b="$now" 'BEGIN { printf "%.1f", b - a }')"
  E2E_LAST=$now
}
pass() { result PASS "$*"; }
fail() { result FAIL "$*"; E2E_FAILS=$((E2E_FAILS + 1)); }
check() {  # check "description" command...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
e2e_done() {
  if ((E2E_FAILS)); then
    echo "$E2E_FAILS check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
}

native_mode() { [[ $SLUICE_MODE == native ]]; }

nns() { echo "$SLUICE_CLUSTER_PREFIX-n$1"; }
pns() { echo "$SLUICE_CLUSTER_PREFIX-n$1-p$2"; }
pod_ip() { awk -F'\t' -v n="pod-$1-$2" '$1 == n {print $4}' "$CROOT/pods.tsv"; }
node_ip() { echo "198.18.0.$1"; }
bpf_root() { echo "$CROOT/n$1/bpf/sluice"; }
# A pod's SL_IFACE_F_UNTRANSLATED promise (docs/internals.md, NAT detection), read from its
# node's sl_ifaces by the pod's host veth: "held", "ended" or "missing". promise <node> <pod>
promise() {
  local ifindex
  ifindex=$(ip netns exec "$(pns "$1" "$2")" cat /sys/class/net/eth0/iflink 2>/dev/null) || { echo missing; return; }
  bpftool -j map dump pinned "$(bpf_root "$1")/sl_ifaces" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    f = e["formatted"]
    if f["key"] == int(sys.argv[1]):
        print("held" if f["value"]["flags"] & 8 else "ended")
        break
else:
    print("missing")' "$ifindex"
}
# The id of the program a node's agent pinned under NAME (sl_from_pod, sl_from_native, ...).
pinned_id() { bpftool prog show pinned "$(bpf_root "$1")/$2" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# Dual stack (hack/cluster.sh's default): a pod's IPv6 address; a node's own IPv6 address, the
# source of its traffic to pods (vxlan mode: the first of its IPv6 pod CIDR, on sluice_vxlan;
# native mode: its IPv6 InternalIP on the underlay, underlay_ip6); the outside world's.
pod_ip6() { awk -F'\t' -v n="pod-$1-$2" '$1 == n {print $2}' "$CROOT/pods6.tsv" 2>/dev/null || true; }
# Whether the cluster is dual stack (hack/cluster.sh up's default).
ipv6_cluster() { grep -qx 'ipv6=1' "$CROOT/options" 2>/dev/null; }
# Addresses per pod: 2 in a dual-stack cluster, else 1.
pod_families() { if ipv6_cluster; then echo 2; else echo 1; fi; }
underlay_ip6() { echo "fd00:198:18::$1"; }
node_ip6() { if native_mode; then underlay_ip6 "$1"; else echo "fd00:10:244:$1::"; fi; }
EXT_IP6=fd00:198:18::254

# agent_cli <subcommand> <node> [args...]: the inspection CLI on a node's pins and state, run
# inside the node's netns as the DaemonSet's hostNetwork container runs it.
agent_cli() {
  local cmd=$1 n=$2
  shift 2
  ip netns exec "$(nns "$n")" "$AGENT" "$cmd" --bpf-root "$(bpf_root "$n")" --state-dir "$CROOT/n$n/state" \
    --cni-conf-dir "$CROOT/n$n/net.d" "$@"
}

# counter <node> <name>: packets of one datapath verdict on a node, from the CLI's JSON.
counter() {
  agent_cli counters "$1" -o json |
    python3 -c 'import json,sys
d = json.load(sys.stdin)
name = sys.argv[1]
group, key = ("drops", name[5:]) if name.startswith("drop:") else ("verdicts", name)
print(d[group][key]["packets"])' "$2"
}

# drops <node>: "<reason>=<packets> ..." for every drop reason the node counted, empty if none.
drops() {
  agent_cli counters "$1" -o json |
    python3 -c 'import json,sys
d = json.load(sys.stdin)["drops"]
print(" ".join("%s=%d" % (k, v["packets"]) for k, v in sorted(d.items()) if v["packets"]))'
}

# ping_ok <netns> <address> [count]: every echo answered; several go 50 ms apart (what the
# checks count is packets, and ping's default second between them was most of e2e's time).
ping_ok() { ip netns exec "$1" ping -c "${3:-1}" -i 0.05 -W 2 -q "$2" >/dev/null 2>&1; }

# within <ms> command...: waits up to <ms> milliseconds for a command to succeed (polling every
# 50 ms) and reports how long it took.
within() {
  local limit=$1 start elapsed
  shift
  start=$(date +%s%N)
  while true; do
    if "$@"; then
      elapsed=$((($(date +%s%N) - start) / 1000000))
      printf '  converged in %d ms\n' "$elapsed" >&2
      return 0
    fi
    elapsed=$((($(date +%s%N) - start) / 1000000))
    ((elapsed > limit)) && return 1
    sleep 0.05
  done
}
