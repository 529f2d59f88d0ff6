#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Restarting every agent under a running TCP stream and a 100 ms ping train loses no
# connection and no ping: the pinned datapath keeps forwarding while the agents are down. A second
# agent started beside a running one waits for it (the instance lock) and takes over when it exits.
# Then the same under an upgrade to a build whose BPF programs differ and the rollback from it:
# every hook of every node swaps to the new build's programs, atomically (the underlay's
# programs too).
source "$(dirname "$0")/lib.sh"

e2e_up --nodes 2 --pods-per-node 2

# A TCP stream across nodes that runs through every restart below, until $CROOT/stop appears:
# the receiver counts bytes, the sender fails on any error.
port=5201
ip netns exec "$(pns 2 1)" timeout 300 python3 -c '
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
ip netns exec "$(pns 1 1)" timeout 300 python3 -c '
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
buf = b"x" * 16384; sent = 0
while not os.path.exists(sys.argv[3]):
    s.sendall(buf); sent += len(buf); time.sleep(0.002)
s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
open(sys.argv[4], "w").write(str(sent))' "$(pod_ip 2 1)" "$port" "$CROOT/stop" "$CROOT/sent" &
sender=$!

# 100 ms ping trains, across nodes and on the same node, until stopped (SIGINT) at the end.
ip netns exec "$(pns 1 1)" timeout -s INT 300 ping -i 0.1 -W 1 "$(pod_ip 2 2)" >"$CROOT/ping-cross-node" 2>&1 &
p1=$!
ip netns exec "$(pns 1 2)" timeout -s INT 300 ping -i 0.1 -W 1 "$(pod_ip 1 1)" >"$CROOT/ping-same-node" 2>&1 &
p2=$!
E2E_BG_PIDS+=("$sender" "$p1" "$p2")

# The program ids at a tc hook (ingress/egress) of a node's device, and what is pinned.
hook_ids() {
  ip netns exec "$(nns "$1")" tc -j filter show dev "$2" "$3" 2>/dev/null |
    python3 -c 'import json,sys; print(" ".join(sorted(str(f["options"]["prog"]["id"]) for f in json.load(sys.stdin) if "prog" in f.get("options", {}))))' 2>/dev/null
}
prog_tag() { bpftool prog show id "$1" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["tag"])'; }
host_veths() { ip -n "$(nns "$1")" -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^sl'; }
has_overlay() { ip -n "$(nns "$1")" link show sluice_vxlan >/dev/null 2>&1; }
# The program at a hook of the underlay (eth0: sl_from_tunnel in vxlan mode, sl_from_native /
# sl_to_native in native mode), attached through TCX, which tc filter show does not list: as
# the CLI reports it.
underlay_hook() {
  agent_cli status "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["underlayAttached"][sys.argv[1]])' "$2"
}
# Every Sluice hook of a node (each pod's host veth, both directions, the overlay device, and
# the underlay's ingress, in native mode its egress too): "<dev>/<dir>=<program ids>" lines.
node_hooks() {
  local v
  for v in $(host_veths "$1"); do
    echo "$v/ingress=$(hook_ids "$1" "$v" ingress)"
    echo "$v/egress=$(hook_ids "$1" "$v" egress)"
  done
  if has_overlay "$1"; then
    echo "sluice_vxlan/ingress=$(hook_ids "$1" sluice_vxlan ingress)"
    echo "sluice_vxlan/egress=$(hook_ids "$1" sluice_vxlan egress)"
  fi
  echo "eth0/ingress=$(underlay_hook "$1" ingress)"
  if native_mode; then
    echo "eth0/egress=$(underlay_hook "$1" egress)"
  fi
}
# The program a hook must run once the node's agent is up: the one pinned under its name.
expected_prog() {
  case $2 in
    sluice_vxlan/ingress) pinned_id "$1" sl_from_overlay ;;
    sluice_vxlan/egress) pinned_id "$1" sl_to_overlay ;;
    eth0/ingress) if native_mode; then pinned_id "$1" sl_from_native; else pinned_id "$1" sl_from_tunnel; fi ;;
    eth0/egress) pinned_id "$1" sl_to_native ;;
    */ingress) pinned_id "$1" sl_from_pod ;;
    */egress) pinned_id "$1" sl_to_pod ;;
  esac
}
declare -A before before_tag
snapshot() {
  local line
  for node in 1 2; do
    while IFS= read -r line; do
      before[$node/${line%%=*}]=${line#*=}
      before_tag[$node/${line%%=*}]=$(prog_tag "${line#*=}")
    done < <(node_hooks "$node")
  done
}
# Each hook runs exactly the newly pinned program (one filter, no gap left by a detach), which
# replaced the one running before; with $1 = other-build, its tag differs too. On the nodes
# given after it (default: both).
check_swapped() {
  local node line hook now want tag mode=$1 nodes=("${@:2}")
  ((${#nodes[@]})) || nodes=(1 2)
  for node in "${nodes[@]}"; do
    while IFS= read -r line; do
      hook=${line%%=*} now=${line#*=}
      want=$(expected_prog "$node" "$hook")
      check "node-$node $hook: ${before[$node/$hook]} -> $now (pinned $want)" \
        test "$now" = "$want" -a "$now" != "${before[$node/$hook]}"
      if [[ $mode == other-build ]]; then
        tag=$(prog_tag "$now")
        check "node-$node $hook: tag ${before_tag[$node/$hook]} -> $tag" \
          test -n "$tag" -a -n "${before_tag[$node/$hook]}" -a "$tag" != "${before_tag[$node/$hook]}"
      fi
    done < <(node_hooks "$node")
  done
}

sleep 2
# 1. Restarts of the same build, each agent down for a second: the datapath forwards on its
# own meanwhile, and every start loads the programs afresh and swaps them in (tc replace at
# the same handle).
snapshot
for node in 1 2; do
  check "agent on node-$node restarted" bash "$CLUSTER" restart-agent "$node" --down-for 1
done
check_swapped same-build
# Every pod's untranslated promise (nothing the stack translated reached these pods): restarts of
# the same build keep it (the sl_to_pod that watched each veth runs the same code), an upgrade to
# other programs ends it before they run.
promises() {
  local node pod
  for node in 1 2; do
    for pod in 1 2; do
      [[ $(promise "$node" "$pod") == "$1" ]] || return 1
    done
  done
}
check "every pod's untranslated promise survived the restarts of the same build" promises held

# 1b. A second agent started on node-1 beside the running one, with its very command line (a
# DaemonSet rollout with maxSurge, an operator's shell): it waits for the running one to exit and
# touches nothing meanwhile (the instance lock in the state dir); stopped while it waits, it
# leaves as it came; once the running one exits, the waiting one takes over like any start.
first=$(cat "$CROOT/n1/agent.pid")
mapfile -d '' argv <"/proc/$first/cmdline"
# second_agent <output file>: starts one more (its pid on stdout)
second_agent() {
  ip netns exec "$(nns 1)" setsid "${argv[@]}" </dev/null >>"$1" 2>&1 &
  echo $!
}
gone() {  # gone <pid>: exited (a zombie left for init to reap counts)
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -z $st || $st == [ZX] ]]
}
hooks_unchanged() {
  local line
  while IFS= read -r line; do
    [[ ${before[1/${line%%=*}]} == "${line#*=}" ]] || return 1
  done < <(node_hooks 1)
}
snapshot
out=$CROOT/n1/agent-waiting.out
waiting=$(second_agent "$out")
check "a second agent on node-1 waits for the running one (pid $first)" \
  within 5000 grep -q "another sluice-agent (pid $first) holds .*: waiting for it to exit" "$out"
sleep 1
check "... has touched no hook of node-1 a second later" hooks_unchanged
alive() { ! gone "$1"; }
check "... and the running agent runs on" alive "$first"
kill -TERM "$waiting"
check "a waiting agent stopped by SIGTERM exits" within 3000 gone "$waiting"
check "... saying it touched nothing" grep -q "stopped while waiting for the other agent: nothing was touched" "$out"
check "... and it did not" hooks_unchanged
out=$CROOT/n1/agent-next.out
next=$(second_agent "$out")
check "another waits" within 5000 grep -q "waiting for it to exit" "$out"
kill -TERM "$first"
check "node-1's agent exited (SIGTERM)" within 5000 gone "$first"
check "... and the waiting one took over its lock" within 5000 grep -q "took over .*/agent.lock" "$out"
echo "$next" >"$CROOT/n1/agent.pid"  # node-1's agent from now on, for cluster.sh
node1_ready() { agent_cli status 1 -o json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["agent"]["ready"] else 1)'; }
check "... and is ready" within 10000 node1_ready
check_swapped same-build 1

# 2. An upgrade to a build whose programs differ (sluice-agent-next: the same sources compiled
# for another BPF ISA, so other instructions and tags on the same pinned maps), then the
# rollback to this build, one node at a time like a DaemonSet rollout.
# RESTART_UPGRADE=0 leaves this part out (the native-routing variant, for CI time: its swaps
# are the same attach-with-replace as the restarts above, whose every hook is checked).
if [[ ${RESTART_UPGRADE:-1} == 1 ]]; then
  NEXT=$SLUICE_BUILD_DIR/bin/sluice-agent-next
  check "the next build of the agent exists ($NEXT)" test -x "$NEXT"
  snapshot
  for node in 1 2; do
    check "node-$node upgraded to the next build" bash "$CLUSTER" restart-agent "$node" --agent-bin "$NEXT"
  done
  check_swapped other-build
  check "the upgrade to other programs ended every pod's untranslated promise" promises ended
  snapshot
  for node in 1 2; do
    check "node-$node rolled back" bash "$CLUSTER" restart-agent "$node"
  done
  check_swapped other-build
fi
# All of the above happened under the traffic, not after it.
check "the TCP stream and both ping trains outlasted every restart" kill -0 "$sender" "$p1" "$p2"
sleep 1
touch "$CROOT/stop"
kill -INT "$p1" "$p2" 2>/dev/null || true
wait "$p1" || true
wait "$p2" || true
sender_rc=0
wait "$sender" || sender_rc=$?
sleep 0.5

# Pings lost: the sequence numbers missing among the replies up to the last one answered (the
# request in flight when the train was stopped is no loss).
lost() {
  grep -oE 'icmp_seq=[0-9]+' "$1" | cut -d= -f2 | python3 -c '
import sys
seqs = {int(l) for l in sys.stdin if l.strip()}
print(f"{max(seqs) - len(seqs) if seqs else -1} lost of {max(seqs, default=0)}")'
}
for train in cross-node same-node; do
  result=$(lost "$CROOT/ping-$train")
  check "$train ping train: $result" test "${result%% *}" = 0
done
check "TCP stream survived every restart (sender exit $sender_rc)" test "$sender_rc" -eq 0
sent=$(cat "$CROOT/sent" 2>/dev/null || echo -1)
received=$(cat "$CROOT/received" 2>/dev/null || echo -2)
check "every byte arrived ($sent sent, $received received)" test "$sent" = "$received"

e2e_done
