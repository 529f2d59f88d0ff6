// SPDX-License-Identifier: Apache-2.0
// The agent's side of dual stack: --cluster-cidr with an IPv4 and an IPv6 CIDR, the second IPAM
// range set in the conflist, the ip6 masquerade table, IPv6 pod CIDRs of other nodes in sl_routes
// (towards their IPv4 underlay address) and as kernel routes through sluice_vxlan from this
// node's IPv6 address.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "agent_test_util.h"
#include "conflist.h"
#include "flags.h"
#include "masquerade.h"
#include "node_setup.h"
#include "reconcile.h"

namespace sluice::agent {
namespace {

using nlohmann::json;
using testutil::cidr;
using testutil::ip;

TEST(DualStackFlags, ClusterCidrTakesOnePerFamilyIpv4First) {
  auto def = parseArgs({"--node-name", "n1"}, nullptr);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->clusterCidrs, (std::vector<net::Cidr>{cidr("10.244.0.0/16")}));

  auto both = parseArgs({"--node-name", "n1", "--cluster-cidr", "fd00:10:244::/48,10.244.0.0/16"}, nullptr);
  ASSERT_TRUE(both.ok()) << both.error().message();
  EXPECT_EQ(both->clusterCidrs, (std::vector<net::Cidr>{cidr("10.244.0.0/16"), cidr("fd00:10:244::/48")}));

  auto v6 = parseArgs({"--node-name", "n1", "--cluster-cidr=fd00:10:244::1/48"}, nullptr);
  ASSERT_TRUE(v6.ok()) << v6.error().message();
  EXPECT_EQ(v6->clusterCidrs, (std::vector<net::Cidr>{cidr("fd00:10:244::/48")})) << "host bits cleared";

  for (const char* bad : {"10.244.0.0/16,10.245.0.0/16", "fd00::/48,fd01::/48", "10.244.0.0/16,", ",fd00::/48",
                          "10.244.0.0/16,fd00::", "10.244.0.0/16;fd00::/48"}) {
    auto o = parseArgs({"--node-name", "n1", "--cluster-cidr", bad}, nullptr);
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_NE(o.error().message().find("--cluster-cidr"), std::string::npos) << o.error().message();
  }
}

TEST(DualStackConflist, TheIpv6PodCidrIsASecondRangeSet) {
  ConflistParams p;
  p.podCidr = cidr("10.244.1.0/24");
  p.podCidr6 = cidr("fd00:10:244:1::/64");
  p.mtu = 1450;
  p.bpfRoot = "/sys/fs/bpf/sluice";
  p.stateDir = "/var/lib/sluice";
  p.logLevel = "info";
  json c = json::parse(renderConflist(p));
  EXPECT_EQ(c["plugins"][0]["ipam"]["ranges"],
            json::parse(R"([[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]])"));
  p.podCidr6.reset();
  c = json::parse(renderConflist(p));
  EXPECT_EQ(c["plugins"][0]["ipam"]["ranges"], json::parse(R"([[{"subnet": "10.244.1.0/24"}]])"));
}

TEST(DualStackMasquerade, AnIp6TableNextToTheIpTable) {
  const std::vector<net::IpAddr> nodes{ip("198.18.0.1"), ip("198.18.0.2"), ip("fd00:198:18::2")};
  const std::string v6 = masqueradeRuleset(cidr("fd00:10:244::/48"), "sluice_vxlan", nodes);
  EXPECT_EQ(v6.rfind("table ip6 sluice\ndelete table ip6 sluice\ntable ip6 sluice {", 0), 0u) << v6;
  EXPECT_NE(v6.find("type ipv6_addr"), std::string::npos) << v6;
  EXPECT_NE(v6.find("elements = { fd00:198:18::2 }"), std::string::npos) << "IPv6 node addresses only\n" << v6;
  EXPECT_NE(v6.find("ip6 saddr fd00:10:244::/48 ip6 daddr != fd00:10:244::/48 ip6 daddr != @nodes oifname != "
                    "\"sluice_vxlan\" masquerade"),
            std::string::npos)
      << v6;

  const std::vector<net::Cidr> both{cidr("10.244.0.0/16"), cidr("fd00:10:244::/48")};
  const std::string script = masqueradeScript(both, "sluice_vxlan", nodes);
  EXPECT_EQ(script, masqueradeRuleset(both[0], "sluice_vxlan", nodes) + v6) << "both tables, one transaction";
  EXPECT_EQ(masqueradeScript({both[0]}, "sluice_vxlan", nodes), masqueradeRuleset(both[0], "sluice_vxlan", nodes))
      << "IPv4 only: exactly the IPv4 table, as before dual stack";
}

std::vector<NodeInfo> dualStackNodes() {
  return {{"node-1", ip("198.18.0.1"), {cidr("10.244.1.0/24"), cidr("fd00:10:244:1::/64")}},
          {"node-2", ip("198.18.0.2"), {cidr("10.244.2.0/24"), cidr("fd00:10:244:2::/64")}},
          {"node-3", ip("198.18.0.3"), {cidr("10.244.3.0/24")}}};  // not (yet) dual stack
}

TEST(DualStackPlan, Ipv6PodCidrsGoToTheOwnersIpv4Address) {
  Plan plan = planFor(dualStackNodes(), "node-1");
  bool found = false;
  for (const auto& r : plan.remote) {
    if (!r.podCidr.addr().isV6()) continue;
    EXPECT_EQ(r.podCidr.str(), "fd00:10:244:2::/64") << "other nodes' only, never this node's own";
    EXPECT_EQ(r.nodeIp, ip("198.18.0.2"));
    const sl_route_key k = routeKey(r.podCidr);
    const sl_route v = routeValue(r.nodeIp);
    EXPECT_EQ(k.family, SL_AF_INET6);
    EXPECT_EQ(k.prefixlen, static_cast<uint32_t>(SL_ROUTE_KEY_FAMILY_BITS + 64));
    EXPECT_EQ(v.node_ip4, ip("198.18.0.2").v4NetOrder()) << "the underlay stays IPv4";
    EXPECT_FALSE(isNodeAddressRoute(k, v));
    EXPECT_EQ(cidrOfKey(k), r.podCidr);
    found = true;
  }
  EXPECT_TRUE(found);
}

TEST(DualStackPlan, Ipv6KernelRoutesRideTheOverlayFromThisNodesIpv6Address) {
  Plan plan = planFor(dualStackNodes(), "node-1");
  KernelRouteOptions ko;
  ko.overlayIfindex = 7;
  ko.underlayIfindex = 2;
  ko.mtu = 1450;
  ko.nodeIp = ip("198.18.0.1");
  ko.nodeIp6 = nodeIp6Of(cidr("fd00:10:244:1::/64"));
  EXPECT_EQ(ko.nodeIp6, ip("fd00:10:244:1::")) << "the first address of the pod CIDR, which IPAM never hands out";
  std::vector<KernelRoute> v6;
  for (const auto& k : kernelRoutesFor(plan.remote, ko))
    if (k.dst.addr().isV6()) v6.push_back(k);
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].dst, cidr("fd00:10:244:2::/64"));
  EXPECT_EQ(v6[0].ifindex, 7);
  EXPECT_FALSE(v6[0].gateway.valid()) << "on-link: sluice_vxlan is NOARP";
  EXPECT_EQ(v6[0].prefSrc, ip("fd00:10:244:1::"));
  EXPECT_EQ(v6[0].mtu, 1450);

  KernelRouteOptions noAddress = ko;
  noAddress.nodeIp6 = {};
  for (const auto& k : kernelRoutesFor(plan.remote, noAddress))
    EXPECT_TRUE(k.dst.addr().isV4()) << k.dst.str() << ": no IPv6 route without this node's IPv6 address";
  KernelRouteOptions native = ko;
  native.native = true;
  for (const auto& k : kernelRoutesFor(plan.remote, native))
    EXPECT_TRUE(k.dst.addr().isV4()) << k.dst.str()
                                     << ": native routing needs the nodes' IPv6 addresses (native_ipv6_test.cpp)";
}

}  // namespace
}  // namespace sluice::agent
