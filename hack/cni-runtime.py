#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs a CNI network configuration list the way a container runtime (libcni) does.

    cni-runtime.py ADD|CHECK|DEL --conflist FILE --cache-dir DIR --container-id ID
                   --netns PATH --ifname eth0 --cni-path DIRS [--args K=V;...]
                   [--runtime-config JSON-FILE] [--stderr FILE] [--skip TYPE]...

ADD runs every plugin of the list in order, each getting the previous one's result as
prevResult, and caches the final result (with the runtime config it was made with) under
--cache-dir; CHECK runs them in order with the cached result as prevResult; DEL runs them in
reverse order with the cached result as prevResult, then drops the cache entry. A plugin whose
entry declares "capabilities" gets the matching keys of the runtime config (portMappings,
bandwidth, ...) as "runtimeConfig", per the CNI spec's conventions. A failed ADD is cleaned up
with a DEL of the whole list, as runtimes do. The final result (ADD) or the failing plugin's
error document goes to stdout; plugins' stderr goes to --stderr. --skip leaves a plugin type
out of a CHECK (a plugin whose own CHECK is known to be broken), nothing else.
"""
import argparse
import json
import os
import subprocess
import sys


VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]  # what this runtime speaks, oldest first


def list_version(conflist):
    """As libcni does from CNI 1.1 on: the newest of cniVersions this runtime speaks, else
    cniVersion."""
    offered = [v for v in conflist.get("cniVersions", []) if v in VERSIONS]
    return max(offered, key=VERSIONS.index) if offered else conflist["cniVersion"]


def plugin_config(conflist, plugin, prev_result, runtime_config):
    conf = dict(plugin)
    conf["name"] = conflist["name"]
    conf["cniVersion"] = list_version(conflist)
    conf.pop("runtimeConfig", None)
    rc = {k: runtime_config[k] for k, on in plugin.get("capabilities", {}).items()
          if on and k in runtime_config}
    if rc:
        conf["runtimeConfig"] = rc
    if prev_result is not None:
        conf["prevResult"] = prev_result
    return conf


def find_binary(plugin_type, cni_path):
    for d in cni_path.split(":"):
        path = os.path.join(d, plugin_type)
        if d and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"plugin {plugin_type!r} not found in CNI_PATH {cni_path}")


def exec_plugin(command, plugin_type, conf, a, stderr):
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": a.container_id,
        "CNI_NETNS": a.netns,
        "CNI_IFNAME": a.ifname,
        "CNI_PATH": a.cni_path,
        "CNI_ARGS": a.args,
    }
    p = subprocess.run([find_binary(plugin_type, a.cni_path)], input=json.dumps(conf).encode(),
                       stdout=subprocess.PIPE, stderr=stderr, env=env, check=False)
    out = p.stdout.decode()
    if p.returncode != 0:
        raise PluginError(plugin_type, command, out)
    return json.loads(out) if out.strip() else None


class PluginError(Exception):
    def __init__(self, plugin_type, command, output):
        super().__init__(f"{command} {plugin_type}: {output.strip()}")
        self.output = output


def cache_path(a):
    return os.path.join(a.cache_dir, f"{a.container_id}-{a.ifname}.json")


def run_del(conflist, a, prev, runtime_config, stderr):
    first_error = None
    for plugin in reversed(conflist["plugins"]):
        try:
            exec_plugin("DEL", plugin["type"], plugin_config(conflist, plugin, prev, runtime_config), a, stderr)
        except (PluginError, RuntimeError) as e:  # every plugin gets its DEL
            first_error = first_error or e
    if first_error:
        raise first_error


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["ADD", "CHECK", "DEL"])
    ap.add_argument("--conflist", required=True)
    ap.add_argument("--cache-dir", required=True)
    ap.add_argument("--container-id", required=True)
    ap.add_argument("--netns", default="")
    ap.add_argument("--ifname", default="eth0")
    ap.add_argument("--cni-path", required=True)
    ap.add_argument("--args", default="")
    ap.add_argument("--runtime-config")
    ap.add_argument("--stderr")
    ap.add_argument("--skip", action="append", default=[])
    a = ap.parse_args()

    conflist = json.load(open(a.conflist))
    stderr = open(a.stderr, "ab") if a.stderr else sys.stderr
    os.makedirs(a.cache_dir, exist_ok=True)
    cached = None
    if os.path.exists(cache_path(a)):
        cached = json.load(open(cache_path(a)))

    try:
        if a.command == "ADD":
            runtime_config = json.load(open(a.runtime_config)) if a.runtime_config else {}
            result = None
            try:
                for plugin in conflist["plugins"]:
                    conf = plugin_config(conflist, plugin, result, runtime_config)
                    result = exec_plugin("ADD", plugin["type"], conf, a, stderr)
            except (PluginError, RuntimeError):
                try:
                    run_del(conflist, a, result, runtime_config, stderr)
                except (PluginError, RuntimeError):
                    pass
                raise
            tmp = cache_path(a) + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"result": result, "runtimeConfig": runtime_config}, f)
            os.rename(tmp, cache_path(a))
            print(json.dumps(result))
        elif a.command == "CHECK":
            if cached is None:
                raise RuntimeError(f"CHECK: no cached result for {a.container_id}/{a.ifname}")
            for plugin in conflist["plugins"]:
                if plugin["type"] in a.skip:
                    continue
                exec_plugin("CHECK", plugin["type"],
                            plugin_config(conflist, plugin, cached["result"], cached["runtimeConfig"]), a, stderr)
        else:
            prev = cached["result"] if cached else None
            rc = cached["runtimeConfig"] if cached else {}
            run_del(conflist, a, prev, rc, stderr)
            if cached:
                os.unlink(cache_path(a))
    except PluginError as e:
        sys.stdout.write(e.output)
        print(f"cni-runtime: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(f"cni-runtime: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
