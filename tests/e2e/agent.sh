#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent as an operator sees it: /healthz and /metrics, the conflist it writes, the
# inspection CLI, and its endpoint GC (a pod whose host veth vanished without a DEL loses its
# map entries, record and address).
source "$(dirname "$0")/lib.sh"

e2e_up --nodes 2 --pods-per-node 2

http() {  # http <node> <path>: prints "<status>\n<body>"
  ip netns exec "$(nns "$1")" python3 - "$2" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen("http://127.0.0.1:9962" + sys.argv[1], timeout=5) as r:
        print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
PY
}
metric() {  # metric <node> <exact series name, labels included>: prints its value
  http "$1" /metrics | awk -v s="$2" '$1 == s {print $2; found=1} END {exit !found}'
}

# Health and metrics.
check "node-1 /healthz is 200 once ready" test "$(http 1 /healthz | head -n 1)" = 200
check "/metrics: sluice_ready 1" test "$(metric 1 sluice_ready)" = 1
check "/metrics: sluice_nodes 2" test "$(metric 1 sluice_nodes)" = 2
fams=$(pod_families)  # dual stack: an address (sl_endpoints entry) and a pod CIDR per family
check "/metrics: sluice_endpoints $((2 * fams)) (2 pods, $fams address(es) each)" test "$(metric 1 sluice_endpoints)" = $((2 * fams))
check "/metrics: sluice_routes $fams (the other node's pod CIDR(s))" test "$(metric 1 sluice_routes)" = "$fams"
check "/metrics: sl_endpoints holds $((2 * fams)) entries" test "$(metric 1 'sluice_map_entries{map="sl_endpoints"}')" = $((2 * fams))
check "/metrics: ... of its 65536" test "$(metric 1 'sluice_map_max_entries{map="sl_endpoints"}')" = 65536
check "/metrics: no reconcile errors" test "$(metric 1 sluice_reconcile_errors_total)" = 0
ping_ok "$(pns 1 1)" "$(pod_ip 1 2)" 3
check "/metrics: per-verdict packets (redirect_local counted)" \
  test "$(metric 1 'sluice_datapath_packets_total{verdict="redirect_local"}')" -ge 3
has_metric() { metric "$@" >/dev/null; }
check "/metrics: per-reason drops exported" has_metric 1 'sluice_datapath_drops_total{reason="spoofed_src"}'
check "/metrics: build info" eval "http 1 /metrics | grep -q '^sluice_build_info{version=\"'"
every_family_typed() {
  local body f
  body=$(http 1 /metrics | tail -n +2)
  for f in $(grep -v '^#' <<<"$body" | sed 's/[{ ].*//' | sort -u); do
    grep -q "^# TYPE $f " <<<"$body" || { echo "no TYPE for $f" >&2; return 1; }
  done
}
check "/metrics is Prometheus text (HELP/TYPE for every family)" every_family_typed
check "/metrics listens on the node's loopback only" bash -c "! ip netns exec $(nns 1) ss -Hltn | awk '{print \$4}' | grep -q '^0.0.0.0:9962\$\|^\*:9962\$'"

# The conflist the agent wrote.
conflist=$CROOT/n2/net.d/10-sluice.conflist
check "conflist is mode 0644" test "$(stat -c %a "$conflist")" = 644
# the MTU: the underlay's 1500 minus the VXLAN overhead, or all of it in native mode
want_mtu=1450
native_mode && want_mtu=1500
check "conflist carries this node's pod CIDR(s), the MTU ($want_mtu) and the paths" python3 - "$conflist" "$CROOT/n2" "$want_mtu" "$fams" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); root = sys.argv[2]
p = c["plugins"][0]
assert c["cniVersion"] == "1.0.0" and c["name"] == "sluice" and p["type"] == "sluice", c
assert c["cniVersions"] == ["1.0.0", "1.1.0"], c  # sluice alone: CNI 1.1 for runtimes that read it
ranges = [[{"subnet": "10.244.2.0/24"}], [{"subnet": "fd00:10:244:2::/64"}]][:int(sys.argv[4])]
assert p["ipam"] == {"type": "sluice-ipam", "ranges": ranges}, p["ipam"]
assert p["mtu"] == int(sys.argv[3]), p["mtu"]
assert p["bpfRoot"] == root + "/bpf/sluice" and p["stateDir"] == root + "/state", p
PY

# The inspection CLI, human and JSON.
check "CLI endpoints -o json lists both pods with their names, an entry per address" python3 -c '
import json, subprocess, sys
d = json.loads(sys.stdin.read())["endpoints"]
names = sorted(e.get("podName", "") for e in d)
assert names == sorted(["pod-1-1", "pod-1-2"] * int(sys.argv[1])), d' "$fams" <<<"$(agent_cli endpoints 1 -o json)"
routes_has_node2() { local out; out=$(agent_cli routes 1 -o json); grep -q 10.244.2.0/24 <<<"$out" && grep -q 198.18.0.2 <<<"$out"; }
check "CLI routes -o json has the other node's CIDR via its address" routes_has_node2
check "CLI nodes -o json lists node-2's IPv6 InternalIP in a dual-stack cluster" python3 -c '
import json, sys
n = {e["name"]: e for e in json.loads(sys.stdin.read())["nodes"]}
assert n["node-2"].get("internalIP6") == (sys.argv[1] if sys.argv[1] else None), n' \
  "$(ipv6_cluster && underlay_ip6 2)" <<<"$(agent_cli nodes 1 -o json)"
check "CLI status (table) names the node" eval 'agent_cli status 1 | grep -q node-1'

# Native routing carries IPv6 between nodes via their IPv6 addresses: a node listed without one
# keeps its IPv4 routes, but its IPv6 pod CIDR gets no route at all, counted and logged.
check "/metrics: sluice_unroutable_pod_cidrs 0" test "$(metric 1 sluice_unroutable_pod_cidrs)" = 0
if native_mode && ipv6_cluster; then
  cp "$CROOT/nodes.json" "$CROOT/nodes.full.json"
  python3 - "$CROOT/nodes.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for n in d["nodes"]:
    if n["name"] == "node-2":
        del n["internalIP6"]
json.dump(d, open(sys.argv[1] + ".tmp", "w"))
PY
  mv "$CROOT/nodes.json.tmp" "$CROOT/nodes.json"
  v6_unrouted() {
    [[ $(metric 1 sluice_unroutable_pod_cidrs) == 1 ]] &&
      ! ip -n "$(nns 1)" -6 route show fd00:10:244:2::/64 | grep -q . &&
      ! agent_cli routes 1 -o json | grep -q fd00:10:244:2::/64
  }
  check "native: node-2 without an IPv6 InternalIP: no route to its IPv6 pod CIDR, sluice_unroutable_pod_cidrs 1" \
    within 10000 v6_unrouted
  check "... its IPv4 pod CIDR still routed and reachable" ping_ok "$(pns 1 1)" "$(pod_ip 2 1)"
  check "... the agent's log says why" grep -q \
    "IPv6 pod CIDR fd00:10:244:2::/64 of node node-2 is not routable in native mode: node node-2 has no IPv6 InternalIP" \
    "$CROOT/n1/state/agent.log"
  check "... no reconcile error for it" test "$(metric 1 sluice_reconcile_errors_total)" = 0
  cp "$CROOT/nodes.full.json" "$CROOT/nodes.json.tmp"
  mv "$CROOT/nodes.json.tmp" "$CROOT/nodes.json"
  v6_rerouted() {
    [[ $(metric 1 sluice_unroutable_pod_cidrs) == 0 ]] && ping_ok "$(pns 1 1)" "$(pod_ip6 2 1)"
  }
  check "... its IPv6 address back in the nodes file: routed again" within 10000 v6_rerouted
fi
check "CLI counters (table)" eval "agent_cli counters 1 | grep -q '^redirect_local'"

# Endpoint GC: the host veth of pod-1-2 disappears without a DEL (as when a runtime crashes
# and the netns is torn down): the agent removes its map entry, record and address.
ip2=$(pod_ip 1 2)
ip2v6=$(pod_ip6 1 2)
veth=$(agent_cli endpoints 1 -o json | python3 -c 'import json,sys; print(next(e["hostVeth"] for e in json.load(sys.stdin)["endpoints"] if e["ip"] == sys.argv[1]))' "$ip2")
ip netns exec "$(nns 1)" ip link del "$veth"
gone() {
  ! agent_cli endpoints 1 -o json | grep -q "\"$ip2\"" &&
    [[ ! -e $CROOT/n1/state/endpoints/$veth.json ]] &&
    [[ ! -e $CROOT/n1/state/ipam/sluice/$ip2 ]] &&
    { [[ -z $ip2v6 ]] || { ! agent_cli endpoints 1 -o json | grep -q "\"$ip2v6\"" &&
      [[ ! -e $CROOT/n1/state/ipam/sluice/$ip2v6 ]]; }; }
}
check "agent GC removed the dead endpoint's entry, record and address" within 10000 gone
check "/metrics counts it (sluice_gc_removed_total)" test "$(metric 1 sluice_gc_removed_total)" -ge 1
check "/metrics counts the address (sluice_gc_released_addresses_total)" test "$(metric 1 sluice_gc_released_addresses_total)" -ge 1
check "the live pod is untouched" ping_ok "$(pns 1 1)" "$(pod_ip 2 1)" 2

e2e_done
