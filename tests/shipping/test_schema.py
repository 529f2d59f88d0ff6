#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""values.schema.json (and the chart's own checks) reject bad values at helm time, naming the
value and what is wrong with it; good edge values pass."""

import unittest

from shipping_common import helm_template

# (--set arguments, substrings the error must contain)
BAD = [
    (["mtu=big"], ["/mtu", "want integer"]),
    (["mtu=100"], ["/mtu", "576"]),
    (["mtu=70000"], ["/mtu", "maximum"]),
    (["vni=-1"], ["/vni", "minimum"]),
    (["vni=16777216"], ["/vni", "maximum"]),
    (["image.tag=3"], ["/image/tag", "want string"]),
    (["image.tag=bad tag"], ["/image/tag", "does not match pattern"]),
    (["image.pullPolicy=Sometimes"], ["/image/pullPolicy", "Always"]),
    (["image.digest=sha256:nothex"], ["/image/digest"]),
    (["vxlanPort=0"], ["/vxlanPort", "minimum"]),
    (["vxlanPort=65536"], ["/vxlanPort", "maximum"]),
    (["logLevel=loud"], ["/logLevel", "info"]),
    (["chain=portmap"], ["/chain", "want array"]),
    (["chain={sluice}"], ["/chain/0", "'not' failed"]),
    (["chain={Portmap}"], ["/chain/0", "does not match pattern"]),
    (["chain={../portmap}"], ["/chain/0", "does not match pattern"]),
    (["chain={portmap,portmap}"], ["/chain", "equal"]),
    (["mode=bgp"], ["/mode", "vxlan"]),
    (["clusterCIDR=10.244.0.0"], ["/clusterCIDR", "does not match pattern"]),
    (["clusterCIDR=10.244.0.0/33"], ["/clusterCIDR"]),
    (["clusterCIDR=10.244.0.0/16\\,10.245.0.0/16"], ["/clusterCIDR", "does not match pattern"]),
    (["clusterCIDR=10.244.0.0/16\\,fd00::/129"], ["/clusterCIDR"]),
    (["bpfRoot=sys/fs/bpf"], ["/bpfRoot", "does not match pattern"]),
    (["stateDir=/var/lib/sluice/"], ["/stateDir"]),
    (["cniBinDir="], ["/cniBinDir"]),
    (["metrics.port=99999"], ["/metrics/port", "maximum"]),
    (["metrics.enabled=maybe"], ["/metrics/enabled", "want boolean"]),
    (["mtuu=1400"], ["additional properties 'mtuu' not allowed"]),
    (["metrics.prot=1"], ["/metrics", "additional properties 'prot' not allowed"]),
    (["tolerations=none"], ["/tolerations", "want array"]),
    (["tolerations[0].operator=Maybe"], ["/tolerations/0/operator"]),
    (["extraEnv[0].value=x"], ["/extraEnv/0", "name"]),
    (["terminationGracePeriodSeconds=0"], ["/terminationGracePeriodSeconds"]),
    # Caught by the chart's own checks (templates/_helpers.tpl, sluice.validate).
    (["metrics.bindAddress=127.0.0.1"], ["metrics.bindAddress", "loopback"]),
    (["metrics.serviceMonitor.enabled=true", "metrics.enabled=false"],
     ["metrics.serviceMonitor.enabled needs metrics.enabled"]),
    (["kubernetes.serviceHost=198.18.0.10"], ["kubernetes.servicePort is not"]),
    (["bpfRoot=/sluice"], ["bpfRoot", "below a bpffs mount point"]),
]

GOOD = [
    ["chain={portmap}"], ["chain={portmap,bandwidth}"],
    ["mtu=0"], ["mtu=576"], ["mtu=9000"], ["vni=1"], ["vni=16777215"], ["vxlanPort=4789"],
    ["image.tag=v1.2.3_rc-1"], ["clusterCIDR=192.168.0.0/16"], ["logLevel=trace"], ["mode=native"],
    ["clusterCIDR=10.244.0.0/16\\,fd00:10:244::/48"],
    ["metrics.bindAddress=::"], ["metrics.bindAddress=198.18.0.1"],
    ["kubernetes.serviceHost=198.18.0.10", "kubernetes.servicePort=6443"],
]


class Schema(unittest.TestCase):
    def test_bad_values_are_rejected_clearly(self):
        for sets, wants in BAD:
            with self.subTest(sets=sets):
                proc = helm_template(sets=sets, check=False)
                self.assertNotEqual(proc.returncode, 0, f"{sets} was accepted")
                self.assertEqual(proc.stdout.strip(), "", "nothing is rendered for bad values")
                for want in wants:
                    self.assertIn(want, proc.stderr, f"{sets}: error does not say {want!r}")

    def test_good_values_pass(self):
        for sets in GOOD:
            with self.subTest(sets=sets):
                proc = helm_template(sets=sets, check=False)
                self.assertEqual(proc.returncode, 0, f"{sets}: {proc.stderr}")
                self.assertIn("kind: DaemonSet", proc.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
