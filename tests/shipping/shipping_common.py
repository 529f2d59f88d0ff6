# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the shipping tests: paths, helm, YAML, and the structural checks that
every rendering of the chart (defaults, custom values, the committed manifest) must pass."""

import copy
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(REPO, "charts", "sluice")
CUSTOM_VALUES = os.path.join(REPO, "tests", "shipping", "values-custom.yaml")
MANIFEST = os.path.join(REPO, "manifests", "sluice.yaml")

try:
    import yaml  # PyYAML: Debian's python3-yaml
except ImportError:  # pragma: no cover - a setup error, reported plainly
    sys.stderr.write("shipping tests need PyYAML for python3: apt-get install python3-yaml "
                     "(hack/install-deps.sh)\n")
    sys.exit(1)


def helm():
    path = shutil.which("helm")
    if path is None:
        raise RuntimeError("helm is not installed: run `bash hack/install-helm.sh` "
                           "(the shipping_tools test does this as root)")
    return path


def run(cmd, check=True, **kw):
    proc = subprocess.run(cmd, cwd=kw.pop("cwd", REPO), capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def helm_template(values_files=(), sets=(), release="sluice", namespace="kube-system", check=True):
    cmd = [helm(), "template", release, CHART, "--namespace", namespace]
    for f in values_files:
        cmd += ["--values", f]
    for s in sets:
        cmd += ["--set", s]
    return run(cmd, check=check)


def load_docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def load_yaml_file(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def merged_values(*override_files):
    """The chart's values.yaml with override files deep-merged over it, as helm does."""
    def merge(base, over):
        for k, v in over.items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                merge(base[k], v)
            else:
                base[k] = copy.deepcopy(v)
        return base
    values = load_yaml_file(os.path.join(CHART, "values.yaml"))
    for f in override_files:
        merge(values, load_yaml_file(f))
    return values


def chart_meta():
    return load_yaml_file(os.path.join(CHART, "Chart.yaml"))


# ---- what a taint toleration means (k8s.io/api/core/v1 Toleration.ToleratesTaint) ---------
def tolerates(tol, taint):
    effect = tol.get("effect", "")
    if effect and effect != taint["effect"]:
        return False
    # A NoExecute toleration with tolerationSeconds evicts the pod after that time.
    if taint["effect"] == "NoExecute" and tol.get("tolerationSeconds") is not None:
        return False
    key = tol.get("key", "")
    op = tol.get("operator", "Equal")
    if key == "":
        return op == "Exists"
    if key != taint["key"]:
        return False
    if op == "Exists":
        return True
    return tol.get("value", "") == taint.get("value", "")


# Taints a CNI agent must tolerate: the node is NotReady/unreachable/without network exactly
# because the agent is not running yet, the control plane needs pod networking too, and a
# cloud node stays uninitialized until its controller runs (which may need pod networking).
ESSENTIAL_TAINTS = [
    {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
    {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
]
# With the default "tolerate everything", anything else too.
OTHER_TAINTS = [
    {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    {"key": "dedicated", "value": "infra", "effect": "NoExecute"},
    {"key": "example.com/gpu", "value": "", "effect": "PreferNoSchedule"},
]


def documented_agent_flags():
    """The agent's daemon flags as docs/internals.md pins them."""
    with open(os.path.join(REPO, "docs", "internals.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## The agent", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(--[a-z][a-z0-9-]*)", section))


def parse_host_port(addr):
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", addr)
    if not m:
        raise AssertionError(f"--metrics-addr {addr!r} is not host:port")
    return (m.group(1) or m.group(3)), int(m.group(2) or m.group(4))


def args_map(args):
    out = {}
    for a in args:
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            out[k] = v
        elif a.startswith("--"):
            out[a] = True
    return out


class Rendered:
    """One rendering of the chart, indexed by kind."""

    def __init__(self, docs):
        self.docs = docs
        self.by_kind = {}
        for d in docs:
            self.by_kind.setdefault(d["kind"], []).append(d)

    def one(self, kind):
        objs = self.by_kind.get(kind, [])
        if len(objs) != 1:
            raise AssertionError(f"expected exactly one {kind}, got {len(objs)}")
        return objs[0]

    def pod_spec(self):
        return self.one("DaemonSet")["spec"]["template"]["spec"]

    def container(self, name, init=False):
        spec = self.pod_spec()
        for c in spec.get("initContainers" if init else "containers", []):
            if c["name"] == name:
                return c
        raise AssertionError(f"no {'init ' if init else ''}container {name!r}")

    def all_containers(self):
        spec = self.pod_spec()
        return spec.get("initContainers", []) + spec.get("containers", [])


def check_rendering(tc, r, values, release="sluice", namespace="kube-system"):
    """Every structural rule the rendered chart must follow, asserted on unittest case `tc`."""
    meta = chart_meta()
    ds = r.one("DaemonSet")
    spec = r.pod_spec()
    agent = r.container("agent")
    fullname = values.get("fullnameOverride") or release

    # Standard labels on every object.
    for d in r.docs:
        labels = d["metadata"].get("labels", {})
        where = f"{d['kind']}/{d['metadata']['name']}"
        tc.assertEqual(labels.get("app.kubernetes.io/name"), values.get("nameOverride") or "sluice", where)
        tc.assertEqual(labels.get("app.kubernetes.io/instance"), release, where)
        tc.assertEqual(labels.get("app.kubernetes.io/version"), str(meta["appVersion"]), where)
        tc.assertEqual(labels.get("app.kubernetes.io/managed-by"), "Helm", where)
        tc.assertEqual(labels.get("app.kubernetes.io/component"), "agent", where)
        tc.assertEqual(labels.get("helm.sh/chart"), f"sluice-{meta['version']}", where)
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            tc.assertEqual(d["metadata"].get("namespace"), namespace, where)

    # The DaemonSet selects its own pods; the selector is a subset of the pod labels.
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    for k, v in ds["spec"]["selector"]["matchLabels"].items():
        tc.assertEqual(pod_labels.get(k), v, f"selector label {k}")

    # Rollout, scheduling, priority.
    tc.assertEqual(ds["spec"]["updateStrategy"]["type"], "RollingUpdate")
    tc.assertEqual(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"], 1)
    tc.assertEqual(spec.get("priorityClassName"), "system-node-critical")
    tc.assertIs(spec.get("hostNetwork"), True)
    tc.assertFalse(spec.get("hostPID", False))
    tc.assertFalse(spec.get("hostIPC", False))
    tc.assertGreater(spec.get("terminationGracePeriodSeconds", 0), 0)
    tols = spec.get("tolerations", [])
    tc.assertEqual(tols, values["tolerations"])
    for taint in ESSENTIAL_TAINTS:
        tc.assertTrue(any(tolerates(t, taint) for t in tols), f"taint {taint} is not tolerated: {tols}")
    tc.assertEqual(spec.get("nodeSelector", {}), values.get("nodeSelector") or {})
    tc.assertEqual(spec.get("imagePullSecrets", []), values.get("imagePullSecrets") or [])

    # Every volumeMount has a volume; every volume is mounted somewhere; mount paths unique.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounted = set()
    for c in r.all_containers():
        paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
        tc.assertEqual(len(paths), len(set(paths)), f"{c['name']}: duplicate mountPath")
        for m in c.get("volumeMounts", []):
            tc.assertIn(m["name"], volumes, f"{c['name']}: volumeMount {m['name']} has no volume")
            mounted.add(m["name"])
    tc.assertEqual(mounted, set(volumes), "volumes nobody mounts")

    # The agent writes host paths into the conflist the plugin reads on the node, so each
    # host directory is mounted at the same path.
    for v in volumes.values():
        if "hostPath" in v:
            for c in r.all_containers():
                for m in c.get("volumeMounts", []):
                    if m["name"] == v["name"]:
                        tc.assertEqual(m["mountPath"], v["hostPath"]["path"],
                                       f"{c['name']}: hostPath {v['name']} mounted elsewhere")

    def host_mount(container, host_path):
        for m in container.get("volumeMounts", []):
            v = volumes[m["name"]]
            if "hostPath" in v and (host_path == v["hostPath"]["path"]
                                    or host_path.startswith(v["hostPath"]["path"].rstrip("/") + "/")):
                return m
        return None

    # Privilege: only the containers with a Bidirectional mount are privileged, and a
    # Bidirectional mount needs a privileged container (API validation).
    for c in r.all_containers():
        sc = c.get("securityContext", {})
        bidi = [m for m in c.get("volumeMounts", []) if m.get("mountPropagation") == "Bidirectional"]
        tc.assertEqual(bool(sc.get("privileged")), bool(bidi),
                       f"{c['name']}: privileged must be exactly the Bidirectional-mount reason")
        if not sc.get("privileged"):
            tc.assertIs(sc.get("allowPrivilegeEscalation"), False, c["name"])
            tc.assertIn("ALL", sc.get("capabilities", {}).get("drop", []), c["name"])
            tc.assertIs(sc.get("readOnlyRootFilesystem"), True, c["name"])
    asc = agent["securityContext"]
    tc.assertFalse(asc.get("privileged", False), "the agent container must not be privileged")
    tc.assertEqual(sorted(asc["capabilities"]["add"]), sorted(["NET_ADMIN", "BPF", "PERFMON", "SYS_ADMIN"]))
    tc.assertEqual(asc["capabilities"]["drop"], ["ALL"])

    # The agent's command line: documented flags only, values from values.yaml.
    tc.assertEqual(agent["command"], ["/usr/local/bin/sluice-agent"])
    documented = documented_agent_flags()
    for a in agent["args"]:
        tc.assertTrue(a.startswith("--"), a)
        tc.assertIn(a.split("=", 1)[0], documented, f"agent flag {a} is not in docs/internals.md")
    args = args_map(agent["args"])
    tc.assertEqual(args["--node-name"], "$(NODE_NAME)")
    tc.assertEqual(args["--bpf-root"], values["bpfRoot"])
    tc.assertEqual(args["--state-dir"], values["stateDir"])
    tc.assertEqual(args["--cni-conf-dir"], values["cniConfDir"])
    tc.assertEqual(args["--cluster-cidr"], values["clusterCIDR"])
    tc.assertEqual(args["--mode"], values["mode"])
    tc.assertEqual(args["--vni"], str(values["vni"]))
    tc.assertEqual(args["--vxlan-port"], str(values["vxlanPort"]))
    tc.assertEqual(args["--log-level"], values["logLevel"])
    if values["mtu"]:
        tc.assertEqual(args["--mtu"], str(values["mtu"]))
    else:
        tc.assertNotIn("--mtu", args)
    for key, path in (("--bpf-root", values["bpfRoot"]), ("--state-dir", values["stateDir"]),
                      ("--cni-conf-dir", values["cniConfDir"])):
        m = host_mount(agent, path)
        tc.assertIsNotNone(m, f"agent {key}={path} is not on a hostPath mount")
        tc.assertFalse(m.get("readOnly", False) and key != "--bpf-root", f"{key} mounted read-only")
    bpf_mount = host_mount(agent, values["bpfRoot"])
    tc.assertEqual(bpf_mount.get("mountPropagation"), "HostToContainer")
    # Chained plugins: named to the agent, which asks their VERSION in the CNI bin directory,
    # mounted read-only for that; without a chain the agent does not see the directory.
    chain = values.get("chain") or []
    bin_mount = host_mount(agent, values["cniBinDir"])
    if chain:
        tc.assertEqual(args["--chain"], ",".join(chain))
        tc.assertEqual(args["--cni-bin-dir"], values["cniBinDir"])
        tc.assertIsNotNone(bin_mount, "the chained plugins' directory is not mounted in the agent")
        tc.assertIs(bin_mount.get("readOnly"), True, "the agent only reads the CNI bin directory")
    else:
        tc.assertNotIn("--chain", args)
        tc.assertIsNone(bin_mount, "the agent mounts the CNI bin directory without a chain")

    # NODE_NAME from the downward API; extraEnv passed through.
    env = {e["name"]: e for e in agent.get("env", [])}
    tc.assertEqual(env.get("NODE_NAME"), {"name": "NODE_NAME",
                                      "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    for e in values.get("extraEnv") or []:
        tc.assertEqual(env.get(e["name"]), e)
    k8s = values.get("kubernetes") or {}
    if k8s.get("serviceHost"):
        tc.assertEqual(env["KUBERNETES_SERVICE_HOST"]["value"], k8s["serviceHost"])
        tc.assertEqual(env["KUBERNETES_SERVICE_PORT"]["value"], str(k8s["servicePort"]))
    else:
        tc.assertNotIn("KUBERNETES_SERVICE_HOST", env)

    # Probes hit /healthz on the port the agent serves (--metrics-addr), by port name.
    host, port = parse_host_port(args["--metrics-addr"])
    tc.assertEqual(port, values["metrics"]["port"])
    tc.assertFalse(host.startswith("127.") or host in ("::1", "localhost"),
                   "the kubelet cannot probe a loopback-only agent")
    ports = {p["name"]: p for p in agent.get("ports", [])}
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = agent.get(probe_name)
        tc.assertIsNotNone(probe, probe_name)
        get = probe["httpGet"]
        tc.assertEqual(get["path"], "/healthz", probe_name)
        probe_port = get["port"]
        if isinstance(probe_port, str):
            tc.assertIn(probe_port, ports, f"{probe_name} names an undeclared port")
            probe_port = ports[probe_port]["containerPort"]
        tc.assertEqual(probe_port, port, f"{probe_name} port != --metrics-addr port")
    tc.assertEqual(ports["metrics"]["containerPort"], port)
    tc.assertTrue(agent.get("resources", {}).get("requests"), "resource requests")

    # Images: every container runs the chart's image.
    img = values["image"]
    want = (f"{img['repository']}@{img['digest']}" if img.get("digest")
            else f"{img['repository']}:{img.get('tag') or meta['appVersion']}")
    for c in r.all_containers():
        tc.assertEqual(c["image"], want, c["name"])
        tc.assertEqual(c["imagePullPolicy"], img["pullPolicy"], c["name"])

    # Init steps: the datapath loader sees the bpffs Bidirectionally and gets the same
    # datapath settings and state dir as the agent; the plugin installer writes into cniBinDir by rename.
    loader = r.container("load-datapath", init=True)
    largs = args_map(loader["command"][1:])
    tc.assertEqual(loader["command"][:2], ["/usr/local/bin/sluice-agent", "--load-only"])
    tc.assertEqual(largs["--bpf-root"], values["bpfRoot"])
    tc.assertEqual(largs["--vni"], str(values["vni"]))
    tc.assertEqual(largs["--mode"], values["mode"])
    lm = host_mount(loader, values["bpfRoot"])
    tc.assertIsNotNone(lm, "load-datapath has no bpffs mount")
    tc.assertEqual(lm.get("mountPropagation"), "Bidirectional")
    tc.assertEqual(bpf_mount["name"], lm["name"])
    # ... and takes the agent's instance lock in the same host state dir, so that it waits for
    # an agent still running on the node (a rollout with surge) instead of swapping under it.
    tc.assertEqual(largs["--state-dir"], values["stateDir"])
    sm = host_mount(loader, values["stateDir"])
    tc.assertIsNotNone(sm, "load-datapath does not see the host's state dir")
    tc.assertEqual(sm["mountPath"], values["stateDir"])
    installer = r.container("install-cni-bin", init=True)
    script = installer["command"][-1]
    tc.assertIn("mv -f", script)
    tc.assertIn("/usr/local/bin/sluice", script)
    tc.assertEqual({e["name"]: e.get("value") for e in installer["env"]}["CNI_BIN_DIR"], values["cniBinDir"])
    tc.assertIsNotNone(host_mount(installer, values["cniBinDir"]), "install-cni-bin cannot reach cniBinDir")
    tc.assertFalse(installer["securityContext"].get("capabilities", {}).get("add"))

    # RBAC: exactly list+watch on nodes, bound to the DaemonSet's service account.
    sa = r.one("ServiceAccount")
    tc.assertEqual(spec["serviceAccountName"], sa["metadata"]["name"])
    role = r.one("ClusterRole")
    rules = role["rules"]
    tc.assertEqual(len(rules), 1, rules)
    tc.assertEqual(rules[0]["apiGroups"], [""])
    tc.assertEqual(rules[0]["resources"], ["nodes"])
    tc.assertEqual(sorted(rules[0]["verbs"]), ["list", "watch"])
    tc.assertNotIn("resourceNames", rules[0])
    tc.assertNotIn("Role", r.by_kind)
    binding = r.one("ClusterRoleBinding")
    tc.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                         "name": role["metadata"]["name"]})
    tc.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                          "namespace": namespace}])
    tc.assertTrue(sa["metadata"]["name"].startswith(fullname))

    # Metrics Service (headless, selects the agents) and the optional ServiceMonitor.
    services = r.by_kind.get("Service", [])
    if values["metrics"]["enabled"]:
        tc.assertEqual(len(services), 1)
        svc = services[0]
        tc.assertEqual(svc["spec"]["clusterIP"], "None")
        for k, v in svc["spec"]["selector"].items():
            tc.assertEqual(pod_labels.get(k), v)
        sp = svc["spec"]["ports"][0]
        tc.assertEqual((sp["name"], sp["port"], sp["targetPort"]), ("metrics", port, "metrics"))
    else:
        tc.assertEqual(services, [])
    monitors = r.by_kind.get("ServiceMonitor", [])
    if values["metrics"]["serviceMonitor"]["enabled"]:
        tc.assertEqual(len(monitors), 1)
        sm = monitors[0]
        tc.assertEqual(sm["apiVersion"], "monitoring.coreos.com/v1")
        for k, v in sm["spec"]["selector"]["matchLabels"].items():
            tc.assertEqual(services[0]["metadata"]["labels"].get(k), v)
        tc.assertEqual(sm["spec"]["endpoints"][0]["port"], "metrics")
        tc.assertEqual(sm["spec"]["endpoints"][0]["path"], "/metrics")
        for k, v in (values["metrics"]["serviceMonitor"].get("labels") or {}).items():
            tc.assertEqual(sm["metadata"]["labels"].get(k), v)
    else:
        tc.assertEqual(monitors, [])

    tc.assertEqual(set(r.by_kind) - {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet",
                                     "Service", "ServiceMonitor"}, set(), "unexpected kinds")
