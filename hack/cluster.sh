#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A multi-node Kubernetes-style cluster simulated in network namespaces, running Sluice.
#
#   sudo hack/cluster.sh demo                  deps + build + up + check (the README's run command)
#   sudo hack/cluster.sh up [--nodes N] [--pods-per-node M] [--underlay-mtu BYTES]
#                           [--rp-filter off|strict|loose] [--chain PLUGIN,...] [--mode vxlan|native]
#                           [--ipv4-only]
#   sudo hack/cluster.sh check                 connectivity matrix; non-zero exit on any failure
#   sudo hack/cluster.sh status [-o json]
#   sudo hack/cluster.sh down                  removes everything, even after a crash
#   sudo hack/cluster.sh restart-agent NODE [--down-for SECONDS] [--agent-bin PATH]
#   sudo hack/cluster.sh stop-agent NODE        SIGTERM, exit awaited (the datapath keeps going)
#                                              (node number, e.g. 2; PATH: start another build
#                                              of sluice-agent, as an upgrade does)
#   sudo hack/cluster.sh add-pod NODE [--host-port HOST:CONTAINER[/tcp|udp]]... [--bandwidth RATE]
#                                              one more pod; prints "<name> <ip>"
#   sudo hack/cluster.sh check-pod NAME [--skip TYPE]   CNI CHECK of a pod through the plugin chain
#   sudo hack/cluster.sh del-pod NAME          CNI DEL through the chain, then its netns goes
#
# up options: --underlay-mtu sets the MTU of the node network (pods get it minus the VXLAN
# overhead in vxlan mode, all of it in native mode, derived by the agents); --mode is the
# agents' datapath mode (default: $SLUICE_MODE, else vxlan): vxlan encapsulates cross-node pod
# traffic, native routes it unencapsulated over the underlay (the nodes share its bridge, so
# they are L2-adjacent as native routing needs); --rp-filter sets net.ipv4.conf.{all,default}.rp_filter in
# every node before its agent starts (default: $SLUICE_RP_FILTER, else left as inherited);
# --chain makes the agents chain those CNI plugins (from /usr/lib/cni) after sluice.
# add-pod passes runtimeConfig to the chain like a runtime: portMappings for --host-port (the
# portmap plugin), bandwidth ingress+egress RATE bits/s (k/M/G suffixes) for --bandwidth.
#
# Dual stack is on unless up --ipv4-only (both modes): node i also gets the IPv6 pod CIDR
# fd00:10:244:<i>::/64 out of the cluster's fd00:10:244::/48 (unique local addresses, RFC 4193,
# the IPv6 counterpart of 10.244.0.0/16; the agents get --cluster-cidr
# 10.244.0.0/16,fd00:10:244::/48), so every pod has an IPv4 and an IPv6 address (status -o json:
# "ip6"; pods6.tsv). The underlay carries fd00:198:18::<i>/64 on the nodes (their IPv6
# InternalIPs: "internalIP6" in the nodes file) and fd00:198:18::254 in the outside namespace.
# VXLAN mode tunnels IPv6 pod traffic over the IPv4 underlay (node addresses 198.18.0.<i>);
# native mode routes it over the underlay's IPv6, via the other nodes' IPv6 addresses. The
# agents masquerade pod IPv6 leaving fd00:10:244::/48 (nft table ip6 sluice).
#
# Nodes are network namespaces joined by a bridge in an "underlay" namespace (addresses from
# the benchmarking range 198.18.0.0/15), each with its own bpffs mounted outside /sys, its own
# sluice-agent (logs under the node's state dir) reading a shared nodes file, and pods created
# by executing the plugins of the conflist the agent wrote in the node's conf dir exactly as a
# container runtime does (env + stdin, prevResult, runtimeConfig). Nothing here touches the
# root namespace's interfaces or routes: no packet leaves the machine.
#
# Environment: SLUICE_CLUSTER_PREFIX (default "slc") names every namespace and the state
# directory /run/sluice-cluster/<prefix>, so parallel clusters (tests) never collide.
# SLUICE_BUILD_DIR (default build) is where the binaries are. SLUICE_AGENT_ARGS: extra
# sluice-agent flags, applied at up and restart-agent. SLUICE_RP_FILTER, SLUICE_MODE: see up.
# Pods are plumbed by hack/cni-runtime.py, which runs the conflist's plugins in order like
# libcni (prevResult, capabilities -> runtimeConfig, cached results for CHECK and DEL).
set -euo pipefail
# Debian's python3 (hack/install-deps.sh installs it) ahead of a version manager's shim in PATH:
# a pyenv shim costs 0.3 s per start, and every pod's ADD starts Python.
[[ -x /usr/bin/python3 ]] && PATH=/usr/bin:$PATH

REPO=$(cd "$(dirname "$0")/.." && pwd)
P=${SLUICE_CLUSTER_PREFIX:-slc}
ROOT=/run/sluice-cluster/$P
BUILD_DIR=${SLUICE_BUILD_DIR:-$REPO/build}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$REPO/$BUILD_DIR
BIN=$BUILD_DIR/bin
UL=$P-ul                 # the underlay namespace (a bridge standing in for the node network)
EXT=$P-ext               # the "outside world": one more namespace of ours
POD_CIDR_BASE=10.244     # node i gets 10.244.i.0/24
NODE_NET=198.18.0        # node i is 198.18.0.i/24
EXT_IP=198.18.0.254
POD6_CIDR_BASE=fd00:10:244  # dual stack: node i gets fd00:10:244:i::/64
CLUSTER_CIDR6=fd00:10:244::/48
NODE_NET6=fd00:198:18       # dual stack: node i is fd00:198:18::i/64 on the underlay too
EXT_IP6=fd00:198:18::254
METRICS_PORT=9962

log() { printf '%s\n' "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

need_root() { [[ $EUID -eq 0 ]] || die "needs root (network namespaces, bpffs): sudo $0 $*"; }

node_ns() { echo "$P-n$1"; }
pod_ns() { echo "$P-n$1-p$2"; }
node_dir() { echo "$ROOT/n$1"; }

nodes_count() { cat "$ROOT/nodes" 2>/dev/null || echo 0; }

# Options given to up, kept for restart-agent: <key>=<value> lines in $ROOT/options.
cluster_opt() { sed -n "s/^$1=//p" "$ROOT/options" 2>/dev/null | tail -n 1; }

# Dual stack unless up --ipv4-only (clusters from before it existed: IPv4 only).
ipv6_on() { [[ $(cluster_opt ipv6) == 1 ]]; }

write_nodes_file() {
  local n=$1 i entries=()
  local cidrs ip6
  for ((i = 1; i <= n; i++)); do
    cidrs="\"$POD_CIDR_BASE.$i.0/24\"" ip6=
    ipv6_on && cidrs+=", \"$POD6_CIDR_BASE:$i::/64\"" ip6=", \"internalIP6\": \"$NODE_NET6::$i\""
    entries+=("{\"name\": \"node-$i\", \"internalIP\": \"$NODE_NET.$i\"$ip6, \"podCIDRs\": [$cidrs]}")
  done
  local IFS=,
  printf '{"nodes": [%s]}\n' "${entries[*]}" >"$ROOT/nodes.json.tmp"
  mv "$ROOT/nodes.json.tmp" "$ROOT/nodes.json"
}

start_agent() {
  local i=$1 agent_bin=${2:-$BIN/sluice-agent} ns dir extra=()
  ns=$(node_ns "$i")
  dir=$(node_dir "$i")
  # SLUICE_AGENT_ARGS: more agent flags (e.g. --nat-detect records), read at every (re)start.
  read -r -a extra <<<"${SLUICE_AGENT_ARGS:-}"
  local chain mode cluster_cidr=$POD_CIDR_BASE.0.0/16
  chain=$(cluster_opt chain)
  [[ -n $chain ]] && extra+=(--chain "$chain")
  mode=$(cluster_opt mode)
  extra+=(--mode "${mode:-vxlan}")
  ipv6_on && cluster_cidr+=",$CLUSTER_CIDR6"
  # setsid: the agent outlives this script and is found again by its pid file and netns.
  ip netns exec "$ns" setsid "$agent_bin" "${extra[@]}" \
    --node-name "node-$i" --nodes-file "$ROOT/nodes.json" \
    --bpf-root "$dir/bpf/sluice" --state-dir "$dir/state" \
    --cni-conf-dir "$dir/net.d" --cni-bin-dir "$dir/bin" --install-cni-bin "$BIN/sluice" \
    --cluster-cidr "$cluster_cidr" --metrics-addr "127.0.0.1:$METRICS_PORT" \
    --log-level "${SLUICE_LOG_LEVEL:-info}" --log-file "$dir/state/agent.log" \
    </dev/null >>"$dir/agent.out" 2>&1 &
  echo $! >"$dir/agent.pid"
}

# need_node COMMAND ARG: ARG is the number of one of the cluster's nodes, or COMMAND fails.
need_node() {
  [[ $2 =~ ^[0-9]+$ ]] && (($2 >= 1 && $2 <= $(nodes_count))) || die "$1: node number expected"
}

# running PID: the process exists and has not exited. An agent outlives the `up` that started
# it, so init is its parent, and init may take seconds to reap it: kill -0 succeeds on a zombie.
running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != [ZX] ]]
}

stop_agent() {
  local i=$1 pidfile pid
  pidfile=$(node_dir "$i")/agent.pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.05; done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

wait_ready() {
  local i=$1 dir
  dir=$(node_dir "$i")
  for _ in $(seq 300); do
    if [[ -f $dir/net.d/10-sluice.conflist ]] && http_get "$i" /healthz | grep -q '^ok'; then return 0; fi
    if ! running "$(cat "$dir/agent.pid")"; then
      tail -20 "$dir/agent.out" >&2 || true
      die "node-$i: sluice-agent exited"
    fi
    sleep 0.1
  done
  tail -20 "$dir/agent.out" >&2 || true
  die "node-$i: sluice-agent not ready after 30 s"
}

# GET on the node's agent HTTP endpoint, body only (bash's /dev/tcp: no curl needed).
http_get() {
  local i=$1 path=$2
  ip netns exec "$(node_ns "$i")" bash -c '
    exec 3<>/dev/tcp/127.0.0.1/'"$METRICS_PORT"' || exit 1
    printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "'"$path"'" >&3
    sed "1,/^\r\{0,1\}$/d" <&3' 2>/dev/null
}

# Runs the node's conflist (every plugin of the chain) as a runtime would, from the node's
# netns: cni_exec ADD|CHECK|DEL <node> <pod> [cni-runtime.py flags]. Prints the CNI result;
# the plugins' stderr goes to the node's plugin.stderr (sluice's full log is <state>/cni.log).
# An ADD takes the pod's runtime config (rc/pod-<node>-<pod>.json) when add-pod wrote one.
cni_exec() {
  local cmd=$1 i=$2 j=$3 dir ns cid
  shift 3
  dir=$(node_dir "$i")
  ns=$(pod_ns "$i" "$j")
  cid=$(printf '%s' "$ns" | sha256sum | cut -c1-64)
  local netns_path=/run/netns/$ns
  [[ $cmd == DEL && ! -e $netns_path ]] && netns_path=
  local -a rc=()
  [[ -f $dir/rc/pod-$i-$j.json ]] && rc=(--runtime-config "$dir/rc/pod-$i-$j.json")
  ip netns exec "$(node_ns "$i")" python3 "$REPO/hack/cni-runtime.py" "$cmd" \
    --conflist "$dir/net.d/10-sluice.conflist" --cache-dir "$dir/cni-cache" --container-id "$cid" \
    --netns "$netns_path" --ifname eth0 --cni-path "$dir/bin:/usr/lib/cni" \
    --args "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-$i-$j;K8S_POD_INFRA_CONTAINER_ID=$cid" \
    "${rc[@]}" --stderr "$dir/plugin.stderr" "$@" 2>>"$dir/plugin.stderr"
}

add_pod() {
  local i=$1 j=$2 ns out ip
  ns=$(pod_ns "$i" "$j")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if ! out=$(cni_exec ADD "$i" "$j"); then
    log "ADD pod-$i-$j failed: $out"
    tail -n 20 "$(node_dir "$i")/plugin.stderr" >&2
    ip netns del "$ns" 2>/dev/null || true
    return 1
  fi
  ip=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print([a for a in r["ips"] if ":" not in a["address"]][0]["address"].split("/")[0])' <<<"$out")
  printf '%s\t%s\t%s\t%s\n' "pod-$i-$j" "node-$i" "$ns" "$ip" >>"$ROOT/pods.tsv"
  if ipv6_on; then
    local ip6
    ip6=$(python3 -c 'import json,sys; r=json.load(sys.stdin); print(([a["address"].split("/")[0] for a in r["ips"] if ":" in a["address"]] + [""])[0])' <<<"$out")
    [[ -n $ip6 ]] || { log "ADD pod-$i-$j: no IPv6 address in the result: $out"; return 1; }
    printf '%s\t%s\n' "pod-$i-$j" "$ip6" >>"$ROOT/pods6.tsv"
  fi
}

# "10M" -> 10000000 (bits/s).
parse_rate() {
  local v=$1 m=1
  case $v in
    *[kK]) m=1000; v=${v%?} ;;
    *M) m=1000000; v=${v%?} ;;
    *G) m=1000000000; v=${v%?} ;;
  esac
  [[ $v =~ ^[0-9]+$ ]] && ((v > 0)) || die "not a rate: $1 (e.g. 10M)"
  echo $((v * m))
}

cmd_add_pod() {
  local i=${1:-}
  need_node add-pod "$i"
  shift
  local -a ports=()
  local rate=0 spec
  while (($#)); do
    case $1 in
      --host-port)
        spec=${2:-}
        [[ $spec =~ ^([0-9]+):([0-9]+)(/(tcp|udp))?$ ]] || die "--host-port HOST:CONTAINER[/tcp|udp], got '$spec'"
        ports+=("{\"hostPort\": ${BASH_REMATCH[1]}, \"containerPort\": ${BASH_REMATCH[2]}, \"protocol\": \"${BASH_REMATCH[4]:-tcp}\"}")
        shift 2 ;;
      --bandwidth) rate=$(parse_rate "${2:-}"); shift 2 ;;
      *) die "add-pod: unknown argument $1" ;;
    esac
  done
  # The next free pod number on that node (pods may have been deleted).
  local j=1 name node ns ip
  while IFS=$'\t' read -r name node ns ip; do
    [[ $name =~ ^pod-$i-([0-9]+)$ ]] && ((BASH_REMATCH[1] >= j)) && j=$((BASH_REMATCH[1] + 1))
  done < <(pods)
  local dir
  local -a rc=()
  dir=$(node_dir "$i")
  if ((${#ports[@]})); then
    rc+=("\"portMappings\": [$(IFS=,; echo "${ports[*]}")]")
  fi
  # Burst: 100 ms worth of the rate, at least a few full-size frames.
  local burst=$((rate / 10 > 80000 ? rate / 10 : 80000))
  ((rate > 0)) && rc+=("\"bandwidth\": {\"ingressRate\": $rate, \"ingressBurst\": $burst, \"egressRate\": $rate, \"egressBurst\": $burst}")
  if ((${#rc[@]})); then
    mkdir -p "$dir/rc"
    printf '{%s}\n' "$(IFS=,; echo "${rc[*]}")" >"$dir/rc/pod-$i-$j.json"
  fi
  add_pod "$i" "$j" || { rm -f "$dir/rc/pod-$i-$j.json"; die "add-pod: ADD failed"; }
  printf 'pod-%s-%s\t%s\n' "$i" "$j" "$(pods | awk -F'\t' -v n="pod-$i-$j" '$1 == n {print $4}')"
}

# pod_index NAME -> "<node> <pod>"
pod_index() {
  [[ ${1:-} =~ ^pod-([0-9]+)-([0-9]+)$ ]] || die "pod name expected (pod-<node>-<n>), got '${1:-}'"
  local i=${BASH_REMATCH[1]} j=${BASH_REMATCH[2]}
  pods | awk -F'\t' -v n="$1" '$1 == n {f = 1} END {exit !f}' || die "no pod $1"
  echo "$i $j"
}

cmd_check_pod() {
  local idx
  idx=$(pod_index "${1:-}")
  shift
  local -a skip=()
  while (($#)); do
    [[ $1 == --skip && -n ${2:-} ]] || die "check-pod NAME [--skip TYPE]..."
    skip+=(--skip "$2")
    shift 2
  done
  # shellcheck disable=SC2086 # idx is "<node> <pod>"
  cni_exec CHECK ${idx} "${skip[@]}"
}

cmd_del_pod() {
  local idx i j out ok=0
  idx=$(pod_index "${1:-}")
  read -r i j <<<"$idx"
  out=$(cni_exec DEL "$i" "$j") || { ok=1; log "DEL $1 failed: $out"; }
  ip netns del "$(pod_ns "$i" "$j")" 2>/dev/null || true
  rm -f "$(node_dir "$i")/rc/pod-$i-$j.json"
  awk -F'\t' -v n="$1" '$1 != n' "$ROOT/pods.tsv" >"$ROOT/pods.tsv.tmp"
  mv "$ROOT/pods.tsv.tmp" "$ROOT/pods.tsv"
  if [[ -f $ROOT/pods6.tsv ]]; then
    awk -F'\t' -v n="$1" '$1 != n' "$ROOT/pods6.tsv" >"$ROOT/pods6.tsv.tmp"
    mv "$ROOT/pods6.tsv.tmp" "$ROOT/pods6.tsv"
  fi
  return "$ok"
}

cmd_up() {
  # Dual stack unless --ipv4-only.
  local nodes=3 ppn=2 mtu=1500 rpf=${SLUICE_RP_FILTER:-} chain='' mode=${SLUICE_MODE:-vxlan} ipv6=1
  while (($#)); do
    case $1 in
      --nodes) nodes=$2; shift 2 ;;
      --pods-per-node) ppn=$2; shift 2 ;;
      --underlay-mtu) mtu=$2; shift 2 ;;
      --rp-filter) rpf=$2; shift 2 ;;
      --chain) chain=$2; shift 2 ;;
      --mode) mode=$2; shift 2 ;;
      --ipv4-only) ipv6=0; shift ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  ((nodes >= 1 && nodes <= 200)) || die "--nodes must be 1..200"
  ((ppn >= 0 && ppn <= 200)) || die "--pods-per-node must be 0..200"
  [[ $mtu =~ ^[0-9]+$ ]] && ((mtu >= 1280 && mtu <= 65000)) || die "--underlay-mtu must be 1280..65000"
  local rpf_value=
  case $rpf in
    "") ;;
    off | 0) rpf_value=0 ;;
    strict | 1) rpf_value=1 ;;
    loose | 2) rpf_value=2 ;;
    *) die "--rp-filter must be off, strict or loose (got '$rpf')" ;;
  esac
  [[ $mode == vxlan || $mode == native ]] || die "--mode must be vxlan or native (got '$mode')"
  [[ -z $chain || $chain =~ ^[a-z0-9_-]+(,[a-z0-9_-]+)*$ ]] || die "--chain: comma-separated plugin types"
  [[ -x $BIN/sluice && -x $BIN/sluice-agent ]] || die "no binaries in $BIN: build first (cmake -S . -B build && cmake --build build)"
  [[ -e $ROOT ]] && die "cluster '$P' exists: hack/cluster.sh down first"

  mkdir -p "$ROOT"
  echo "$nodes" >"$ROOT/nodes"
  printf 'underlay_mtu=%s\nrp_filter=%s\nchain=%s\nmode=%s\nipv6=%s\n' "$mtu" "$rpf_value" "$chain" "$mode" "$ipv6" >"$ROOT/options"
  : >"$ROOT/pods.tsv"
  : >"$ROOT/pods6.tsv"
  write_nodes_file "$nodes"

  ip netns add "$UL"
  ip -n "$UL" link add br0 mtu "$mtu" type bridge
  ip -n "$UL" link set br0 up
  ip -n "$UL" link set lo up

  local i j
  for ((i = 1; i <= nodes; i++)); do
    local ns dir
    ns=$(node_ns "$i")
    dir=$(node_dir "$i")
    mkdir -p "$dir/bpf" "$dir/state" "$dir/net.d" "$dir/bin"
    mount -t bpf bpf "$dir/bpf"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    if [[ -n $rpf_value ]]; then
      ip netns exec "$ns" sysctl -qw "net.ipv4.conf.all.rp_filter=$rpf_value" \
        "net.ipv4.conf.default.rp_filter=$rpf_value"
    fi
    ip -n "$UL" link add "n$i" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$ns"
    ip -n "$UL" link set "n$i" master br0 up
    ip -n "$ns" addr add "$NODE_NET.$i/24" dev eth0
    ipv6_on && ip -n "$ns" addr add "$NODE_NET6::$i/64" dev eth0 nodad
    ip -n "$ns" link set eth0 up
    start_agent "$i"
  done

  # The outside world: a host on the underlay that is no node.
  ip netns add "$EXT"
  ip -n "$EXT" link set lo up
  ip -n "$UL" link add ext mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$EXT"
  ip -n "$UL" link set ext master br0 up
  ip -n "$EXT" addr add "$EXT_IP/24" dev eth0
  ipv6_on && ip -n "$EXT" addr add "$EXT_IP6/64" dev eth0 nodad
  ip -n "$EXT" link set eth0 up

  for ((i = 1; i <= nodes; i++)); do wait_ready "$i"; done
  log "$nodes nodes ready"
  for ((i = 1; i <= nodes; i++)); do
    for ((j = 1; j <= ppn; j++)); do add_pod "$i" "$j"; done
  done
  log "$((nodes * ppn)) pods created"
  cmd_status
}

pods() { cat "$ROOT/pods.tsv" 2>/dev/null || true; }
# "<name>\t<IPv6 address>" of every pod (dual stack).
pods6() { cat "$ROOT/pods6.tsv" 2>/dev/null || true; }

cmd_status() {
  [[ -d $ROOT ]] || die "no cluster '$P'"
  local json=0
  [[ ${1:-} == -o && ${2:-} == json ]] && json=1
  if ((json)); then
    python3 - "$ROOT" "$P" "$NODE_NET" "$POD_CIDR_BASE" "$(cluster_opt mode)" "$(ipv6_on && echo "$POD6_CIDR_BASE")" "$NODE_NET6" <<'PY'
import json, os, sys
root, p, node_net, pod_base, mode, pod6_base, node_net6 = sys.argv[1:8]
n = int(open(f"{root}/nodes").read())
nodes = [{"name": f"node-{i}", "netns": f"{p}-n{i}", "ip": f"{node_net}.{i}", "podCIDR": f"{pod_base}.{i}.0/24"}
         for i in range(1, n + 1)]
if pod6_base:
    for i, node in enumerate(nodes, 1):
        node["ip6"] = f"{node_net6}::{i}"
        node["podCIDR6"] = f"{pod6_base}:{i}::/64"
ip6 = {}
if os.path.exists(f"{root}/pods6.tsv"):
    for line in open(f"{root}/pods6.tsv"):
        name, addr = line.rstrip("\n").split("\t")
        ip6[name] = addr
pods = []
for line in open(f"{root}/pods.tsv"):
    name, node, netns, ip = line.rstrip("\n").split("\t")
    pod = {"name": name, "node": node, "netns": netns, "ip": ip}
    if name in ip6:
        pod["ip6"] = ip6[name]
    pods.append(pod)
print(json.dumps({"mode": mode or "vxlan", "nodes": nodes, "pods": pods}, indent=2))
PY
    return
  fi
  local n i mode
  n=$(nodes_count)
  mode=$(cluster_opt mode)
  echo "mode: ${mode:-vxlan}"
  printf '%-8s %-12s %-14s %-16s %s\n' NODE NETNS IP PODCIDR AGENT
  for ((i = 1; i <= n; i++)); do
    local state=down
    if running "$(cat "$(node_dir "$i")/agent.pid" 2>/dev/null || echo 0)"; then state=running; fi
    printf '%-8s %-12s %-14s %-16s %s\n' "node-$i" "$(node_ns "$i")" "$NODE_NET.$i" "$POD_CIDR_BASE.$i.0/24" "$state"
    ipv6_on && printf '%-8s %-12s %-14s %s\n' "" "" "" "$POD6_CIDR_BASE:$i::/64"
  done
  echo
  printf '%-10s %-8s %-16s %s\n' POD NODE NETNS IP
  pods | while IFS=$'\t' read -r name node ns ip; do
    printf '%-10s %-8s %-16s %s\n' "$name" "$node" "$ns" "$ip $(pods6 | awk -F'\t' -v n="$name" '$1 == n {print $2}')"
  done
}

# family_check ICMP-TITLE TCP-TITLE ADDR-ARRAY: the matrices of one address family over the
# pods cmd_check read (names, nsof, firstOfNode); ADDR-ARRAY names an associative array of pod
# name -> address. Non-zero on any failure.
family_check() {
  local icmp_title=$1 tcp_title=$2 a b srv fail=0
  local -n addr=$3
  local n=${#names[@]}
  echo "$icmp_title"
  printf '%-10s' ""
  for ((b = 0; b < n; b++)); do printf ' %-9s' "${names[b]}"; done
  echo
  for ((a = 0; a < n; a++)); do
    printf '%-10s' "${names[a]}"
    for ((b = 0; b < n; b++)); do
      if ((a == b)); then printf ' %-9s' "."; continue; fi
      if [[ -n ${addr[${names[b]}]:-} ]] &&
        ip netns exec "${nsof[${names[a]}]}" ping -c 1 -W 2 -q "${addr[${names[b]}]}" >/dev/null 2>&1; then
        printf ' %-9s' "ok"
      else
        printf ' %-9s' "FAIL"; fail=1
      fi
    done
    echo
  done
  echo "$tcp_title"
  for srv in "${firstOfNode[@]}"; do
    for ((a = 0; a < n; a++)); do
      [[ ${names[a]} == "$srv" ]] && continue
      if [[ -n ${addr[$srv]:-} ]] && tcp_transfer "${nsof[${names[a]}]}" "${nsof[$srv]}" "${addr[$srv]}"; then
        printf '  %-10s -> %-10s ok\n' "${names[a]}" "$srv"
      else
        printf '  %-10s -> %-10s FAIL\n' "${names[a]}" "$srv"; fail=1
      fi
    done
  done
  return "$fail"
}

# Connectivity matrix: every pod pings every pod; TCP from each pod to one pod per node; over
# IPv6 too in a dual-stack cluster.
cmd_check() {
  [[ -d $ROOT ]] || die "no cluster '$P'"
  local -a names
  local -A nsof ip4of ip6of firstOfNode
  local name node ns ip addr fail=0
  # shellcheck disable=SC2034  # ip4of and ip6of are read through family_check's nameref
  while IFS=$'\t' read -r name node ns ip; do
    names+=("$name"); nsof[$name]=$ns; ip4of[$name]=$ip
    [[ -n ${firstOfNode[$node]:-} ]] || firstOfNode[$node]=$name
  done < <(pods)
  ((${#names[@]} > 0)) || die "no pods"
  family_check "ICMP, row pings column (. = itself):" \
    "TCP (1 MiB, sha256 compared), every pod to the first pod of every node:" ip4of || fail=1
  if ipv6_on; then
    # shellcheck disable=SC2034  # read through family_check's nameref
    while IFS=$'\t' read -r name addr; do ip6of[$name]=$addr; done < <(pods6)
    family_check "ICMPv6, row pings column over IPv6 (. = itself):" \
      "TCP over IPv6 (1 MiB, sha256 compared), every pod to the first pod of every node:" ip6of || fail=1
  fi

  echo "Datapath counters per node:"
  local i
  for ((i = 1; i <= $(nodes_count); i++)); do
    echo "  node-$i:"
    "$BIN/sluice-agent" counters --bpf-root "$(node_dir "$i")/bpf/sluice" 2>&1 | sed 's/^/    /'
  done
  if ((fail)); then
    log "connectivity check FAILED"
    return 1
  fi
  log "every pod reaches every other pod"
}

# Sends 1 MiB of random data from one netns to a listener in another (IPv4 or IPv6 address);
# compares hashes.
tcp_transfer() {
  local from=$1 to=$2 ip=$3 port=$((20000 + RANDOM % 20000)) tmp listen=TCP-LISTEN connect
  connect="TCP:$ip:$port"
  [[ $ip == *:* ]] && { listen=TCP6-LISTEN; connect="TCP6:[$ip]:$port"; }
  tmp=$(mktemp -d)
  head -c 1048576 /dev/urandom >"$tmp/data"
  ip netns exec "$to" timeout 10 socat -u "$listen:$port,reuseaddr" "OPEN:$tmp/recv,creat,trunc" &
  local lpid=$!
  local ok=1
  for _ in $(seq 50); do
    ip netns exec "$from" timeout 10 socat -u "OPEN:$tmp/data" "$connect,connect-timeout=1" 2>/dev/null && { ok=0; break; }
    sleep 0.1
  done
  wait "$lpid" 2>/dev/null || ok=1
  if ((ok == 0)) && [[ $(sha256sum <"$tmp/data") == "$(sha256sum <"$tmp/recv")" ]]; then
    rm -rf "$tmp"; return 0
  fi
  rm -rf "$tmp"
  return 1
}

cmd_down() {
  # Works from whatever is left: pid files, namespaces with our prefix, mounts under ROOT.
  local n i j
  n=$(nodes_count)
  # DEL every pod the way a runtime tears a sandbox down, while the datapath is still there.
  local name node ns ip
  while IFS=$'\t' read -r name node ns ip; do
    [[ $name =~ ^pod-([0-9]+)-([0-9]+)$ ]] || continue
    i=${BASH_REMATCH[1]} j=${BASH_REMATCH[2]}
    if [[ -f $(node_dir "$i")/net.d/10-sluice.conflist && -x $(node_dir "$i")/bin/sluice ]]; then
      cni_exec DEL "$i" "$j" >/dev/null 2>&1 || log "DEL $name failed (removing its netns anyway)"
    fi
  done < <(pods)
  for ((i = 1; i <= n; i++)); do stop_agent "$i"; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-(ul|ext|n[0-9]+(-p[0-9]+)?)$" || true); do
    local -a pids
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
    ((${#pids[@]} == 0)) || kill -KILL "${pids[@]}" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ -d $ROOT ]]; then
    local m
    for m in $(awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf "$ROOT"
  fi
  log "cluster '$P' removed"
}

cmd_restart_agent() {
  local i=${1:-} down=0 agent_bin=$BIN/sluice-agent
  [[ $i =~ ^[0-9]+$ ]] || die "restart-agent: node number expected"
  shift
  while (($#)); do
    case $1 in
      --down-for) down=$2; shift 2 ;;
      --agent-bin) agent_bin=$2; shift 2 ;;
      *) die "restart-agent: unknown argument $1" ;;
    esac
  done
  [[ -x $agent_bin ]] || die "restart-agent: $agent_bin is not an executable"
  ((i >= 1 && i <= $(nodes_count))) || die "no node $i"
  stop_agent "$i"
  log "node-$i: agent stopped"
  sleep "$down"
  start_agent "$i" "$agent_bin"
  wait_ready "$i"
  log "node-$i: agent ready again"
}

cmd_stop_agent() {
  local i=${1:-}
  need_node stop-agent "$i"
  stop_agent "$i"
  log "node-$i: agent stopped"
}

cmd_demo() {
  bash "$REPO/hack/install-deps.sh"
  cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target sluice sluice-agent
  [[ -e $ROOT ]] && cmd_down
  cmd_up "$@"
  echo
  cmd_check
  echo
  log "the cluster stays up: hack/cluster.sh status | check | down"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    up) need_root up; cmd_up "$@" ;;
    down) need_root down; cmd_down ;;
    status) need_root status; cmd_status "$@" ;;
    check) need_root check; cmd_check ;;
    demo) need_root demo; cmd_demo "$@" ;;
    restart-agent) need_root restart-agent; cmd_restart_agent "$@" ;;
    stop-agent) need_root stop-agent; cmd_stop_agent "$@" ;;
    add-pod) need_root add-pod; cmd_add_pod "$@" ;;
    check-pod) need_root check-pod; cmd_check_pod "$@" ;;
    del-pod) need_root del-pod; cmd_del_pod "$@" ;;
    *) awk 'NR >= 3 && !/^#/ {exit} NR >= 3' "$0" | sed 's/^# \{0,1\}//'; [[ -z $cmd || $cmd == -h || $cmd == --help ]] ;;
  esac
}

main "$@"
