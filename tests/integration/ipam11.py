#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A delegated IPAM plugin that speaks CNI 1.1 (GC and STATUS), for the integration tests.

Debian's host-local speaks up to CNI 1.0.0, and no IPAM plugin in Debian has GC or STATUS, so
the tests cannot check with a packaged plugin that sluice forwards those two verbs to its
delegate as CNI 1.1 asks. This one keeps host-local's allocator for ADD, CHECK and DEL (run
with cniVersion 1.0.0, its result handed back in the version asked) and adds the 1.1 verbs on
the same files, host-local's layout: <dataDir>/<network>/<ip>, holding "<containerID>\\r\\n<ifname>".
- GC removes every lease whose attachment is not in cni.dev/valid-attachments.
- STATUS fails with code 50 and the file's text while <dataDir>/status-error exists, GC with
  code 11 (try again later) while <dataDir>/gc-error does.
Every call is appended to <dataDir>/calls as one JSON line: {"command", "containerID",
"ifname", "cniVersion", "validAttachments"}, so a test sees what it was asked. VERSION, which
carries no configuration, is logged as a line "VERSION" in $IPAM11_VERSION_LOG when that is set.
"""
import json
import os
import subprocess
import sys

VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def fail(code, msg, version="1.1.0"):
    print(json.dumps({"cniVersion": version, "code": code, "msg": msg}))
    sys.exit(1)


def host_local(conf, command):
    """host-local with the same environment and a 1.0.0 copy of the configuration."""
    downgraded = dict(conf, cniVersion="1.0.0")
    downgraded.pop("cni.dev/valid-attachments", None)
    path = next((os.path.join(d, "host-local") for d in os.environ.get("CNI_PATH", "").split(":")
                 if d and os.access(os.path.join(d, "host-local"), os.X_OK)), None)
    if path is None:
        fail(7, "host-local not found in CNI_PATH", conf.get("cniVersion", "1.1.0"))
    env = dict(os.environ, CNI_COMMAND=command)
    p = subprocess.run([path], input=json.dumps(downgraded).encode(), env=env, capture_output=True)
    sys.stderr.buffer.write(p.stderr)
    if p.returncode != 0:
        sys.stdout.buffer.write(p.stdout)
        sys.exit(p.returncode)
    return p.stdout


def main():
    command = os.environ.get("CNI_COMMAND", "")
    if command == "VERSION":
        if os.environ.get("IPAM11_VERSION_LOG"):  # VERSION carries no configuration, so no dataDir
            with open(os.environ["IPAM11_VERSION_LOG"], "a") as f:
                f.write("VERSION\n")
        print(json.dumps({"cniVersion": "1.1.0", "supportedVersions": VERSIONS}))
        return
    conf = json.load(sys.stdin)
    version = conf.get("cniVersion", "")
    if version not in VERSIONS:
        fail(1, f"unsupported cniVersion {version}")
    data_dir = conf["ipam"]["dataDir"]
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "calls"), "a") as f:
        f.write(json.dumps({"command": command, "containerID": os.environ.get("CNI_CONTAINERID", ""),
                            "ifname": os.environ.get("CNI_IFNAME", ""), "cniVersion": version,
                            "validAttachments": conf.get("cni.dev/valid-attachments")}) + "\n")

    if command in ("STATUS", "GC") and version != "1.1.0":
        fail(1, f"{command} needs cniVersion 1.1.0", version)
    if command in ("STATUS", "GC"):
        try:
            with open(os.path.join(data_dir, command.lower() + "-error")) as f:
                fail(50 if command == "STATUS" else 11, f.read().strip(), version)
        except FileNotFoundError:
            pass
    if command == "STATUS":
        return
    if command == "GC":
        valid = conf.get("cni.dev/valid-attachments")
        if not isinstance(valid, list):
            fail(7, "cni.dev/valid-attachments is required", version)
        keep = {(a.get("containerID"), a.get("ifname")) for a in valid}
        net_dir = os.path.join(data_dir, conf["name"])
        for name in os.listdir(net_dir) if os.path.isdir(net_dir) else []:
            if name == "lock" or name.startswith("last_reserved_ip"):
                continue
            with open(os.path.join(net_dir, name), newline="") as f:  # keep the "\r\n"
                owner = f.read().split("\r\n")
            if len(owner) == 2 and (owner[0], owner[1]) not in keep:
                os.remove(os.path.join(net_dir, name))
        return
    out = host_local(conf, command)
    if command == "ADD":
        result = json.loads(out)
        result["cniVersion"] = version
        print(json.dumps(result))


if __name__ == "__main__":
    main()
