#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""helm lint and helm template of charts/sluice, with the default values and with
values-custom.yaml, and the structural rules every rendering must follow."""

import os
import unittest

from shipping_common import (CHART, CUSTOM_VALUES, ESSENTIAL_TAINTS, OTHER_TAINTS, Rendered,
                             check_rendering, chart_meta, helm, helm_template, load_docs,
                             merged_values, run, tolerates)


class ChartLint(unittest.TestCase):
    def test_lint_defaults(self):
        out = run([helm(), "lint", "--strict", CHART]).stdout
        self.assertIn("0 chart(s) failed", out)

    def test_lint_custom_values(self):
        out = run([helm(), "lint", "--strict", CHART, "--values", CUSTOM_VALUES]).stdout
        self.assertIn("0 chart(s) failed", out)

    def test_versions_agree(self):
        meta = chart_meta()
        self.assertEqual(meta["apiVersion"], "v2")
        with open(os.path.join(os.path.dirname(CHART), "..", "CMakeLists.txt"), encoding="utf-8") as f:
            cmake = f.read()
        # The image tag defaults to appVersion, which must be the version CMake builds.
        self.assertIn(f"project(sluice VERSION {meta['appVersion']} ", cmake)


class ChartDefaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Rendered(load_docs(helm_template().stdout))
        cls.values = merged_values()

    def test_structure(self):
        check_rendering(self, self.r, self.values)

    def test_default_choices(self):
        spec = self.r.pod_spec()
        agent = self.r.container("agent")
        self.assertIn("--metrics-addr=0.0.0.0:9962", agent["args"])
        self.assertEqual(spec["tolerations"], [{"operator": "Exists"}])
        for taint in ESSENTIAL_TAINTS + OTHER_TAINTS:
            self.assertTrue(any(tolerates(t, taint) for t in spec["tolerations"]), taint)
        self.assertEqual(agent["image"], f"sluice:{chart_meta()['appVersion']}")
        self.assertNotIn("ServiceMonitor", self.r.by_kind)
        self.assertEqual(self.r.one("DaemonSet")["metadata"]["name"], "sluice")


class ChartCustom(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.r = Rendered(load_docs(helm_template([CUSTOM_VALUES]).stdout))
        cls.values = merged_values(CUSTOM_VALUES)

    def test_structure(self):
        check_rendering(self, self.r, self.values)

    def test_values_reach_the_pod(self):
        spec = self.r.pod_spec()
        agent = self.r.container("agent")
        self.assertIn("--metrics-addr=[::]:19962", agent["args"])
        self.assertIn("--mtu=1400", agent["args"])
        self.assertIn("--chain=portmap,bandwidth", agent["args"])
        self.assertIn({"name": "cni-bin", "mountPath": "/usr/libexec/cni", "readOnly": True},
                      agent["volumeMounts"])
        self.assertEqual(agent["resources"]["limits"]["memory"], "512Mi")
        self.assertEqual(spec["terminationGracePeriodSeconds"], 20)
        self.assertEqual(self.r.one("DaemonSet")["spec"]["template"]["metadata"]["annotations"],
                         {"sluice-test/annotated": "yes"})
        self.assertEqual(self.r.one("DaemonSet")["metadata"]["name"], "sl")
        # bpfRoot below a non-default bpffs mount point: that mount point is what is shared.
        bpffs = [v for v in spec["volumes"] if v["name"] == "bpffs"][0]
        self.assertEqual(bpffs["hostPath"]["path"], "/run/sluice/bpffs")
        # A tolerations list without the catch-all does not tolerate arbitrary taints.
        self.assertFalse(any(tolerates(t, {"key": "dedicated", "value": "infra", "effect": "NoExecute"})
                             for t in spec["tolerations"]))

    def test_digest_overrides_tag(self):
        digest = "sha256:" + "ab" * 32
        r = Rendered(load_docs(helm_template([CUSTOM_VALUES], sets=[f"image.digest={digest}"]).stdout))
        for c in r.all_containers():
            self.assertEqual(c["image"], f"sluice-test/agent@{digest}")

    def test_metrics_disabled(self):
        values = merged_values(CUSTOM_VALUES)
        values["metrics"]["enabled"] = False
        values["metrics"]["serviceMonitor"]["enabled"] = False
        r = Rendered(load_docs(helm_template(
            [CUSTOM_VALUES], sets=["metrics.enabled=false", "metrics.serviceMonitor.enabled=false"]).stdout))
        check_rendering(self, r, values)

    def test_other_release_and_namespace(self):
        values = merged_values(CUSTOM_VALUES)
        values["fullnameOverride"] = ""
        r = Rendered(load_docs(helm_template([CUSTOM_VALUES], sets=["fullnameOverride="],
                                             release="net", namespace="cni-system").stdout))
        check_rendering(self, r, values, release="net", namespace="cni-system")
        self.assertEqual(r.one("DaemonSet")["metadata"]["name"], "net-sluice")


class CheckerCatchesMistakes(unittest.TestCase):
    """The structural checks fail on the mistakes they exist for (each applied to a copy of
    the default rendering), so a passing check means something."""

    MUTATIONS = {
        "extra RBAC verb": lambda r: r.one("ClusterRole")["rules"][0]["verbs"].append("get"),
        "RBAC on pods too": lambda r: r.one("ClusterRole")["rules"][0]["resources"].append("pods"),
        "probe on another port": lambda r: r.container("agent")["livenessProbe"]["httpGet"].update(port=9963),
        "metrics on loopback": lambda r: r.container("agent")["args"].__setitem__(
            [i for i, a in enumerate(r.container("agent")["args"]) if a.startswith("--metrics-addr")][0],
            "--metrics-addr=127.0.0.1:9962"),
        "mount without volume": lambda r: r.pod_spec()["volumes"].pop(0),
        "no NODE_NAME": lambda r: r.container("agent")["env"].pop(0),
        "maxUnavailable 2": lambda r: r.one("DaemonSet")["spec"]["updateStrategy"]["rollingUpdate"].update(
            maxUnavailable=2),
        "no priority class": lambda r: r.pod_spec().pop("priorityClassName"),
        "privileged agent": lambda r: r.container("agent")["securityContext"].update(privileged=True),
        "extra capability": lambda r: r.container("agent")["securityContext"]["capabilities"]["add"].append(
            "SYS_PTRACE"),
        "not-ready taint untolerated": lambda r: r.pod_spec().update(
            tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]),
        "hostPID": lambda r: r.pod_spec().update(hostPID=True),
        "state dir not shared with the host": lambda r: [
            m.update(mountPath="/state") for m in r.container("agent")["volumeMounts"] if m["name"] == "state"],
        "undocumented flag": lambda r: r.container("agent")["args"].append("--frobnicate=1"),
        "selector not matching": lambda r: r.one("DaemonSet")["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "other"}),
        "missing standard label": lambda r: r.one("ServiceAccount")["metadata"]["labels"].pop(
            "app.kubernetes.io/managed-by"),
    }

    def test_each_mutation_is_caught(self):
        text = helm_template().stdout
        values = merged_values()
        for name, mutate in self.MUTATIONS.items():
            with self.subTest(name):
                r = Rendered(load_docs(text))
                mutate(r)
                with self.assertRaises(AssertionError, msg=f"mutation not caught: {name}"):
                    check_rendering(self, r, values)


class Notes(unittest.TestCase):
    def test_notes_tell_how_to_check(self):
        proc = run([helm(), "install", "sluice", CHART, "--dry-run=client", "--namespace", "kube-system"])
        notes = proc.stdout.split("NOTES:", 1)[1]
        for want in ("rollout status daemonset/sluice", "kubectl get nodes",
                     "sluice-agent status", "/healthz", "/metrics", "--allocate-node-cidrs"):
            self.assertIn(want, notes)


if __name__ == "__main__":
    unittest.main(verbosity=2)
