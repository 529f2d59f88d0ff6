#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What a hostile pod cannot do: send with another pod's source address (IPv4 and IPv6, same node
# and across nodes), reach another pod through its host veth's MAC, or reach the agent's metrics
# endpoint (it listens on the node's loopback); and the files the agent writes have tight modes.
source "$(dirname "$0")/lib.sh"

e2e_up --nodes 2 --pods-per-node 2

attacker=$(pns 1 1)
victim_ip=$(pod_ip 2 2)   # the address the attacker forges (a pod on the other node)
target_local=$(pod_ip 1 2)
target_remote=$(pod_ip 2 1)

# The attacker adds the victim's address to its own interface and sends from it. A listener
# in each target pod counts what arrives; nothing may.
spoof_to() {  # spoof_to <target-ns> <target-ip> [<forged source>, default victim_ip] (IPv4 or IPv6)
  local port=$((40000 + RANDOM % 10000)) got src=${3:-$victim_ip} recv=UDP-RECV send
  send="UDP-SENDTO:$2:$port,bind=$src"
  [[ $2 == *:* ]] && { recv=UDP6-RECV; send="UDP6-SENDTO:[$2]:$port,bind=[$src]"; }
  ip netns exec "$1" timeout 4 socat -u "$recv:$port" "SYSTEM:cat >>$CROOT/spoof.$port" &
  local l=$!
  sleep 0.3
  for _ in 1 2 3 4 5; do
    ip netns exec "$attacker" socat -u - "$send" <<<"forged" 2>/dev/null || true
  done
  sleep 0.5
  kill "$l" 2>/dev/null || true
  wait "$l" 2>/dev/null || true
  got=$(cat "$CROOT/spoof.$port" 2>/dev/null || true)
  [[ -z $got ]]
}
ip -n "$attacker" addr add "$victim_ip/32" dev eth0
d0=$(counter 1 drop:spoofed_src)
check "forged source to a pod on the same node never arrives" spoof_to "$(pns 1 2)" "$target_local"
check "forged source to a pod on another node never arrives" spoof_to "$(pns 2 1)" "$target_remote"
d1=$(counter 1 drop:spoofed_src)
check "the forged packets were dropped as spoofed_src ($d0 -> $d1)" test $((d1 - d0)) -ge 10
ip -n "$attacker" addr del "$victim_ip/32" dev eth0
check "the attacker's own address still works" ping_ok "$attacker" "$target_remote" 2

# The same over IPv6 (dual stack): the attacker takes the victim's IPv6 address.
if ipv6_cluster; then
  victim_ip6=$(pod_ip6 2 2)
  ip -n "$attacker" addr add "$victim_ip6/128" dev eth0 nodad
  d0=$(counter 1 drop:spoofed_src)
  check "forged IPv6 source to a pod on the same node never arrives" spoof_to "$(pns 1 2)" "$(pod_ip6 1 2)" "$victim_ip6"
  check "forged IPv6 source to a pod on another node never arrives" spoof_to "$(pns 2 1)" "$(pod_ip6 2 1)" "$victim_ip6"
  d1=$(counter 1 drop:spoofed_src)
  check "the forged IPv6 packets were dropped as spoofed_src ($d0 -> $d1)" test $((d1 - d0)) -ge 10
  ip -n "$attacker" addr del "$victim_ip6/128" dev eth0
  check "the attacker's own IPv6 address still works" ping_ok "$attacker" "$(pod_ip6 2 1)" 2
fi

# MAC tricks: a frame to a neighbour pod's host veth MAC (or any MAC) is still judged by its
# IP header on the attacker's own veth: the forged source is dropped whatever the MAC says.
victim_host_mac=$(agent_cli endpoints 1 -o json |
  python3 -c 'import json,sys; print(next(e["hostMac"] for e in json.load(sys.stdin)["endpoints"] if e["ip"] == sys.argv[1]))' "$target_local")
ip -n "$attacker" neigh replace 169.254.1.1 lladdr "$victim_host_mac" dev eth0 nud permanent
ip -n "$attacker" addr add "$victim_ip/32" dev eth0
d2=$(counter 1 drop:spoofed_src)
check "forged source sent to a neighbour's host veth MAC never arrives" spoof_to "$(pns 2 1)" "$target_remote"
d3=$(counter 1 drop:spoofed_src)
check "... and is dropped as spoofed_src ($d2 -> $d3)" test $((d3 - d2)) -ge 5
ip -n "$attacker" addr del "$victim_ip/32" dev eth0
check "with a neighbour's MAC as gateway, honest traffic is still forwarded by IP" ping_ok "$attacker" "$target_remote" 2

# The agent's metrics listen on the node's loopback: no pod reaches them.
metrics_from_pod() {
  ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(); s.settimeout(2)
try:
    s.connect((sys.argv[1], 9962)); sys.exit(0)
except OSError:
    sys.exit(1)' "$2"
}
check "a pod cannot connect to <node IP>:9962" eval "! metrics_from_pod $attacker $(node_ip 1)"
check "a pod cannot connect to another node's :9962" eval "! metrics_from_pod $attacker $(node_ip 2)"
check "control: the metrics answer on the node's loopback" metrics_from_pod "$(nns 1)" 127.0.0.1

# Modes of what the agent and the plugin write.
mode() { stat -c %a "$1"; }
check "conflist is 0644 (kubelet reads it), not writable by others" test "$(mode "$CROOT/n1/net.d/10-sluice.conflist")" = 644
check "installed plugin binary is 0755" test "$(mode "$CROOT/n1/bin/sluice")" = 755
loose=$(find "$CROOT/n1/state" -perm /022 ! -type l | head -5)
check "nothing under the state dir is group/world writable (${loose:-none})" test -z "$loose"

e2e_done
