#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""ADD/DEL latency of CNI plugins, measured the way a runtime pays it.

A container runtime execs the plugin from the host network namespace with the CNI
environment and the config on stdin. This driver does the same for each setup: it joins the
setup's host namespace itself (setns, not timed; nothing like `ip netns exec`), then spawns the
plugin the way a Go runtime does (containerd's and CRI-O's libcni exec through os/exec, a
clone(CLONE_VM|CLONE_VFORK): Python's subprocess takes vfork too when no preexec_fn is given,
where a fork would copy the interpreter's page tables and bill 0.5-3 ms per exec on this VM to
every plugin alike), passes the config on stdin and waits. Pods are added one by one,
alternating between setups so drift hits them alike, then deleted in the same order. Creating
and deleting the pods' own namespaces is not timed.

Before each ADD the same plugin is spawned the same way for VERSION, which does nothing but
start, answer and exit: what of an ADD is the process start on the day's machine (the 5 ms ADD
target was set when `ptp`'s ADD took 12 ms here, "of which ~4 ms is process start").

Usage: cni_latency.py --pods N --prefix P --cni-path DIRS --out FILE
                      --setup NAME HOST_NETNS PLUGIN CONF [--setup ...]
Writes {"NAME": {"add_us": [...], "del_us": [...], "version_us": [...]}, ...} to FILE (pod
order kept).
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _join(netns_fd):
    if _libc.setns(netns_fd, CLONE_NEWNET) != 0:
        sys.exit(f"cni_latency: setns: {os.strerror(ctypes.get_errno())}")


def run_plugin(setup, command, container_id, pod_netns, cni_path):
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
           "CNI_NETNS": f"/run/netns/{pod_netns}", "CNI_IFNAME": "eth0", "CNI_PATH": cni_path}
    _join(setup["fd"])  # the runtime's own namespace is the host's: the child inherits it
    t0 = time.monotonic_ns()
    p = subprocess.run([setup["plugin"]], input=setup["conf"], env=env, capture_output=True)
    t1 = time.monotonic_ns()
    if p.returncode != 0:
        sys.exit(f"cni_latency: {setup['name']} {command} {container_id} failed "
                 f"(exit {p.returncode}): {p.stdout.decode(errors='replace')} {p.stderr.decode(errors='replace')[-400:]}")
    return (t1 - t0) // 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--cni-path", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--setup", nargs=4, action="append", required=True,
                    metavar=("NAME", "HOST_NETNS", "PLUGIN", "CONF"))
    a = ap.parse_args()

    setups = []
    for name, host, plugin, conf in a.setup:
        with open(conf, "rb") as f:
            setups.append({"name": name, "plugin": plugin, "conf": f.read(),
                           "fd": os.open(f"/run/netns/{host}", os.O_RDONLY),
                           "add_us": [], "del_us": [], "version_us": []})

    def pod(s, i):
        return f"{a.prefix}-lat-{s['name']}-{i}"

    for i in range(1, a.pods + 1):
        for s in setups:
            subprocess.run(["ip", "netns", "add", pod(s, i)], check=True)
            s["version_us"].append(run_plugin(s, "VERSION", f"lat-{s['name']}-{i}", pod(s, i), a.cni_path))
            s["add_us"].append(run_plugin(s, "ADD", f"lat-{s['name']}-{i}", pod(s, i), a.cni_path))
    for i in range(1, a.pods + 1):
        for s in setups:
            s["del_us"].append(run_plugin(s, "DEL", f"lat-{s['name']}-{i}", pod(s, i), a.cni_path))
            subprocess.run(["ip", "netns", "del", pod(s, i)], check=True)

    with open(a.out, "w") as f:
        json.dump({s["name"]: {k: s[k] for k in ("add_us", "del_us", "version_us")} for s in setups}, f)


if __name__ == "__main__":
    main()
