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

sleep 2
for node in 1 2; do
  # stopped for a second: the datapath must forward on its own meanwhile
  check "agent on node-$node restarted" bash "$CLUSTER" restart-agent "$node" --down-for 1
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
