#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Pod <-> pod on the same node and across nodes (ICMP, TCP, UDP, 1 MiB by hash), host <-> pod,
# pod -> node; cross-node packets are VXLAN on the underlay, pushed and stripped in BPF, and a
# node still on the device path interoperates (SLUICE_MODE=native: plain IP between the pods'
# addresses, no VXLAN at all); same-node and cross-node packets never reach
# the host's forwarding path; nodes file changes converge within 1 s; down leaves nothing behind.
# In a dual-stack cluster (the default) all of it over IPv6 too: the IPv4 tunnel carrying it, or
# in native mode plain IPv6 on the underlay.
source "$(dirname "$0")/lib.sh"

e2e_up --nodes 3 --pods-per-node 2

# The mode the agents run, as the inspection CLI reports it, and what it implies on the node.
status_json() { agent_cli status "$1" -o json; }
status_field() {  # status_field <node> <python expression over d>
  status_json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
check "node-1 status reports mode $SLUICE_MODE" test "$(status_field 1 'd["config"]["mode"]')" = "$SLUICE_MODE"
pod_mtu() { ip -n "$(pns "$1" "$2")" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
if native_mode; then
  check "native: pod MTU is the underlay's, no encapsulation overhead ($(pod_mtu 1 1))" test "$(pod_mtu 1 1)" = 1500
  check "native: no sluice_vxlan on any node" bash -c "! ip -n $(nns 1) link show sluice_vxlan 2>/dev/null && ! ip -n $(nns 2) link show sluice_vxlan 2>/dev/null"
  check "native: status shows sl_from_native/sl_to_native attached to the underlay eth0" test \
    "$(status_field 1 '"%s %s %s" % (d["config"]["underlay"], d["underlayAttached"]["ingress"], d["underlayAttached"]["egress"])')" \
    = "eth0 $(pinned_id 1 sl_from_native) $(pinned_id 1 sl_to_native)"
  check "native: remote pod CIDRs routed via the node addresses on the underlay" \
    bash -c "ip -n $(nns 1) route show 10.244.3.0/24 | grep -q 'via 198.18.0.3 dev eth0'"
else
  check "vxlan: pod MTU is the underlay's minus 50 ($(pod_mtu 1 1))" test "$(pod_mtu 1 1)" = 1450
  check "vxlan: status shows sl_from_tunnel attached to the underlay eth0's ingress" test \
    "$(status_field 1 '"%s %s" % (d["config"]["underlay"], d["underlayAttached"]["ingress"])')" \
    = "eth0 $(pinned_id 1 sl_from_tunnel)"
fi

check "connectivity matrix (ICMP every pair, TCP 1 MiB by sha256)" bash "$CLUSTER" check

udp_echo() {  # udp_echo <from-ns> <to-ns> <to-ip> (IPv4 or IPv6)
  local port=$((30000 + RANDOM % 10000)) out recv=UDP-RECV send
  send="UDP-SENDTO:$3:$port"
  [[ $3 == *:* ]] && { recv=UDP6-RECV; send="UDP6-SENDTO:[$3]:$port"; }
  ip netns exec "$2" timeout 5 socat -u "$recv:$port" "SYSTEM:cat >$CROOT/udp.$port" &
  local l=$!
  sleep 0.3
  ip netns exec "$1" socat -u - "$send" <<<"sluice-udp-$port"
  sleep 0.3
  kill "$l" 2>/dev/null || true
  wait "$l" 2>/dev/null || true
  out=$(cat "$CROOT/udp.$port" 2>/dev/null || true)
  [[ $out == "sluice-udp-$port" ]]
}
check "UDP same node" udp_echo "$(pns 1 1)" "$(pns 1 2)" "$(pod_ip 1 2)"
check "UDP across nodes" udp_echo "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip 2 1)"

check "host -> pod on the same node" ping_ok "$(nns 1)" "$(pod_ip 1 1)"
if native_mode; then
  check "host -> pod on another node (stack -> underlay route -> from_native)" ping_ok "$(nns 1)" "$(pod_ip 3 2)"
else
  check "host -> pod on another node (stack -> sluice_vxlan -> to_overlay)" ping_ok "$(nns 1)" "$(pod_ip 3 2)"
fi
check "pod -> its own node" ping_ok "$(pns 2 1)" "$(node_ip 2)"
check "pod -> another node" ping_ok "$(pns 2 1)" "$(node_ip 3)"
# Bring-up and everything above are traffic the datapath should carry or hand on: not one drop,
# including the MLD reports the stack sends on sluice_vxlan (link_scope, a verdict of their own).
for n in 1 2 3; do
  dropped=$(drops "$n")
  check "node-$n dropped nothing so far (${SLUICE_MODE} mode; link_scope $(counter "$n" link_scope)) $dropped" \
    test -z "$dropped"
done

# Cross-node packets travel as VXLAN (UDP 8472) on the underlay, carrying the pod addresses.
vxlan_seen() {
  local cap=$CROOT/vxlan.pcap
  ip netns exec "$SLUICE_CLUSTER_PREFIX-ul" timeout 5 tcpdump -i br0 -n -c 4 -w "$cap" udp port 8472 2>/dev/null &
  local t=$!
  sleep 0.5
  ping_ok "$(pns 1 1)" "$(pod_ip 2 2)" 4
  wait "$t" 2>/dev/null || true
  # tcpdump decodes 8472 as OTV unless told; the inner packet is printed on the next line.
  tcpdump -T vxlan -n -r "$cap" 2>/dev/null | tee /dev/stderr | tr '\n' ' ' |
    grep -q "VXLAN.*$(pod_ip 1 1) > $(pod_ip 2 2)"
}
# Native routing: the same pings are plain IP (IPv6: plain IPv6) between the pods' addresses on
# the underlay, and not one packet is VXLAN. The capture takes both (pod pair or UDP 8472) and
# stops at 8 packets (4 requests, 4 replies): any VXLAN among them fails the check.
native_seen() {  # native_seen <pod-1-1's address> <pod-2-2's address>, of one family
  local cap=$CROOT/native.pcap a=$1 b=$2
  ip netns exec "$SLUICE_CLUSTER_PREFIX-ul" timeout 5 tcpdump -i br0 -n -c 8 -w "$cap" \
    "(host $a and host $b) or udp port 8472" 2>/dev/null &
  local t=$!
  sleep 0.5
  ping_ok "$(pns 1 1)" "$b" 4
  wait "$t" 2>/dev/null || true
  tcpdump -n -r "$cap" 2>/dev/null | tee /dev/stderr | python3 -c '
import re, sys
a, b = sys.argv[1], sys.argv[2]
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
plain = [l for l in lines if re.search(r"IP6? (%s > %s|%s > %s): ICMP6?,? echo (request|reply)" % (a, b, b, a), l)]
sys.exit(0 if len(lines) == 8 and len(plain) == 8 else 1)' "$a" "$b"
}
# bpf_redirect_neigh resolves the next node's address itself: with node-1's neighbour cache
# emptied, the very first packet to a pod on node-3 still gets there (queued until ARP or
# neighbour discovery answers).
first_packet_after_flush() {  # first_packet_after_flush <node-3's address> <pod-3-2's address>
  ip -n "$(nns 1)" neigh flush dev eth0
  ! ip -n "$(nns 1)" neigh show dev eth0 "$1" | grep -q . || return 1
  ip netns exec "$(pns 1 2)" ping -c 1 -W 2 -q "$2" >/dev/null 2>&1
}
if native_mode; then
  check "native: cross-node pod traffic is plain IP pod -> pod on the underlay, no VXLAN (8 of 8 captured)" \
    native_seen "$(pod_ip 1 1)" "$(pod_ip 2 2)"
  check "native: a single ping to node-3's pod gets through right after node-1's neighbour cache is flushed" \
    first_packet_after_flush "$(node_ip 3)" "$(pod_ip 3 2)"
else
  check "cross-node pod traffic is VXLAN on the underlay" vxlan_seen
fi

# Same-node and cross-node pod traffic skips the host's forwarding path: an nftables counter
# in node-1's FORWARD hook stays at zero while the redirect counter rises. Pod -> outside
# world does go through the stack, which proves the counter counts.
ip netns exec "$(nns 1)" nft -f - <<'NFT'
table inet sluice_e2e {
  counter slfwd {}
  chain forward { type filter hook forward priority -500; policy accept; counter name slfwd; }
}
NFT
fwd_packets() { ip netns exec "$(nns 1)" nft -j list counter inet sluice_e2e slfwd | python3 -c 'import json,sys
for o in json.load(sys.stdin)["nftables"]:
    if "counter" in o: print(o["counter"]["packets"])'; }
# Cross-node: VXLAN pushed by from_pod and stripped by from_tunnel at the underlay's ingress
# (vxlan: encap_direct out, decap_direct in), or native out, native_in in, on both nodes.
if native_mode; then out_c=native in_c=native_in; else out_c=encap_direct in_c=decap_direct; fi
r0=$(counter 1 redirect_local)
e0=$(counter 1 "$out_c")
i0=$(counter 1 "$in_c")
o3=$(counter 3 "$out_c")
n3=$(counter 3 "$in_c")
ping_ok "$(pns 1 1)" "$(pod_ip 1 2)" 10
ping_ok "$(pns 1 1)" "$(pod_ip 3 1)" 10
r1=$(counter 1 redirect_local)
e1=$(counter 1 "$out_c")
i1=$(counter 1 "$in_c")
o4=$(counter 3 "$out_c")
n4=$(counter 3 "$in_c")
f1=$(fwd_packets)
check "same-node pings counted as redirect_local ($r0 -> $r1)" test $((r1 - r0)) -ge 20
check "cross-node pings counted as $out_c on node-1 ($e0 -> $e1) and $in_c on node-3 ($n3 -> $n4)" \
  test $((e1 - e0)) -ge 10 -a $((n4 - n3)) -ge 10
check "their replies counted as $out_c on node-3 ($o3 -> $o4) and $in_c on node-1 ($i0 -> $i1)" \
  test $((o4 - o3)) -ge 10 -a $((i1 - i0)) -ge 10
check "host FORWARD saw none of them ($f1 packets)" test "$f1" -eq 0
ip netns exec "$(pns 1 1)" ping -c 2 -W 1 -q 198.18.0.254 >/dev/null 2>&1 || true
f2=$(fwd_packets)
check "control: pod -> outside goes through the host stack ($f2 packets)" test "$f2" -gt 0

# IPv6 (dual stack): the matrix above pinged and moved 1 MiB by TCP between every pair over IPv6
# too; here the node's own IPv6 address, host <-> pod, UDP, what carries IPv6 between nodes (the
# IPv4 tunnel, or in native mode the underlay's IPv6 itself), and the fast paths counting it.
if ipv6_cluster; then
  if native_mode; then
    check "native: node-1 routes node-2's IPv6 pod CIDR via node-2's IPv6 address on the underlay" \
      bash -c "ip -n $(nns 1) -6 route show fd00:10:244:2::/64 | grep -q 'via $(underlay_ip6 2) dev eth0'"
    next_hop6() {  # next_hop6 <node> <pod CIDR>: sl_routes' IPv6 next hop for it, per the CLI
      agent_cli routes "$1" -o json | python3 -c 'import json,sys
print(*[e.get("nodeIP6", "") for e in json.load(sys.stdin)["routes"] if e["podCIDR"] == sys.argv[1]])' "$2"
    }
    check "native: sl_routes gives node-2's IPv6 pod CIDR node-2's IPv6 address as next hop" \
      test "$(next_hop6 1 fd00:10:244:2::/64)" = "$(underlay_ip6 2)"
    check "host -> pod on another node over IPv6 (stack -> underlay route via its IPv6 address -> from_native)" \
      ping_ok "$(nns 1)" "$(pod_ip6 3 2)"
  else
    check "node-1's IPv6 address is the first of its IPv6 pod CIDR, on sluice_vxlan" \
      bash -c "ip -n $(nns 1) -6 addr show dev sluice_vxlan scope global | grep -q 'inet6 $(node_ip6 1)/128'"
    check "node-1 routes node-2's IPv6 pod CIDR through sluice_vxlan from its own IPv6 address" \
      bash -c "ip -n $(nns 1) -6 route show fd00:10:244:2::/64 | grep -q 'dev sluice_vxlan .*src $(node_ip6 1)'"
    check "host -> pod on another node over IPv6 (stack -> sluice_vxlan -> to_overlay)" ping_ok "$(nns 1)" "$(pod_ip6 3 2)"
  fi
  check "host -> pod on the same node over IPv6" ping_ok "$(nns 1)" "$(pod_ip6 1 1)"
  check "pod -> its own node over IPv6" ping_ok "$(pns 2 1)" "$(node_ip6 2)"
  check "pod -> another node over IPv6" ping_ok "$(pns 2 1)" "$(node_ip6 3)"
  check "UDP over IPv6 same node" udp_echo "$(pns 1 1)" "$(pns 1 2)" "$(pod_ip6 1 2)"
  check "UDP over IPv6 across nodes" udp_echo "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip6 2 1)"
  vxlan6_seen() {  # IPv6 pod packets inside IPv4 VXLAN between the node addresses
    local cap=$CROOT/vxlan6.pcap
    ip netns exec "$SLUICE_CLUSTER_PREFIX-ul" timeout 5 tcpdump -i br0 -n -c 4 -w "$cap" udp port 8472 2>/dev/null &
    local t=$!
    sleep 0.5
    ping_ok "$(pns 1 1)" "$(pod_ip6 2 2)" 4
    wait "$t" 2>/dev/null || true
    tcpdump -T vxlan -n -r "$cap" 2>/dev/null | tee /dev/stderr | tr '\n' ' ' |
      grep -q "IP $(node_ip 1)\.[0-9]* > $(node_ip 2)\.8472: VXLAN.*IP6 $(pod_ip6 1 1) > $(pod_ip6 2 2)"
  }
  if native_mode; then
    check "native: cross-node IPv6 pod traffic is plain IPv6 pod -> pod on the underlay, no VXLAN (8 of 8 captured)" \
      native_seen "$(pod_ip6 1 1)" "$(pod_ip6 2 2)"
    check "native: a single ping6 to node-3's pod gets through right after node-1's neighbour cache is flushed" \
      first_packet_after_flush "$(underlay_ip6 3)" "$(pod_ip6 3 2)"
  else
    check "cross-node IPv6 pod traffic is VXLAN in IPv4 on the underlay" vxlan6_seen
  fi
  r0=$(counter 1 redirect_local)
  e0=$(counter 1 "$out_c")
  d0=$(counter 2 "$in_c")
  ping_ok "$(pns 1 1)" "$(pod_ip6 1 2)" 10
  ping_ok "$(pns 1 1)" "$(pod_ip6 2 1)" 10
  r1=$(counter 1 redirect_local)
  e1=$(counter 1 "$out_c")
  d1=$(counter 2 "$in_c")
  check "same-node IPv6 pings counted as redirect_local ($r0 -> $r1)" test $((r1 - r0)) -ge 20
  check "cross-node IPv6 pings counted as $out_c on node-1 ($e0 -> $e1) and $in_c on node-2 ($d0 -> $d1)" \
    test $((e1 - e0)) -ge 10 -a $((d1 - d0)) -ge 10
fi

# A rolling upgrade: a node of a build before VXLAN in BPF (sluice_vxlan both ways) and one
# with it reach each other, the wire format being the same. node-1 plays the old one: with no
# node address in its sl_config, its from_pod and from_tunnel leave everything to sluice_vxlan.
# The device path sets a UDP checksum, so node-3's from_tunnel leaves those packets to the
# kernel too; node-3's BPF-built packets are decapsulated by node-1's kernel.
if ! native_mode; then
  set_node_ip4() {  # set_node_ip4 <node> <address>: sl_config[0].node_ip4, at offset 8
    local pin value
    pin=$(bpf_root "$1")/sl_config
    value=$(bpftool -j map lookup pinned "$pin" key 0 0 0 0 | python3 -c '
import ipaddress, json, sys
v = [int(b, 16) for b in json.load(sys.stdin)["value"]]
v[8:12] = ipaddress.IPv4Address(sys.argv[1]).packed
print(" ".join(str(b) for b in v))' "$2")
    # shellcheck disable=SC2086 # one argument per byte
    bpftool map update pinned "$pin" key 0 0 0 0 value $value
  }
  paths() {  # the device path's and the BPF path's counters of node-1 and node-3
    local n c
    for n in 1 3; do for c in encap decap encap_direct decap_direct; do printf '%s ' "$(counter "$n" "$c")"; done; done
  }
  set_node_ip4 1 0.0.0.0
  read -r -a p0 <<<"$(paths)"
  check "mixed versions: node-1 (device path) and node-3 (BPF) ping each other's pods" \
    ping_ok "$(pns 1 1)" "$(pod_ip 3 1)" 10
  read -r -a p1 <<<"$(paths)"
  set_node_ip4 1 "$(node_ip 1)"
  d=()
  for i in "${!p0[@]}"; do d+=($((p1[i] - p0[i]))); done
  check "mixed versions: node-1 sent through sluice_vxlan (encap +${d[0]}, encap_direct +${d[2]}) and took node-3's BPF-built replies through it (decap +${d[1]}, decap_direct +${d[3]})" \
    test "${d[0]}" -ge 10 -a "${d[2]}" -eq 0 -a "${d[1]}" -ge 10 -a "${d[3]}" -eq 0
  check "mixed versions: node-3 left node-1's packets to its kernel (decap +${d[5]}, decap_direct +${d[7]}) and answered in BPF (encap_direct +${d[6]})" \
    test "${d[5]}" -ge 10 -a "${d[7]}" -eq 0 -a "${d[6]}" -ge 10
  e0=$(counter 1 encap_direct)
  ping_ok "$(pns 1 1)" "$(pod_ip 3 1)" 3
  check "node-1 with its address back encapsulates in BPF again ($e0 -> $(counter 1 encap_direct))" \
    test "$(counter 1 encap_direct)" -ge $((e0 + 3))
fi

# Nodes file: a node removed is unrouted within 1 s, added back is reachable within 1 s. (vxlan
# mode: its address leaves and rejoins table 83 too, where the stack finds it for shaped pods.)
in_table83() { ip -n "$(nns 1)" route show table 83 2>/dev/null | grep -q "^$(node_ip 3) dev sluice_vxlan"; }
native_mode || check "vxlan: node-3's address is in node-1's table 83" in_table83
nodes_json=$CROOT/nodes.json
cp "$nodes_json" "$CROOT/nodes.full.json"
python3 - "$nodes_json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["nodes"] = [n for n in d["nodes"] if n["name"] != "node-3"]
json.dump(d, open(p + ".tmp", "w"))
PY
mv "$nodes_json.tmp" "$nodes_json"
unrouted() {
  ! ip -n "$(nns 1)" route show 10.244.3.0/24 | grep -q . &&
    ! ip -n "$(nns 1)" -6 route show fd00:10:244:3::/64 | grep -q . &&
    ! agent_cli routes 1 -o json | grep -qE '10.244.3.0/24|fd00:10:244:3::/64' &&
    ! in_table83
}
check "node removed from the nodes file is unrouted within 1 s" within 1000 unrouted
check "... and its pods are unreachable" bash -c "! ip netns exec $(pns 1 1) ping -c 1 -W 1 -q $(pod_ip 3 1) >/dev/null 2>&1"
cp "$CROOT/nodes.full.json" "$nodes_json.tmp"
mv "$nodes_json.tmp" "$nodes_json"
reachable() { ip netns exec "$(pns 1 1)" ping -c 1 -W 0.2 -q "$(pod_ip 3 1)" >/dev/null 2>&1; }
check "node added back is reachable within 1 s" within 1000 reachable
native_mode || check "... and back in node-1's table 83" within 1000 in_table83

# down leaves no netns, mount, pin, process or state behind.
bash "$CLUSTER" down >/dev/null 2>&1
check "down: no namespace left" bash -c "! ip netns list | grep -q '^$SLUICE_CLUSTER_PREFIX-'"
check "down: no mount left" bash -c "! grep -q '$CROOT' /proc/self/mounts"
check "down: no agent process left" bash -c "! pgrep -f -- '[-]-nodes-file $CROOT/' >/dev/null"
check "down: no state left" test ! -e "$CROOT"

e2e_done
