#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora under tests/fuzz/corpus/<target>/: real examples of each input
(network configs of every CNI version as runtimes pass them, CNI environments and CNI_ARGS as
kubelet/containerd/CRI-O set them, nodes files, watch streams from tests/k8s/testdata,
kubeconfigs as kind/kubeadm/kubectl write them, datapath frames). Regression inputs
(regress-*) are added by hand and never rewritten. Run from anywhere; commit the result."""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def j(obj):
    return json.dumps(obj, separators=(", ", ": "))


# --- netconf: what a runtime writes on the plugin's stdin ------------------------------------
SLUICE = {"type": "sluice", "mtu": 1450, "bpfRoot": "/sys/fs/bpf/sluice", "stateDir": "/var/lib/sluice",
          "logFile": "/var/lib/sluice/cni.log", "logLevel": "info",
          "ipam": {"type": "sluice-ipam", "ranges": [[{"subnet": "10.244.1.0/24"}]]}}
for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]:
    write("netconf", f"add-{v}.json", j({"cniVersion": v, "name": "sluice", **SLUICE}))
# libcni adds runtimeConfig for the capabilities a plugin declares (portmap after us).
write("netconf", "runtime-config-1.0.0.json", j({
    "cniVersion": "1.0.0", "name": "sluice", **SLUICE, "capabilities": {"portMappings": True},
    "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}}))
# CHECK and DEL of a chain carry the prevResult (0.4.0 with ips[].version; 1.0.0 without).
write("netconf", "check-0.4.0-prevresult.json", j({
    "cniVersion": "0.4.0", "name": "sluice", **SLUICE,
    "prevResult": {"cniVersion": "0.4.0",
                   "interfaces": [{"name": "slf3a9c2d41e0", "mac": "6e:0b:94:17:3c:11"},
                                  {"name": "eth0", "mac": "aa:3b:02:9c:55:01", "sandbox": "/var/run/netns/cni-1234"}],
                   "ips": [{"version": "4", "address": "10.244.1.5/32", "gateway": "169.254.1.1", "interface": 1}],
                   "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}], "dns": {}}}))
write("netconf", "check-1.1.0-prevresult-dualstack.json", j({
    "cniVersion": "1.1.0", "name": "sluice", **SLUICE,
    "prevResult": {"cniVersion": "1.1.0",
                   "interfaces": [{"name": "eth0", "mac": "aa:3b:02:9c:55:01", "mtu": 1450, "sandbox": "/var/run/netns/cni-1234"}],
                   "ips": [{"address": "10.244.1.5/32", "gateway": "169.254.1.1", "interface": 0},
                           {"address": "fd00:10:244:1::5/128", "gateway": "fe80::1", "interface": 0}],
                   "routes": [{"dst": "0.0.0.0/0", "gw": "169.254.1.1"}, {"dst": "::/0", "gw": "fe80::1"}],
                   "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "options": ["ndots:5"]}}}))
# GC (1.1.0): the attachments the runtime still knows.
write("netconf", "gc-1.1.0.json", j({
    "cniVersion": "1.1.0", "name": "sluice", **SLUICE,
    "cni.dev/valid-attachments": [{"containerID": "2a7c3c4e5b6d", "ifname": "eth0"},
                                  {"containerID": "f00dfeed1234", "ifname": "net1"}]}))
# Delegated IPAM: host-local with ranges in both families, and the dhcp plugin.
write("netconf", "host-local-1.0.0.json", j({
    "cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "sluice", "mtu": 8950,
    "ipam": {"type": "host-local", "dataDir": "/run/cni-ipam",
             "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.10", "rangeEnd": "10.244.1.200",
                          "gateway": "10.244.1.1"}],
                        [{"subnet": "fd00:10:244:1::/64"}]],
             "routes": [{"dst": "0.0.0.0/0"}]},
    "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local"}}))
write("netconf", "builtin-two-sets-0.3.1.json", j({
    "cniVersion": "0.3.1", "name": "sluice", "type": "sluice", "logLevel": "warning",
    "ipam": {"type": "sluice-ipam", "ranges": [[{"subnet": "10.244.1.0/25"}, {"subnet": "10.244.1.128/25", "gateway": "10.244.1.129"}],
                                                [{"subnet": "fd00:10:244:1::/120", "rangeStart": "fd00:10:244:1::10"}]]}}))
write("netconf", "dhcp-0.4.0.json", j({"cniVersion": "0.4.0", "name": "lan", "type": "sluice", "ipam": {"type": "dhcp"}}))
# What a delegated IPAM plugin answers (the same target parses results and error documents).
write("netconf", "ipam-result-0.4.0.json", j({
    "cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.244.1.10/24", "gateway": "10.244.1.1"}],
    "routes": [{"dst": "0.0.0.0/0"}], "dns": {}}))
write("netconf", "ipam-result-1.0.0.json", j({
    "cniVersion": "1.0.0", "ips": [{"address": "10.244.1.10/24", "gateway": "10.244.1.1"},
                                   {"address": "fd00:10:244:1::10/64"}], "dns": {}}))
write("netconf", "ipam-error.json", j({"cniVersion": "1.0.0", "code": 11, "msg": "try again later",
                                       "details": "lease database locked"}))
# The conflist the agent writes (not a plugin config: parseNetConf must refuse it cleanly).
write("netconf", "conflist-1.0.0.json", j({"cniVersion": "1.0.0", "name": "sluice", "plugins": [
    SLUICE, {"type": "portmap", "capabilities": {"portMappings": True}}]}))
write("netconf", "ip-v4.txt", "10.244.1.5")
write("netconf", "ip-v6.txt", "fd00:10:244:1::5")
write("netconf", "cidr-v4.txt", "10.244.1.0/24")
write("netconf", "cidr-v6.txt", "fd00:10:244::/48")

# --- cni_env: the environment of one exec; also taken whole as a CNI_ARGS string ------------
CID = "3f2a9b4c5d6e7f80112233445566778899aabbccddeeff001122334455667788"
kubelet_args = (f"K8S_POD_INFRA_CONTAINER_ID={CID};K8S_POD_UID=5a1f6c2e-8d3b-4c1a-9e7f-0b2d4c6e8f10;"
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-5d78c9869d-xk2lp")
containerd_args = (f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-7c5ddbdf54-2v9jq;"
                   f"K8S_POD_INFRA_CONTAINER_ID={CID};K8S_POD_UID=0c9e1b7a-3f4d-4e2a-8b6c-1d2e3f4a5b6c")
crio_args = f"IgnoreUnknown=true;K8S_POD_NAMESPACE=monitoring;K8S_POD_NAME=node-exporter-abcde;K8S_POD_INFRA_CONTAINER_ID={CID}"


def env(**kv):
    return "".join(f"{k}={v}\n" for k, v in kv.items())


write("cni_env", "containerd-add", env(CNI_COMMAND="ADD", CNI_CONTAINERID=CID,
      CNI_NETNS="/var/run/netns/cni-6d2c1e3a-8f4b-2c1d-9e0a-7b6c5d4e3f21", CNI_IFNAME="eth0",
      CNI_PATH="/opt/cni/bin", CNI_ARGS=containerd_args))
write("cni_env", "kubelet-dockershim-add", env(CNI_COMMAND="ADD", CNI_CONTAINERID=CID[:12],
      CNI_NETNS="/proc/4242/ns/net", CNI_IFNAME="eth0", CNI_PATH="/opt/cni/bin:/usr/libexec/cni",
      CNI_ARGS=kubelet_args))
write("cni_env", "crio-del-netns-gone", env(CNI_COMMAND="DEL", CNI_CONTAINERID=CID, CNI_NETNS="",
      CNI_IFNAME="eth0", CNI_PATH="/usr/libexec/cni", CNI_ARGS=crio_args))
write("cni_env", "check", env(CNI_COMMAND="CHECK", CNI_CONTAINERID="ctr-1.a_b", CNI_NETNS="/run/netns/pod1",
      CNI_IFNAME="net1", CNI_PATH="/opt/cni/bin"))
write("cni_env", "gc", env(CNI_COMMAND="GC", CNI_PATH="/opt/cni/bin"))
write("cni_env", "status", env(CNI_COMMAND="STATUS", CNI_PATH="/opt/cni/bin"))
write("cni_env", "version", env(CNI_COMMAND="VERSION"))
write("cni_env", "args-containerd", containerd_args)
write("cni_env", "args-kubelet", kubelet_args)
write("cni_env", "args-crio", crio_args)
write("cni_env", "args-unknown-strict", "K8S_POD_NAMESPACE=default;FOO=bar")

# --- nodes_file ------------------------------------------------------------------------------
write("nodes_file", "internals-example.json", j({"nodes": [
    {"name": "node-1", "internalIP": "198.18.0.1", "podCIDRs": ["10.244.1.0/24"]}]}))
write("nodes_file", "cluster-sh-3-nodes.json", '{"nodes": [' + ",".join(
    f'{{"name": "node-{i}", "internalIP": "198.18.0.{i}", "podCIDRs": ["10.244.{i}.0/24"]}}' for i in (1, 2, 3)) + "]}\n")
write("nodes_file", "dual-stack-and-pending.json", j({"nodes": [
    {"name": "a", "internalIP": "fd00:198:18::1", "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"]},
    {"name": "b-not-ready", "internalIP": None, "podCIDRs": None},
    {"name": "c", "internalIP": "198.18.0.3", "podCIDRs": []}]}))
write("nodes_file", "cluster-sh-dual-stack.json", '{"nodes": [' + ",".join(
    f'{{"name": "node-{i}", "internalIP": "198.18.0.{i}", "internalIP6": "fd00:198:18::{i}", '
    f'"podCIDRs": ["10.244.{i}.0/24", "fd00:10:244:{i}::/64"]}}' for i in (1, 2)) + "]}\n")
write("nodes_file", "empty.json", '{"nodes": []}')

# --- k8s_watch: first byte = piece size for the line splitter, then the watch body ------------
TD = os.path.join(ROOT, "tests", "k8s", "testdata")
with open(os.path.join(TD, "watch-events.jsonl"), "rb") as f:
    events = f.read()
with open(os.path.join(TD, "watch-expired.jsonl"), "rb") as f:
    expired = f.read()
lines = [l for l in events.split(b"\n") if l]
write("k8s_watch", "watch-events", b"\x07" + events)
write("k8s_watch", "watch-events-crlf-one-piece", b"\x3f" + b"\r\n".join(lines) + b"\r\n")
write("k8s_watch", "watch-expired", b"\x00" + expired)
for i, l in enumerate(lines[:4]):
    write("k8s_watch", f"event-{i}", b"\x10" + l + b"\n")
with open(os.path.join(TD, "status-410.json"), "rb") as f:
    write("k8s_watch", "status-410", b"\x01" + f.read())
with open(os.path.join(TD, "nodelist-page2.json"), "rb") as f:
    nodelist = json.load(f)
for i, item in enumerate(nodelist.get("items", [])[:2]):
    write("k8s_watch", f"modified-from-list-{i}", b"\x05" + json.dumps({"type": "MODIFIED", "object": item}).encode() + b"\n")
write("k8s_watch", "bookmark-and-delete", b"\x20" + b'{"type":"BOOKMARK","object":{"kind":"Node","apiVersion":"v1","metadata":{"resourceVersion":"12746"}}}\n'
      b'{"type":"DELETED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"kind-worker2","resourceVersion":"12750"}}}\n')

# --- kubeconfig ------------------------------------------------------------------------------
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n").decode()
KEY = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nMIIEdummy\n-----END RSA PRIVATE KEY-----\n").decode()
write("kubeconfig", "kind-admin.yaml", f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {CA}
    server: https://127.0.0.1:41235
  name: kind-kind
contexts:
- context:
    cluster: kind-kind
    user: kind-kind
  name: kind-kind
current-context: kind-kind
kind: Config
preferences: {{}}
users:
- name: kind-kind
  user:
    client-certificate-data: {CA}
    client-key-data: {KEY}
""")
write("kubeconfig", "kubeadm-token-file.yaml", """---
apiVersion: v1
kind: Config
clusters:
  - name: default
    cluster:
      server: "https://10.0.0.1:6443/"
      certificate-authority: pki/ca.crt   # relative to the kubeconfig
contexts:
  - name: sluice
    context: {cluster: default, user: sluice, namespace: kube-system}
current-context: sluice
users:
  - name: sluice
    user:
      tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
""")
write("kubeconfig", "insecure-token.yaml", """apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://dev.example:6443
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context:
    cluster: dev
    user: dev
current-context: dev
users:
- name: dev
  user:
    token: 'eyJhbGciOiJSUzI1NiIs''dummy'
""")
write("kubeconfig", "json.json", j({"kind": "Config", "apiVersion": "v1", "current-context": "x",
      "clusters": [{"name": "c", "cluster": {"server": "https://[fd00::1]:6443", "certificate-authority-data": CA}}],
      "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
      "users": [{"name": "u", "user": {"token": "abc"}}]}))
write("kubeconfig", "yaml-features.yaml", """# written by hand
users:   # two of them
  - name: a   # trailing comment
    user:
      token: "abc#def \\u00e9 \\x41"
  -   name: b
      user: {}
  - name: 'it''s'
list: [one, "two", {k: v}, [x, y]]
text: |
  line one
   indented
folded: >-
  a
  b

  c
nums: [-12, +7, 0, 123456789012345678]
flags: [true, False, ~, null]
...
""")
write("kubeconfig", "exec-plugin.yaml", """apiVersion: v1
kind: Config
clusters:
- name: eks
  cluster:
    server: https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com
contexts:
- name: eks
  context: {cluster: eks, user: eks}
current-context: eks
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod]
""")

# --- datapath: scenario, veth, GSO (2 bytes), then the frame ----------------------------------
def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(b):
    s = 0
    for i in range(0, len(b), 2):
        s += (b[i] << 8) | (b[i + 1] if i + 1 < len(b) else 0)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto=17, ttl=64, payload=b"", frag=0x4000):
    total = 20 + len(payload)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1234, frag, ttl, proto, 0,
                    bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return mac("02:bb:00:00:00:02") + mac("02:aa:00:00:00:02") + b"\x08\x00" + h + payload


def ip6(src, dst, nh=17, hl=64, payload=b""):
    import ipaddress
    h = struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, hl,
                    ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed)
    return mac("02:bb:00:00:00:02") + mac("02:aa:00:00:00:02") + b"\x86\xdd" + h + payload


UDP = struct.pack("!HHHH", 40000, 5000, 16, 0) + b"payload!"
TCP = struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, 0x50, 0x02, 65535, 0, 0)


def frame(name, f, scenario=0, veth=0, gso=0):
    hdr = bytes([scenario, veth, 0x80 | (gso >> 8) if gso else 0, gso & 0xFF])
    write("datapath", name, hdr + f)


frame("v4-local", ip4("10.244.1.2", "10.244.1.3", payload=UDP))
frame("v4-local-ttl1", ip4("10.244.1.2", "10.244.1.3", ttl=1, payload=UDP))
frame("v4-hairpin", ip4("10.244.1.2", "10.244.1.2", payload=TCP))
frame("v4-remote", ip4("10.244.1.2", "10.244.2.9", proto=6, payload=TCP))
frame("v4-remote-catchall", ip4("10.244.1.2", "10.244.7.9", payload=UDP))
frame("v4-remote-native", ip4("10.244.1.2", "10.244.2.9", payload=UDP), scenario=1)
frame("v4-remote-no-overlay", ip4("10.244.1.2", "10.244.2.9", payload=UDP), scenario=2)
frame("v4-remote-too-big", ip4("10.244.1.2", "10.244.2.9", payload=UDP + bytes(300)), scenario=3)
frame("v4-remote-gso-tcp", ip4("10.244.1.2", "10.244.2.9", proto=6, payload=TCP + bytes(200)), scenario=3, gso=100)
frame("v4-service", ip4("10.244.1.2", "10.96.0.10", payload=UDP))
frame("v4-spoofed", ip4("10.244.1.99", "10.244.1.3", payload=UDP))
frame("v4-no-identity", ip4("10.244.1.2", "10.244.1.3", payload=UDP), veth=2)
frame("v4-icmp-error", ip4("10.244.1.2", "10.244.1.3", proto=1, payload=bytes([3, 3, 0, 0, 0, 0, 0, 0])))
frame("v4-later-fragment", ip4("10.244.1.2", "10.244.2.9", payload=bytes(16), frag=185))
frame("v4-options", ip4("10.244.1.2", "10.244.1.3", payload=UDP)[:14] + bytes([0x46]) + ip4("10.244.1.2", "10.244.1.3", payload=UDP)[15:34] + b"\x01\x01\x01\x00" + UDP)
frame("v4-truncated", ip4("10.244.1.2", "10.244.1.3", payload=UDP)[:30])
frame("v6-local", ip6("fd00:10:244:1::2", "fd00:10:244:1::3", payload=UDP))
frame("v6-remote", ip6("fd00:10:244:1::2", "fd00:10:244:2::9", nh=6, payload=TCP))
frame("v6-ndisc", ip6("fe80::aa:ff:fe00:2", "ff02::1:ff00:1", nh=58, payload=bytes([135]) + bytes(23)))
frame("v6-spoofed", ip6("fd00:10:244:1::99", "fd00:10:244:1::3", payload=UDP))
frame("arp", mac("ff:ff:ff:ff:ff:ff") + mac("02:aa:00:00:00:02") + b"\x08\x06" + bytes.fromhex(
      "0001080006040001") + mac("02:aa:00:00:00:02") + bytes([10, 244, 1, 2]) + bytes(6) + bytes([169, 254, 1, 1]))
frame("lldp", mac("01:80:c2:00:00:0e") + mac("02:aa:00:00:00:02") + b"\x88\xcc" + bytes(46))
