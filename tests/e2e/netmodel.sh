#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Kubernetes network model on Sluice, Services aside (those are services.sh's), with strict
# rp_filter on every node:
#  - pods reach the outside world masqueraded to their node's address; pod <-> pod and
#    pod <-> node traffic (either way, same node or not) keeps the pod's address; the
#    masquerade rule is the agent's, one rule however often the agent restarts;
#  - NodePort-style DNAT (kube-proxy's rules, iptables-nft) reaches pods on the node and on
#    another node; host-network servers and clients reach pods and are reached by them;
#  - MTU: pods get the underlay MTU minus the VXLAN overhead (1500 and 9000 underlays; in native
#    mode the underlay MTU itself), large TCP transfers and large UDP datagrams cross nodes, and
#    a pod whose MTU is set too high gets ICMP "fragmentation needed" (ping -M do sees it, the
#    pod's PMTU cache learns it);
#  - the reference portmap and bandwidth plugins chained after sluice: hostPort reaches the pod,
#    a 10 Mbit/s limit holds iperf3 well below what an unlimited pod gets, CHECK and DEL
#    through the whole chain;
#  - a pod shaped by bandwidth (its traffic goes through the stack, not from_pod's fast path)
#    reaches the other nodes' own addresses and is reached by them under strict rp_filter: the
#    agent marks what the stack forwards from local pods to nodes (but replies in flows it
#    DNATed: NodePort, hostPort) and routes it through sluice_vxlan, the way the other direction
#    comes (vxlan mode);
#  - IPv6 (dual stack): pods reach the outside world over IPv6 masqueraded to their node's
#    underlay IPv6 address (nft table ip6 sluice), pod <-> pod and pod <-> node keep the pod's
#    IPv6 address, a 65000-byte UDP datagram crosses nodes in IPv6 fragments, "packet too big"
#    for an IPv6 pod whose MTU is set too high;
#  - sluice-agent uninstall removes the conflist, the masquerade tables, sluice_vxlan (native
#    mode: the underlay's programs), the routes and the pins.
# SLUICE_MODE=native runs it all in native-routing mode, with each mode's numbers and devices
# (IPv6 between nodes routed over the underlay's IPv6 addresses).
source "$(dirname "$0")/lib.sh"

EXT_NS=$SLUICE_CLUSTER_PREFIX-ext
EXT_IP=198.18.0.254

# serve <ns> <port> <name>: answers every TCP connection with "<name> <peer address>".
serve() {
  ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
while True:
    c, a = s.accept()
    try:
        c.sendall(("%s %s\n" % (sys.argv[2], a[0])).encode())
    except OSError:
        pass
    c.close()' "$2" "$3" &
  E2E_BG_PIDS+=($!)
}

# ask <ns> <ip> <port>: prints the answer of the server there, or nothing within 5 s.
ask() {
  ip netns exec "$1" python3 -c '
import socket, sys, time
end = time.time() + 5
while True:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        print(s.makefile().readline().strip())
        break
    except OSError:
        if time.time() > end:
            break
        time.sleep(0.1)' "$2" "$3" 2>/dev/null || true
}

# answer_is <expected> <ns> <ip> <port>
answer_is() {
  local got
  got=$(ask "$2" "$3" "$4")
  [[ $got == "$1" ]] || { echo "  expected '$1', got '$got'" >&2; return 1; }
}

# tcp_big <from-ns> <to-ns> <to-ip> <MiB>: that much random data over one TCP connection,
# compared by sha256 on arrival.
tcp_big() {
  local port=$((20000 + RANDOM % 20000)) d listen=TCP-LISTEN connect
  connect="TCP:$3:$port"
  [[ $3 == *:* ]] && { listen=TCP6-LISTEN; connect="TCP6:[$3]:$port"; }
  d=$(mktemp -d "$CROOT/tcp.XXXX")
  head -c "$(($4 * 1048576))" /dev/urandom >"$d/data"
  ip netns exec "$2" timeout 30 socat -u "$listen:$port,reuseaddr" "OPEN:$d/recv,creat,trunc" &
  local l=$! ok=1
  for _ in $(seq 50); do
    ip netns exec "$1" timeout 30 socat -u "OPEN:$d/data" "$connect,connect-timeout=1" 2>/dev/null && { ok=0; break; }
    sleep 0.1
  done
  wait "$l" 2>/dev/null || ok=1
  ((ok == 0)) && [[ $(sha256sum <"$d/data") == "$(sha256sum <"$d/recv")" ]] || ok=1
  rm -rf "$d"
  return "$ok"
}

# udp_big <from-ns> <to-ns> <to-ip> <bytes>: one datagram of that size (fragmented by the
# sender's stack as needed) arrives whole, checked by length and sha256.
udp_big() {
  local port=$((30000 + RANDOM % 10000)) out=$CROOT/udp.$RANDOM fam=4
  [[ $3 == *:* ]] && fam=6
  ip netns exec "$2" timeout 10 python3 -c '
import hashlib, socket, sys
v6 = sys.argv[3] == "6"
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("::" if v6 else "0.0.0.0", int(sys.argv[1])))
b = s.recv(65535)
open(sys.argv[2], "w").write("%d %s" % (len(b), hashlib.sha256(b).hexdigest()))' "$port" "$out" "$fam" &
  local l=$!
  sleep 0.3
  local want
  want=$(ip netns exec "$1" python3 -c '
import hashlib, os, socket, sys, time
b = os.urandom(int(sys.argv[3]))
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):  # the receiver keeps the first that arrives whole
    s.sendto(b, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.2)
print("%d %s" % (len(b), hashlib.sha256(b).hexdigest()))' "$3" "$port" "$4")
  wait "$l" 2>/dev/null || true
  local got
  got=$(cat "$out" 2>/dev/null || true)
  rm -f "$out"
  [[ -n $got && $got == "$want" ]] || { echo "  sent '$want', received '$got'" >&2; return 1; }
}

# host_veth <node> <node-pod-index>: the host side of that pod's eth0.
host_veth() {
  local idx
  idx=$(ip -n "$(pns "$1" "$2")" -o link show eth0 | sed -n 's/^[0-9]*: eth0@if\([0-9]*\):.*/\1/p')
  ip -n "$(nns "$1")" -o link | awk -F': ' -v i="$idx" '$1 == i {sub(/@.*/, "", $2); print $2}'
}

pod_mtu() { ip -n "$(pns "$1" "$2")" -o link show eth0 | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
conflist_mtu() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"][0]["mtu"])' "$CROOT/n$1/net.d/10-sluice.conflist"; }
vxlan_mtu() { ip -n "$(nns "$1")" -o link show sluice_vxlan | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }

# frag_needed <node> <pod> <dst-ip> <too-high-mtu> <path-mtu>: the pod's eth0 (and its host
# veth) set above what the overlay carries; a DF ping of that size must come back as "frag
# needed" (from the node) or "message too long" (the pod already learnt the PMTU), and the
# pod's route cache must hold the path MTU. The MTU and the cache are restored afterwards.
frag_needed() {
  local pod veth out rc=0
  pod=$(pns "$1" "$2")
  veth=$(host_veth "$1" "$2")
  ip -n "$(nns "$1")" link set "$veth" mtu "$4"
  ip -n "$pod" link set eth0 mtu "$4"
  out=$(ip netns exec "$pod" ping -M "do" -s $(($4 - 28)) -c 3 -i 0.3 -W 1 "$3" 2>&1 || true)
  echo "$out" | grep -E 'Frag needed|message too long' | head -2 | sed 's/^/  /' >&2
  grep -qE "Frag needed and DF set \(mtu = $5\)|message too long, mtu=$5" <<<"$out" || rc=1
  local cache
  cache=$(ip -n "$pod" route get "$3" 2>&1)
  echo "  pod route cache: $(tr '\n' ' ' <<<"$cache")" >&2
  grep -q "mtu $5" <<<"$cache" || rc=1
  ip -n "$pod" link set eth0 mtu "$(conflist_mtu "$1")"
  ip -n "$(nns "$1")" link set "$veth" mtu "$(conflist_mtu "$1")"
  ip -n "$pod" route flush cache
  return "$rc"
}

# frag_needed6 <node> <pod> <dst-ip6> <too-high-mtu> <path-mtu>: frag_needed over IPv6: the
# node answers "packet too big" (from_pod hands what would not fit the overlay to the stack),
# or the pod already learnt the path MTU.
frag_needed6() {
  local pod veth out rc=0
  pod=$(pns "$1" "$2")
  veth=$(host_veth "$1" "$2")
  ip -n "$(nns "$1")" link set "$veth" mtu "$4"
  ip -n "$pod" link set eth0 mtu "$4"
  out=$(ip netns exec "$pod" ping -6 -M "do" -s $(($4 - 48)) -c 3 -i 0.3 -W 1 "$3" 2>&1 || true)
  echo "$out" | grep -iE 'too big|too long' | head -2 | sed 's/^/  /' >&2
  grep -qE "Packet too big: mtu=$5|message too long, mtu[=:] ?$5" <<<"$out" || rc=1
  local cache
  cache=$(ip -n "$pod" -6 route get "$3" 2>&1)
  echo "  pod route cache: $(tr '\n' ' ' <<<"$cache")" >&2
  grep -q "mtu $5" <<<"$cache" || rc=1
  ip -n "$pod" link set eth0 mtu "$(conflist_mtu "$1")"
  ip -n "$(nns "$1")" link set "$veth" mtu "$(conflist_mtu "$1")"
  ip -n "$pod" -6 route flush cache
  return "$rc"
}

# stop_agent <node>: SIGTERM to the node's agent, and its exit awaited (the datapath stays).
stop_agent() { bash "$CLUSTER" stop-agent "$1" >&2; }

rp_filter_strict() {
  local i
  for i in "$@"; do
    [[ $(ip netns exec "$(nns "$i")" sysctl -n net.ipv4.conf.all.rp_filter) == 1 ]] || return 1
  done
}

masq_rules() {  # masq_rules <node> [ip|ip6]: masquerade statements of that family in the node's ruleset
  ip netns exec "$(nns "$1")" nft -j list ruleset | python3 -c 'import json,sys
print(sum(1 for o in json.load(sys.stdin)["nftables"] if "rule" in o and o["rule"]["family"] == sys.argv[1]
          and any("masquerade" in e for e in o["rule"]["expr"])))' "${2:-ip}"
}

# serve6 <ns> <port> <name>: serve over IPv6 (the peer's IPv6 address in the answer).
serve6() {
  ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
while True:
    c, a = s.accept()
    try:
        c.sendall(("%s %s\n" % (sys.argv[2], a[0])).encode())
    except OSError:
        pass
    c.close()' "$2" "$3" &
  E2E_BG_PIDS+=($!)
}

# ---------------------------------------------------------------------------------------------
# A 1500-byte underlay, strict rp_filter, portmap and bandwidth chained.
e2e_up --nodes 3 --pods-per-node 2 --rp-filter strict --chain portmap,bandwidth

check "rp_filter is strict on every node (set before the agents, left alone by them)" rp_filter_strict 1 2 3
check "conflist: sluice, then portmap (portMappings) and bandwidth (bandwidth), at CNI 1.0.0 (Debian's plugins stop there)" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
p = c["plugins"]
assert [x["type"] for x in p] == ["sluice", "portmap", "bandwidth"], p
assert p[1]["capabilities"] == {"portMappings": True} and p[2]["capabilities"] == {"bandwidth": True}, p
assert c["cniVersion"] == "1.0.0" and "cniVersions" not in c, c' \
  "$CROOT/n1/net.d/10-sluice.conflist"

# Servers that tell who connected: the outside host, every node (host network), two pods.
serve "$EXT_NS" 7000 ext
for i in 1 2 3; do serve "$(nns "$i")" 7001 "node-$i"; done
serve "$(pns 1 2)" 7002 pod-1-2
serve "$(pns 2 1)" 7002 pod-2-1

echo "== outside world: masqueraded to the node's address"
check "pod-1-1 -> outside host: seen as node-1 (198.18.0.1)" answer_is "ext 198.18.0.1" "$(pns 1 1)" "$EXT_IP" 7000
check "pod-2-2 -> outside host: seen as node-2 (198.18.0.2)" answer_is "ext 198.18.0.2" "$(pns 2 2)" "$EXT_IP" 7000
check "pod-1-1 -> outside host: 4 MiB by sha256" tcp_big "$(pns 1 1)" "$EXT_NS" "$EXT_IP" 4

echo "== never masqueraded: pod <-> pod, pod <-> node"
check "pod-1-1 -> pod-1-2 (same node): peer is pod-1-1's IP" answer_is "pod-1-2 $(pod_ip 1 1)" "$(pns 1 1)" "$(pod_ip 1 2)" 7002
check "pod-1-1 -> pod-2-1 (other node): peer is pod-1-1's IP" answer_is "pod-2-1 $(pod_ip 1 1)" "$(pns 1 1)" "$(pod_ip 2 1)" 7002
check "pod-1-1 -> node-1 host network (own node): peer is pod-1-1's IP" answer_is "node-1 $(pod_ip 1 1)" "$(pns 1 1)" "$(node_ip 1)" 7001
check "pod-1-1 -> node-2 host network (other node): peer is pod-1-1's IP" answer_is "node-2 $(pod_ip 1 1)" "$(pns 1 1)" "$(node_ip 2)" 7001
check "pod-3-2 -> node-1 host network (other node): peer is pod-3-2's IP" answer_is "node-1 $(pod_ip 3 2)" "$(pns 3 2)" "$(node_ip 1)" 7001
check "node-1 host network -> pod-1-2 (same node): peer is node-1" answer_is "pod-1-2 $(node_ip 1)" "$(nns 1)" "$(pod_ip 1 2)" 7002
check "node-1 host network -> pod-2-1 (other node): peer is node-1" answer_is "pod-2-1 $(node_ip 1)" "$(nns 1)" "$(pod_ip 2 1)" 7002
check "node-3 host network -> pod-2-1 (other node): peer is node-3" answer_is "pod-2-1 $(node_ip 3)" "$(nns 3)" "$(pod_ip 2 1)" 7002

if ipv6_cluster; then
  echo "== IPv6 (dual stack): masqueraded leaving the cluster, never inside it"
  serve6 "$EXT_NS" 7010 ext
  serve6 "$(nns 1)" 7011 node-1
  serve6 "$(pns 2 1)" 7012 pod-2-1
  check "pod-1-1 -> outside host over IPv6: seen as node-1's underlay address (fd00:198:18::1)" \
    answer_is "ext fd00:198:18::1" "$(pns 1 1)" "$EXT_IP6" 7010
  check "pod-2-2 -> outside host over IPv6: 4 MiB by sha256" tcp_big "$(pns 2 2)" "$EXT_NS" "$EXT_IP6" 4
  check "pod-1-1 -> pod-2-1 over IPv6 (other node): peer is pod-1-1's IPv6" \
    answer_is "pod-2-1 $(pod_ip6 1 1)" "$(pns 1 1)" "$(pod_ip6 2 1)" 7012
  check "pod-3-1 -> node-1's IPv6 address (other node): peer is pod-3-1's IPv6" \
    answer_is "node-1 $(pod_ip6 3 1)" "$(pns 3 1)" "$(node_ip6 1)" 7011
  check "node-1 host network -> pod-2-1 over IPv6: peer is node-1's IPv6 address" \
    answer_is "pod-2-1 $(node_ip6 1)" "$(nns 1)" "$(pod_ip6 2 1)" 7012
  check "UDP 65000-byte datagram across nodes over IPv6 (fragments take the stack)" \
    udp_big "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip6 2 1)" 65000
  check "node-1: one IPv6 masquerade rule (nft table ip6 sluice)" test "$(masq_rules 1 ip6)" = 1
fi

# Each packet is encapsulated once: sluice_vxlan's egress program must recognise the key
# from_pod already set (read back, a transmit key shows no remote_ipv4), or it sets it again
# and, with flow-record NAT detection, records every cross-node flow as a stack flow. Native
# routing: each is redirected to the underlay once, and taken in once on the other side.
if native_mode; then
  e0=$(counter 2 native)
  n0=$(counter 1 native_in)
  ip netns exec "$(pns 2 1)" ping -c 10 -i 0.2 -W 1 -q "$(pod_ip 1 1)" >/dev/null
  e1=$(counter 2 native)
  n1=$(counter 1 native_in)
  check "10 cross-node pings from pod-2-1: sent natively once each ($e0 -> $e1), taken in once each on node-1 ($n0 -> $n1)" \
    test $((e1 - e0)) -eq 10 -a $((n1 - n0)) -eq 10
else
  e0=$(counter 2 encap_direct)
  k0=$(counter 2 encap)
  d0=$(counter 1 decap_direct)
  ip netns exec "$(pns 2 1)" ping -c 10 -i 0.2 -W 1 -q "$(pod_ip 1 1)" >/dev/null
  e1=$(counter 2 encap_direct)
  k1=$(counter 2 encap)
  d1=$(counter 1 decap_direct)
  check "10 cross-node pings from pod-2-1: encapsulated in BPF once each ($e0 -> $e1), none by the device ($k0 -> $k1), decapsulated once each on node-1 ($d0 -> $d1)" \
    test $((e1 - e0)) -eq 10 -a $((k1 - k0)) -eq 0 -a $((d1 - d0)) -eq 10
fi

echo "== the masquerade rule is the agent's, once"
check "node-1: one masquerade rule (nft table ip sluice)" test "$(masq_rules 1)" = 1
check "node-1: every node's address is exempt" bash -c "ip netns exec $(nns 1) nft list set ip sluice nodes | tr -d ' \t\n' | grep -q 'elements={198.18.0.1,198.18.0.2,198.18.0.3}'"
check "agent on node-1 restarted" bash "$CLUSTER" restart-agent 1
check "node-1 after the restart: still one masquerade rule" test "$(masq_rules 1)" = 1
check "... and pods still leave masqueraded" answer_is "ext 198.18.0.1" "$(pns 1 2)" "$EXT_IP" 7000
ip netns exec "$(nns 2)" nft delete table ip sluice
one_masq_rule() { [[ $(masq_rules 2) == 1 ]]; }
check "node-2: a deleted masquerade table is put back by the running agent" within 20000 one_masq_rule

echo "== NodePort (kube-proxy-style DNAT + masquerade, iptables-nft)"
# Like kube-proxy: KUBE-NODEPORTS for local destinations, KUBE-MARK-MASQ, then DNAT to the
# endpoint; KUBE-POSTROUTING masquerades what was marked.
nodeport_rules() {
  local ns=$1
  ip netns exec "$ns" iptables -t nat -N SLT-NODEPORTS
  ip netns exec "$ns" iptables -t nat -N SLT-POSTROUTING
  ip netns exec "$ns" iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j SLT-NODEPORTS
  ip netns exec "$ns" iptables -t nat -A OUTPUT -m addrtype --dst-type LOCAL -j SLT-NODEPORTS
  ip netns exec "$ns" iptables -t nat -A POSTROUTING -j SLT-POSTROUTING
  ip netns exec "$ns" iptables -t nat -A SLT-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
  local port ep
  for port in 30081 30082; do
    ep=$([[ $port == 30081 ]] && echo "$(pod_ip 1 2)" || echo "$(pod_ip 2 1)")
    ip netns exec "$ns" iptables -t nat -A SLT-NODEPORTS -p tcp --dport "$port" -j MARK --set-xmark 0x4000/0x4000
    ip netns exec "$ns" iptables -t nat -A SLT-NODEPORTS -p tcp --dport "$port" -j DNAT --to-destination "$ep:7002"
  done
}
for i in 1 2 3; do nodeport_rules "$(nns "$i")"; done
check "outside -> node-1:30081 -> pod-1-2 (same node; SNAT to node-1)" answer_is "pod-1-2 $(node_ip 1)" "$EXT_NS" "$(node_ip 1)" 30081
check "outside -> node-1:30082 -> pod-2-1 (other node; SNAT to node-1)" answer_is "pod-2-1 $(node_ip 1)" "$EXT_NS" "$(node_ip 1)" 30082
check "outside -> node-3:30081 -> pod-1-2 (other node)" answer_is "pod-1-2 $(node_ip 3)" "$EXT_NS" "$(node_ip 3)" 30081
check "pod-3-1 -> node-3:30082 -> pod-2-1" answer_is "pod-2-1 $(node_ip 3)" "$(pns 3 1)" "$(node_ip 3)" 30082
check "node-2 host network -> node-1:30081 -> pod-1-2" answer_is "pod-1-2 $(node_ip 1)" "$(nns 2)" "$(node_ip 1)" 30081

echo "== hostPort (portmap chained after sluice)"
hp=$(bash "$CLUSTER" add-pod 1 --host-port 8088:80)
hp_name=${hp%%$'\t'*}
hp_ip=${hp##*$'\t'}
echo "  $hp_name ($hp_ip) maps node-1:8088 to its port 80" >&2
hp_ns=$(pns 1 "${hp_name##*-}")
serve "$hp_ns" 80 "$hp_name"
# Debian's reference plugins (1.1.1) cannot CHECK this pod themselves: portmap fails on
# iptables-nft for an IPv4-only pod ("could not check ipv6 dnat": it looks for its DNAT chain in
# ip6tables, where it never made one) and bandwidth dereferences a nil limit (panic) for a pod
# without one. sluice is checked with the chain's final result as prevResult; the bandwidth
# pod below is checked through the whole chain.
check "CNI CHECK of $hp_name: sluice, with the chain's result as prevResult" \
  bash "$CLUSTER" check-pod "$hp_name" --skip portmap --skip bandwidth
check "outside -> node-1:8088 -> $hp_name:80 (client address kept)" answer_is "$hp_name $EXT_IP" "$EXT_NS" "$(node_ip 1)" 8088
check "node-2 host network -> node-1:8088 -> $hp_name" answer_is "$hp_name $(node_ip 2)" "$(nns 2)" "$(node_ip 1)" 8088
check "node-1 host network -> its own node-1:8088 -> $hp_name" answer_is "$hp_name $(node_ip 1)" "$(nns 1)" "$(node_ip 1)" 8088
check "pod-2-2 -> node-1:8088 -> $hp_name" answer_is "$hp_name $(pod_ip 2 2)" "$(pns 2 2)" "$(node_ip 1)" 8088
check "CNI DEL of $hp_name through the chain" bash "$CLUSTER" del-pod "$hp_name"
check "... its hostPort DNAT is gone" bash -c "! ip netns exec $(nns 1) iptables-save -t nat | grep -q -- '--to-destination $hp_ip:80'"

echo "== bandwidth (chained after sluice): 10 Mbit/s each way"
bw=$(bash "$CLUSTER" add-pod 2 --bandwidth 10M)
bw_name=${bw%%$'\t'*}
bw_ns=$(pns 2 "${bw_name##*-}")
echo "  $bw_name (${bw##*$'\t'}) limited to 10 Mbit/s in and out" >&2
check "CNI CHECK of $bw_name through the chain" bash "$CLUSTER" check-pod "$bw_name"
# Shaped, its packets take the stack instead of from_pod's fast path: to another node's own
# address, too, and under strict rp_filter both ways must still be one device on both nodes.
bw_ip=${bw##*$'\t'}
serve "$bw_ns" 7002 "$bw_name"
check "$bw_name (shaped) -> node-1 host network (other node): peer is its own IP" \
  answer_is "node-1 $bw_ip" "$bw_ns" "$(node_ip 1)" 7001
check "node-1 host network -> $bw_name (shaped, other node): peer is node-1" \
  answer_is "$bw_name $(node_ip 1)" "$(nns 1)" "$bw_ip" 7002
if ipv6_cluster; then
  check "$bw_name (shaped) -> node-1's IPv6 address: peer is its own IPv6" \
    answer_is "node-1 $(pod_ip6 2 "${bw_name##*-}")" "$bw_ns" "$(node_ip6 1)" 7011
fi
if ! native_mode; then
  check "node-2: one rule sends what the stack forwards from its pods to nodes (marked) to table 83" \
    test "$(ip -n "$(nns 2)" rule show table 83)" = \
    "30083:"$'\t'"from 10.244.2.0/24 fwmark 0x10000000/0x10000000 lookup 83 proto 83"
  check "node-2: ... where the other nodes' addresses lead through sluice_vxlan" bash -c \
    "ip -n $(nns 2) route show table 83 | grep -q '^198.18.0.1 dev sluice_vxlan proto 83' &&
     ip -n $(nns 2) route show table 83 | grep -q '^198.18.0.3 dev sluice_vxlan proto 83'"
  # The control: without the rule (and node-2's agent stopped, which would put it back within a
  # second) the shaped pod's packets to node-1 leave node-2 on the underlay, and node-1's strict
  # rp_filter drops them: its route to node-2's pods is the tunnel.
  stop_agent 2
  ip -n "$(nns 2)" rule del table 83
  check "control: without the rule, $bw_name gets no answer from node-1 (strict rp_filter)" \
    test -z "$(ask "$bw_ns" "$(node_ip 1)" 7001)"
  check "node-2: the agent started again" bash "$CLUSTER" restart-agent 2
  check "... puts the rule back" bash -c "ip -n $(nns 2) rule show table 83 | grep -q 'from 10.244.2.0/24'"
  check "... and $bw_name reaches node-1 again" answer_is "node-1 $bw_ip" "$bw_ns" "$(node_ip 1)" 7001
fi
# iperf3 <client-ns> <server-ns> <server-ip> [-R]: Mbit/s the receiver saw over 3 s.
iperf() {
  local port=$((5300 + RANDOM % 500)) out
  ip netns exec "$2" timeout 30 iperf3 -s -1 -p "$port" >"$CROOT/iperf.$port" 2>&1 &
  local s=$!
  for _ in $(seq 100); do
    ip netns exec "$2" ss -Hltn "sport = :$port" | grep -q . && break
    sleep 0.05
  done
  out=$(ip netns exec "$1" timeout 20 iperf3 -c "$3" -p "$port" -t 3 -J "${@:4}" 2>&1)
  wait "$s" 2>/dev/null || true
  python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))' <<<"$out" 2>/dev/null ||
    { echo "  iperf3 $*: $(grep -m1 '"error"' <<<"$out"); server: $(tail -n 3 "$CROOT/iperf.$port")" >&2; echo -1; }
}
free_up=$(iperf "$(pns 2 2)" "$(pns 1 1)" "$(pod_ip 1 1)")
lim_up=$(iperf "$bw_ns" "$(pns 1 1)" "$(pod_ip 1 1)")
lim_down=$(iperf "$bw_ns" "$(pns 1 1)" "$(pod_ip 1 1)" -R)
lim_local=$(iperf "$bw_ns" "$(pns 2 1)" "$(pod_ip 2 1)" -R)
echo "  unlimited pod: $free_up Mbit/s; limited pod: $lim_up up, $lim_down down (other node), $lim_local down (same node)" >&2
check "unlimited pod -> other node: far above the limit ($free_up Mbit/s >= 100)" test "$free_up" -ge 100
check "limited pod -> other node: well under 50 Mbit/s ($lim_up)" test "$lim_up" -ge 0 -a "$lim_up" -lt 50
check "other node -> limited pod: well under 50 Mbit/s ($lim_down)" test "$lim_down" -ge 0 -a "$lim_down" -lt 50
check "same node -> limited pod: well under 50 Mbit/s ($lim_local)" test "$lim_local" -ge 0 -a "$lim_local" -lt 50
# An agent restart loads the programs afresh and swaps them on every veth: on the limited pod's
# they are TCX attachments, swapped in place (CHECK compares them with the new pins), and no
# clsact qdisc may appear there (it would take bandwidth's ingress slot).
bw_veth=$(host_veth 2 "${bw_name##*-}")
check "agent on node-2 restarted with $bw_name plumbed" bash "$CLUSTER" restart-agent 2
check "... CHECK through the chain: its TCX programs are the newly pinned ones" bash "$CLUSTER" check-pod "$bw_name"
check "... no clsact on its veth, bandwidth's qdiscs still there" bash -c \
  "q=\$(tc -n $(nns 2) qdisc show dev $bw_veth); ! grep -q clsact <<<\"\$q\" && grep -q tbf <<<\"\$q\" && grep -q ingress <<<\"\$q\""
lim_after=$(iperf "$bw_ns" "$(pns 1 1)" "$(pod_ip 1 1)" -R)
check "... and the limit still holds ($lim_after Mbit/s)" test "$lim_after" -ge 0 -a "$lim_after" -lt 50
check "CNI DEL of $bw_name through the chain" bash "$CLUSTER" del-pod "$bw_name"
check "... its ifb device is gone" bash -c "! ip -n $(nns 2) -o link show type ifb | grep -q ."

echo "== MTU, 1500-byte underlay"
if native_mode; then
  check "pod MTU 1500, the underlay's (conflist $(conflist_mtu 1))" test "$(pod_mtu 1 1)" = 1500 -a "$(conflist_mtu 1)" = 1500
else
  check "pod MTU 1450 (conflist $(conflist_mtu 1), sluice_vxlan $(vxlan_mtu 1))" test "$(pod_mtu 1 1)" = 1450 -a "$(conflist_mtu 1)" = 1450 -a "$(vxlan_mtu 1)" = 1450
fi
check "TCP 16 MiB pod-1-1 -> pod-3-1 across nodes by sha256" tcp_big "$(pns 1 1)" "$(pns 3 1)" "$(pod_ip 3 1)" 16
check "UDP 8000-byte datagram across nodes" udp_big "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip 2 1)" 8000
check "UDP 65000-byte datagram across nodes" udp_big "$(pns 2 2)" "$(pns 1 2)" "$(pod_ip 1 2)" 65000
if native_mode; then
  check "pod MTU forced to 1600: DF ping across nodes gets 'frag needed' (mtu 1500) and a PMTU entry" \
    frag_needed 1 1 "$(pod_ip 2 1)" 1600 1500
else
  check "pod MTU forced to 1500: DF ping across nodes gets 'frag needed' (mtu 1450) and a PMTU entry" \
    frag_needed 1 1 "$(pod_ip 2 1)" 1500 1450
fi
check "... and the pod reaches pod-2-1 again afterwards" ping_ok "$(pns 1 1)" "$(pod_ip 2 1)"
if ipv6_cluster; then
  if native_mode; then forced6=1600 path6=1500; else forced6=1500 path6=1450; fi
  check "IPv6: pod MTU forced to $forced6: DF ping6 across nodes gets 'packet too big' (mtu $path6) and a PMTU entry" \
    frag_needed6 1 2 "$(pod_ip6 2 2)" "$forced6" "$path6"
  check "... and the pod reaches pod-2-2 over IPv6 again afterwards" ping_ok "$(pns 1 2)" "$(pod_ip6 2 2)"
fi

echo "== sluice-agent uninstall (node-3)"
uninstall3() {
  agent_cli uninstall 3
}
refused() { local out; out=$(uninstall3 2>&1) && return 1; grep -q "still running" <<<"$out"; }
check "uninstall refuses while the agent runs" refused
check "... and changed nothing" test -e "$CROOT/n3/net.d/10-sluice.conflist"
if native_mode; then
  native_ids=$(agent_cli status 3 -o json | python3 -c 'import json,sys; a = json.load(sys.stdin)["underlayAttached"]; print(a["ingress"], a["egress"])')
  check "node-3's underlay runs sl_from_native/sl_to_native (ids $native_ids)" bash -c "[[ '$native_ids' =~ ^[1-9][0-9]*\ [1-9][0-9]*$ ]]"
fi
stop_agent 3
check "uninstall on node-3" uninstall3
check "... conflist gone" test ! -e "$CROOT/n3/net.d/10-sluice.conflist"
check "... nft tables ip and ip6 sluice gone" bash -c "! ip netns exec $(nns 3) nft list table ip sluice >/dev/null 2>&1 && ! ip netns exec $(nns 3) nft list table ip6 sluice >/dev/null 2>&1"
check "... sluice_vxlan gone" bash -c "! ip -n $(nns 3) link show sluice_vxlan >/dev/null 2>&1"
if native_mode; then
  # Detached and unpinned, with the agent gone nothing holds them: the kernel frees them.
  progs_gone() {
    local id
    for id in $native_ids; do bpftool prog show id "$id" >/dev/null 2>&1 && return 1; done
    return 0
  }
  check "... the underlay's programs (ids $native_ids) detached and gone from the kernel" within 5000 progs_gone
fi
check "... routes to the other nodes' pod CIDRs gone" bash -c "! ip -n $(nns 3) route show | grep -qE '10.244.[12].0/24' && ! ip -n $(nns 3) -6 route show | grep -qE 'fd00:10:244:[12]::/64'"
check "... no rule for table 83, no route left in it" bash -c \
  "! ip -n $(nns 3) rule show table 83 | grep -q . && ! ip -n $(nns 3) route show table 83 2>/dev/null | grep -q ."
check "... no pins left" bash -c "! ls $CROOT/n3/bpf/sluice 2>/dev/null | grep -q ."
check "... and a second run is fine" uninstall3
check "rp_filter is still strict on nodes 1 and 2" rp_filter_strict 1 2

bash "$CLUSTER" down >/dev/null 2>&1

# ---------------------------------------------------------------------------------------------
# NETMODEL_JUMBO=0 leaves this second cluster out (the native-routing variant, for CI time: the
# MTU rules above hold for any underlay MTU).
if [[ ${NETMODEL_JUMBO:-1} == 1 ]]; then
  echo "== MTU, 9000-byte underlay"
  e2e_up --nodes 2 --pods-per-node 1 --underlay-mtu 9000 --rp-filter strict
  if native_mode; then
    jumbo_pod=9000 jumbo_path=9000 jumbo_forced=9100
    check "pod MTU 9000, the underlay's (conflist $(conflist_mtu 1))" \
      test "$(pod_mtu 1 1)" = 9000 -a "$(pod_mtu 2 1)" = 9000 -a "$(conflist_mtu 1)" = 9000
  else
    jumbo_pod=8950 jumbo_path=8950 jumbo_forced=9000
    check "pod MTU 8950 from the 9000 underlay (conflist $(conflist_mtu 1), sluice_vxlan $(vxlan_mtu 1))" \
      test "$(pod_mtu 1 1)" = 8950 -a "$(pod_mtu 2 1)" = 8950 -a "$(conflist_mtu 1)" = 8950 -a "$(vxlan_mtu 1)" = 8950
  fi
  check "TCP 16 MiB pod-1-1 -> pod-2-1 across nodes by sha256" tcp_big "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip 2 1)" 16
  check "TCP 16 MiB pod-2-1 -> outside host by sha256" tcp_big "$(pns 2 1)" "$EXT_NS" "$EXT_IP" 16
  check "UDP $((jumbo_pod - 50))-byte datagram across nodes" udp_big "$(pns 1 1)" "$(pns 2 1)" "$(pod_ip 2 1)" $((jumbo_pod - 50))
  check "UDP 65000-byte datagram across nodes" udp_big "$(pns 2 1)" "$(pns 1 1)" "$(pod_ip 1 1)" 65000
  check "pod MTU forced to $jumbo_forced: DF ping across nodes gets 'frag needed' (mtu $jumbo_path) and a PMTU entry" \
    frag_needed 1 1 "$(pod_ip 2 1)" "$jumbo_forced" "$jumbo_path"
  check "... and the pod reaches pod-2-1 again afterwards" ping_ok "$(pns 1 1)" "$(pod_ip 2 1)"
fi

e2e_done
