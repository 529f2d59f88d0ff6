#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restarting every agent under a running TCP stream and a 100 ms ping train loses no
# connection and no ping: the pinned datapath keeps forwarding while the agents are down.
source "$(dirname "$0")/lib.sh"

e2e_up --nodes 2 --pods-per-node 2

# A TCP stream across nodes that runs through the restarts: the receiver counts bytes, the
# sender writes for the whole window and fails on any error.
port=5201
ip netns exec "$(pns 2 1)" timeout 60 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1)
c, _ = s.accept(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
open(sys.argv[2], "w").write(str(n))' "$port" "$CROOT/received" &
E2E_BG_PIDS+=($!)
sleep 0.5
ip netns exec "$(pns 1 1)" timeout 60 python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
buf = b"x" * 16384; sent = 0; end = time.time() + float(sys.argv[3])
while time.time() < end:
    s.sendall(buf); sent += len(buf); time.sleep(0.002)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
open(sys.argv[4], "w").write(str(sent))' "$(pod_ip 2 1)" "$port" 14 "$CROOT/sent" &
sender=$!

# 100 ms ping trains: across nodes and on the same node.
ip netns exec "$(pns 1 1)" ping -i 0.1 -c 120 -W 1 "$(pod_ip 2 2)" >"$CROOT/ping-cross" 2>&1 &
p1=$!
ip netns exec "$(pns 1 2)" ping -i 0.1 -c 120 -W 1 "$(pod_ip 1 1)" >"$CROOT/ping-local" 2>&1 &
p2=$!
E2E_BG_PIDS+=("$sender" "$p1" "$p2")

# The program ids at Sluice's tc ingress slot of every pod's host veth of a node.
attached_ids() {
  ip netns exec "$(nns "$1")" tc -j filter show dev "$2" ingress 2>/dev/null |
    python3 -c 'import json,sys; print(" ".join(sorted(str(f["options"]["prog"]["id"]) for f in json.load(sys.stdin) if "prog" in f.get("options", {}))))' 2>/dev/null
}
host_veths() { ip -n "$(nns "$1")" -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^sl'; }
declare -A before
for node in 1 2; do
  for v in $(host_veths "$node"); do before[$node/$v]=$(attached_ids "$node" "$v"); done
done

sleep 2
for node in 1 2; do
  # stopped for a second: the datapath must forward on its own meanwhile
  check "agent on node-$node restarted" bash "$CLUSTER" restart-agent "$node" --down-for 1
done

# Every start loads the programs afresh and swaps them on the existing veths (tc replace at
# the same handle): what an upgrade to a build with other programs does, under the traffic
# above. Each veth now runs the newly pinned program.
for node in 1 2; do
  pinned=$(bpftool prog show pinned "$(bpf_root "$node")/sl_from_pod" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for v in $(host_veths "$node"); do
    now=$(attached_ids "$node" "$v")
    check "node-$node $v: program swapped (${before[$node/$v]} -> $now, pinned $pinned)" \
      test "$now" = "$pinned" -a "$now" != "${before[$node/$v]}"
  done
done

wait "$p1" || true
wait "$p2" || true
sender_rc=0
wait "$sender" || sender_rc=$?
sleep 0.5

loss() { grep -oE '[0-9.]+% packet loss' "$1" | cut -d% -f1; }
check "cross-node ping train: 0% loss ($(tail -2 "$CROOT/ping-cross" | head -1))" test "$(loss "$CROOT/ping-cross")" = 0
check "same-node ping train: 0% loss ($(tail -2 "$CROOT/ping-local" | head -1))" test "$(loss "$CROOT/ping-local")" = 0
check "TCP stream survived both restarts (sender exit $sender_rc)" test "$sender_rc" -eq 0
sent=$(cat "$CROOT/sent" 2>/dev/null || echo -1)
received=$(cat "$CROOT/received" 2>/dev/null || echo -2)
check "every byte arrived ($sent sent, $received received)" test "$sent" = "$received"

e2e_done
