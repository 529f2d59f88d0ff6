#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""hack/kind-e2e.sh --dry-run prints the whole e2e run (cluster from hack/kind/cluster.yaml,
image build and load, helm install, rollouts, the connectivity suite, the restart under
traffic, teardown) and exits 0 without touching docker, kind, helm or kubectl: stand-ins for
those that record any call are first on PATH and must stay silent."""

import os
import stat
import subprocess
import tempfile
import unittest

from shipping_common import REPO, Rendered, helm_template, load_docs, load_yaml_file

SCRIPT = os.path.join(REPO, "hack", "kind-e2e.sh")
TOOLS = ("docker", "kind", "helm", "kubectl")


class KindDryRun(unittest.TestCase):
    def run_script(self, *args):
        with tempfile.TemporaryDirectory(prefix="slt-kind-") as tmp:
            record = os.path.join(tmp, "called")
            for tool in TOOLS:
                path = os.path.join(tmp, tool)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(f'#!/bin/sh\necho "{tool} $*" >> "{record}"\nexit 97\n')
                os.chmod(path, stat.S_IRWXU)
            env = dict(os.environ, PATH=f"{tmp}:/usr/bin:/bin")
            proc = subprocess.run(["bash", SCRIPT, *args], cwd=tmp, env=env, capture_output=True,
                                  text=True, timeout=120)
            called = open(record, encoding="utf-8").read() if os.path.exists(record) else ""
        return proc, called

    def test_prints_the_run_without_running_it(self):
        proc, called = self.run_script("--dry-run")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(called, "", "--dry-run ran a tool")
        lines = [l for l in proc.stdout.splitlines() if l.startswith("+ ")]
        self.assertEqual(len(lines), len(proc.stdout.splitlines()), "stdout holds only commands")
        expected_in_order = [
            "+ kind create cluster --name sluice-e2e --config hack/kind/cluster.yaml",
            "+ docker build -t sluice:e2e ",
            "+ kind load docker-image sluice:e2e --name sluice-e2e",
            "+ helm upgrade --install sluice charts/sluice --kube-context kind-sluice-e2e --namespace kube-system "
            "--set image.repository=sluice --set image.tag=e2e --set image.pullPolicy=Never "
            "--set clusterCIDR=10.244.0.0/16 --values hack/kind/values.yaml",
            "+ kubectl --context kind-sluice-e2e -n kube-system rollout status daemonset/sluice",
            "+ kubectl --context kind-sluice-e2e wait --for=condition=Ready nodes --all",
            "+ kubectl --context kind-sluice-e2e apply -f hack/kind/e2e-workloads.yaml",
            "+ docker run -d --name sluice-e2e-outside --network kind ",
            "+ kubectl --context kind-sluice-e2e -n sl-e2e exec client-a -- wget -q -O - -T 5 http://10.244.1.10:8080/",
            "+ kubectl --context kind-sluice-e2e -n sl-e2e exec client-a -- nslookup kubernetes.default.svc.cluster.local",
            "+ docker exec sluice-e2e-worker curl -sf --max-time 5 http://172.18.0.2:30980/",
            "+ docker exec sluice-e2e-worker curl -sf --max-time 5 http://172.18.0.2:18080/",
            "+ kubectl --context kind-sluice-e2e -n sl-e2e exec client-a -- wget -q -O - -T 5 http://172.18.0.100:8080/",
            "+ kubectl --context kind-sluice-e2e -n sl-e2e exec client-a -- sh -c ",
            "+ kubectl --context kind-sluice-e2e -n kube-system rollout restart daemonset/sluice",
            "+ kubectl --context kind-sluice-e2e -n sl-e2e exec client-a -- touch /tmp/sl-stop",
            "+ docker rm -f sluice-e2e-outside",
            "+ kind delete cluster --name sluice-e2e",
        ]
        pos = 0
        for want in expected_in_order:
            found = [i for i in range(pos, len(lines)) if lines[i].startswith(want)]
            self.assertTrue(found, f"not printed (in order): {want!r}")
            pos = found[0] + 1
        # Every pair of client and server pods, on the same node and across nodes.
        for c in "abc":
            for ip in ("10.244.1.10", "10.244.2.10", "10.244.0.10"):
                self.assertIn(f"exec client-{c} -- wget -q -O - -T 5 http://{ip}:8080/", proc.stdout)
                self.assertIn(f"exec client-{c} -- ping -c 2 -W 2 {ip}", proc.stdout)
        # A NodePort on each node reached from each node.
        self.assertEqual(sum(":30980/" in l for l in lines), 9)
        # A hostPort (portmap chained through the chart) on each node reached from each node.
        self.assertEqual(sum(":18080/" in l for l in lines), 9)

    def test_keep_leaves_the_cluster(self):
        proc, called = self.run_script("--dry-run", "--keep", "--name", "other", "--image", "reg/x:1")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(called, "")
        self.assertIn("+ kind create cluster --name other --config hack/kind/cluster.yaml", proc.stdout)
        self.assertIn("--set image.repository=reg/x --set image.tag=1", proc.stdout)
        self.assertNotIn("kind delete cluster", proc.stdout)

    def test_no_build(self):
        proc, _ = self.run_script("--dry-run", "--no-build")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("docker build", proc.stdout)
        self.assertIn("kind load docker-image sluice:e2e", proc.stdout)

    def test_bad_arguments(self):
        for args in (["--frobnicate"], ["--dry-run", "--image", "notag"]):
            with self.subTest(args=args):
                proc, called = self.run_script(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertEqual(called, "")

    def test_kind_config(self):
        cfg = load_yaml_file(os.path.join(REPO, "hack", "kind", "cluster.yaml"))
        self.assertEqual(cfg["kind"], "Cluster")
        self.assertEqual(cfg["apiVersion"], "kind.x-k8s.io/v1alpha4")
        self.assertIs(cfg["networking"]["disableDefaultCNI"], True)
        self.assertEqual(cfg["networking"]["podSubnet"], "10.244.0.0/16")
        roles = [n["role"] for n in cfg["nodes"]]
        self.assertEqual(sorted(roles), ["control-plane", "worker", "worker"])
        # The chart's clusterCIDR must be the cluster's pod subnet.
        values = load_yaml_file(os.path.join(REPO, "charts", "sluice", "values.yaml"))
        self.assertEqual(values["clusterCIDR"], cfg["networking"]["podSubnet"])

    def test_host_port_through_the_chart_chain(self):
        # The values the e2e installs with pass the chart's schema and chain portmap, and the
        # servers' hostPort is the port the script probes.
        kind_values = os.path.join(REPO, "hack", "kind", "values.yaml")
        self.assertEqual(load_yaml_file(kind_values)["chain"], ["portmap"])
        r = Rendered(load_docs(helm_template(values_files=[kind_values]).stdout))
        self.assertIn("--chain=portmap", r.container("agent")["args"])
        with open(os.path.join(REPO, "hack", "kind", "e2e-workloads.yaml"), encoding="utf-8") as f:
            workloads = load_docs(f.read())
        server = [d for d in workloads if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "server"][0]
        ports = server["spec"]["template"]["spec"]["containers"][0]["ports"]
        with open(SCRIPT, encoding="utf-8") as f:
            self.assertIn(f"\nHOST_PORT={ports[0]['hostPort']} ", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
