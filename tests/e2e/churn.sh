#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Churn: 2,000 ADD/DEL cycles, up to 32 at once, on one node with its agent running. Nothing
# leaks (veths, addresses, map entries, endpoint records, plugin or agent file descriptors)
# and the agent's memory grows by less than a stated bound. ADD/DEL latency is reported, not
# asserted. SLUICE_CHURN_CYCLES / SLUICE_CHURN_PARALLEL override the defaults.
source "$(dirname "$0")/lib.sh"

CYCLES=${SLUICE_CHURN_CYCLES:-2000}
PARALLEL=${SLUICE_CHURN_PARALLEL:-32}
RSS_BOUND_KB=16384  # the agent may grow by at most 16 MiB over the whole run

e2e_up --nodes 1 --pods-per-node 1

agent_pid=$(cat "$CROOT/n1/agent.pid")
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status"; }
fds() { find "/proc/$agent_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# The agent holds some descriptors only for a moment: a netlink socket while its masquerade check
# asks the ruleset's generation (every 10 s), four pipes when that check runs nft, a socket per
# HTTP request. The count at rest is the least of samples over half a second; after the churn,
# a leak is a count that does not come back down to it.
fds_at_rest() {
  local n min
  min=$(fds)
  for _ in $(seq 9); do
    sleep 0.05
    n=$(fds)
    if ((n < min)); then min=$n; fi
  done
  echo "$min"
}
fds_back() { (($(fds) <= fds0)); }
# What each descriptor is (socket:[inode], anon_inode:bpf-map, a path): printed when the count grew.
fd_targets() { find "/proc/$agent_pid/fd" -mindepth 1 -maxdepth 1 -printf '%f %l\n' | sort -n; }
links() { ip -n "$(nns 1)" -o link show | grep -c ': sl' || true; }
rss0=$(rss_kb)
fds0=$(fds_at_rest)
fd_targets > "$CROOT/fds.before"
links0=$(links)
reservations() { find "$CROOT/n1/state/ipam/sluice" -maxdepth 1 \( -name '10.*' -o -name 'fd00:*' \) | wc -l; }
reservations0=$(reservations)

# The plugin exec'd as a runtime does it; one python thread per concurrent pod.
python3 - "$CROOT/n1" "$(nns 1)" "$SLUICE_CLUSTER_PREFIX-c" "$CYCLES" "$PARALLEL" "$CROOT/churn.json" <<'PY'
import concurrent.futures as cf, json, os, statistics, subprocess, sys, time
node, node_ns, prefix, cycles, parallel, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
conflist = json.load(open(node + "/net.d/10-sluice.conflist"))
conf = dict(conflist["plugins"][0], name=conflist["name"], cniVersion=conflist["cniVersion"])
stdin = json.dumps(conf).encode()
plugin = node + "/bin/sluice"

def cni(cmd, cid, netns):
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": node + "/bin"}
    t = time.monotonic()
    r = subprocess.run(["nsenter", "--net=/run/netns/" + node_ns, plugin], input=stdin, env=env,
                       capture_output=True)
    return r, time.monotonic() - t

def cycle(i):
    ns = "%s%d" % (prefix, i % (parallel * 2))
    cid = "churn%08d" % i
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r, add_s = cni("ADD", cid, "/run/netns/" + ns)
        if r.returncode != 0:
            return {"error": "ADD %s: %s %s" % (cid, r.stdout.decode(), r.stderr.decode()[-400:])}
        r, del_s = cni("DEL", cid, "/run/netns/" + ns)
        if r.returncode != 0:
            return {"error": "DEL %s: %s %s" % (cid, r.stdout.decode(), r.stderr.decode()[-400:])}
        return {"add": add_s, "del": del_s}
    finally:
        subprocess.run(["ip", "netns", "del", ns])

# Names are reused modulo 2*parallel, so two live cycles never share one: submit in waves.
results = []
with cf.ThreadPoolExecutor(parallel) as ex:
    for start in range(0, cycles, parallel):
        results += list(ex.map(cycle, range(start, min(cycles, start + parallel))))
errors = [r["error"] for r in results if "error" in r]
adds = sorted(r["add"] * 1000 for r in results if "add" in r)
dels = sorted(r["del"] * 1000 for r in results if "del" in r)
p99 = lambda v: v[min(len(v) - 1, int(len(v) * 0.99))] if v else float("nan")
summary = {"cycles": cycles, "errors": errors[:5], "error_count": len(errors),
           "add_ms_median": statistics.median(adds) if adds else None, "add_ms_p99": p99(adds),
           "del_ms_median": statistics.median(dels) if dels else None, "del_ms_p99": p99(dels)}
json.dump(summary, open(out, "w"))
print("churn: %d cycles, %d at once: ADD median %.1f ms p99 %.1f ms, DEL median %.1f ms p99 %.1f ms (incl. nsenter)"
      % (cycles, parallel, summary["add_ms_median"] or -1, summary["add_ms_p99"], summary["del_ms_median"] or -1,
         summary["del_ms_p99"]), file=sys.stderr)
for e in errors[:5]:
    print("  " + e, file=sys.stderr)
PY

errors=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error_count"])' "$CROOT/churn.json")
check "all $CYCLES ADD/DEL cycles succeeded ($errors errors)" test "$errors" -eq 0
check "no host veth left ($(links) now, $links0 before)" test "$(links)" -eq "$links0"
check "no address reservation left (IPv4 or IPv6)" test "$(reservations)" -eq "$reservations0"
check "no temporary file left in the state dir" test "$(find "$CROOT/n1/state" -name '.*tmp*' | wc -l)" -eq 0
check "endpoint records: only the standing pod's" test "$(find "$CROOT/n1/state/endpoints" -name '*.json' | wc -l)" -eq 1
eps=$(agent_cli endpoints 1 -o json |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)["endpoints"]))')
check "sl_endpoints: only the standing pod's ($eps, an entry per address)" test "$eps" -eq "$(pod_families)"
ifaces=$(bpftool map dump pinned "$(bpf_root 1)/sl_ifaces" -j | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
check "sl_ifaces: only the standing pod's ($ifaces)" test "$ifaces" -eq 1
sleep 1  # one agent maintenance pass, so the counts below are at rest
if within 5000 fds_back; then
  pass "agent file descriptors unchanged ($fds0 -> $(fds))"
else
  fail "agent file descriptors unchanged ($fds0 -> $(fds), 5 s after the churn)"
  { echo "  agent descriptors, before (<) and after (>):"; diff "$CROOT/fds.before" <(fd_targets) | sed 's/^/    /'; } >&2
fi
rss1=$(rss_kb)
check "agent memory growth under ${RSS_BOUND_KB} KiB ($rss0 -> $rss1 KiB)" test $((rss1 - rss0)) -lt "$RSS_BOUND_KB"
check "the standing pod still reaches the world" ping_ok "$(pns 1 1)" "$(node_ip 1)" 2

e2e_done
