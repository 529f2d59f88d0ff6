// SPDX-License-Identifier: Apache-2.0
// IPv6 between nodes in native-routing mode: a node's IPv6 InternalIP from the nodes file (old
// files still parse), the plan routing a remote IPv6 pod CIDR via its owner's IPv6 address (and
// not at all when either end has none), the kernel routes that follow, and the node addresses
// of both families exempt from masquerade. Also vxlan mode's table of node-address routes for
// what the stack forwards from local pods (kPodSourceTable).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "agent_test_util.h"
#include "nodes_file.h"
#include "reconcile.h"

namespace sluice::agent {
namespace {

using testutil::cidr;
using testutil::ip;

TEST(NodesFile, InternalIp6IsOptionalAndRoundTrips) {
  auto nodes = parseNodes(R"({"nodes": [
    {"name": "node-1", "internalIP": "198.18.0.1", "internalIP6": "fd00:198:18::1",
     "podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"]},
    {"name": "node-2", "internalIP": "198.18.0.2", "podCIDRs": ["10.244.2.0/24"]}]})");
  ASSERT_TRUE(nodes.ok()) << nodes.error().describe();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].internalIP, ip("198.18.0.1"));
  EXPECT_EQ((*nodes)[0].internalIP6, ip("fd00:198:18::1"));
  EXPECT_FALSE((*nodes)[1].internalIP6.valid()) << "a file from before internalIP6 parses as it did";

  const std::string json = nodesToJson(*nodes);
  EXPECT_NE(json.find(R"("internalIP6":"fd00:198:18::1")"), std::string::npos) << json;
  EXPECT_EQ(json.find("internalIP6", json.find("node-2")), std::string::npos) << "left out when absent: " << json;
  auto back = parseNodes(json);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *nodes);
}

TEST(NodesFile, ABadInternalIp6IsAnErrorNamingTheField) {
  for (const char* bad : {R"("198.18.0.1")", R"("fd00::1::2")", "7", R"(["fd00::1"])"}) {
    auto nodes = parseNodes(std::string(R"({"nodes": [{"name": "n", "internalIP": "198.18.0.1", "internalIP6": )") +
                            bad + "}]}");
    ASSERT_FALSE(nodes.ok()) << bad;
    EXPECT_NE(nodes.error().message().find("nodes[0].internalIP6"), std::string::npos) << nodes.error().message();
  }
  EXPECT_TRUE(parseNodes(R"({"nodes": [{"name": "n", "internalIP6": null}]})").ok()) << "null: none, as internalIP";
}

NodeInfo node(const char* name, const char* ip4, const char* ip6, std::vector<net::Cidr> cidrs) {
  NodeInfo n{name, ip(ip4), std::move(cidrs)};
  if (ip6 != nullptr) n.internalIP6 = ip(ip6);
  return n;
}

std::vector<NodeInfo> nativeNodes() {
  return {node("node-1", "198.18.0.1", "fd00:198:18::1", {cidr("10.244.1.0/24"), cidr("fd00:10:244:1::/64")}),
          node("node-2", "198.18.0.2", "fd00:198:18::2", {cidr("10.244.2.0/24"), cidr("fd00:10:244:2::/64")}),
          node("node-3", "198.18.0.3", nullptr, {cidr("10.244.3.0/24"), cidr("fd00:10:244:3::/64")})};
}

const RemoteRoute* find(const Plan& p, const char* dst) {
  auto it = std::find_if(p.remote.begin(), p.remote.end(), [&](const RemoteRoute& r) { return r.podCidr == cidr(dst); });
  return it == p.remote.end() ? nullptr : &*it;
}

TEST(NativeIpv6Plan, RemoteIpv6PodCidrsGoViaTheOwnersIpv6Address) {
  Plan plan = planFor(nativeNodes(), "node-1", true);
  const RemoteRoute* r = find(plan, "fd00:10:244:2::/64");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->nodeIp, ip("198.18.0.2"));
  EXPECT_EQ(r->nodeIp6, ip("fd00:198:18::2"));
  const sl_route v = routeValue(r->nodeIp, r->nodeIp6);
  EXPECT_EQ(v.node_ip4, ip("198.18.0.2").v4NetOrder());
  EXPECT_EQ(std::memcmp(v.node_ip6, ip("fd00:198:18::2").bytes().data(), 16), 0) << "from_pod's IPv6 next hop";
  EXPECT_FALSE(isNodeAddressRoute(routeKey(r->podCidr), v));
  ASSERT_NE(find(plan, "10.244.2.0/24"), nullptr);
  EXPECT_FALSE(find(plan, "10.244.2.0/24")->nodeIp6.valid()) << "IPv4 pod CIDRs keep their IPv4 next hop only";

  KernelRouteOptions ko;
  ko.native = true;
  ko.underlayIfindex = 2;
  ko.nodeIp = ip("198.18.0.1");
  std::vector<KernelRoute> v6;
  for (const auto& k : kernelRoutesFor(plan.remote, ko))
    if (k.dst.addr().isV6()) v6.push_back(k);
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].dst, cidr("fd00:10:244:2::/64"));
  EXPECT_EQ(v6[0].gateway, ip("fd00:198:18::2")) << "an IPv6 route needs an IPv6 next hop";
  EXPECT_EQ(v6[0].ifindex, 2);
  EXPECT_EQ(v6[0].table, kMainTable);
  EXPECT_FALSE(v6[0].prefSrc.valid()) << "the underlay's own IPv6 address is the source";
}

TEST(NativeIpv6Plan, ANodeWithoutAnIpv6AddressHasItsIpv6PodCidrUnrouted) {
  Plan plan = planFor(nativeNodes(), "node-1", true);
  EXPECT_EQ(find(plan, "fd00:10:244:3::/64"), nullptr) << "no route that leads nowhere";
  EXPECT_NE(find(plan, "10.244.3.0/24"), nullptr) << "its IPv4 pod CIDR is routed as ever";
  EXPECT_EQ(plan.unroutable, 1);
  ASSERT_EQ(plan.problems.size(), 1u);
  EXPECT_EQ(plan.problems[0], "IPv6 pod CIDR fd00:10:244:3::/64 of node node-3 is not routable in native mode: "
                              "node node-3 has no IPv6 InternalIP");

  Plan fromNode3 = planFor(nativeNodes(), "node-3", true);
  EXPECT_EQ(fromNode3.unroutable, 2) << "without an IPv6 address of its own, no IPv6 pod CIDR is routable";
  for (const auto& r : fromNode3.remote) EXPECT_TRUE(r.podCidr.addr().isV4()) << r.podCidr.str();
  ASSERT_EQ(fromNode3.problems.size(), 2u);
  EXPECT_NE(fromNode3.problems[0].find("node node-3 has no IPv6 InternalIP"), std::string::npos) << fromNode3.problems[0];
}

TEST(NativeIpv6Plan, VxlanModeIsUnchanged) {
  Plan plan = planFor(nativeNodes(), "node-1", false);
  for (const char* dst : {"fd00:10:244:2::/64", "fd00:10:244:3::/64"}) {
    const RemoteRoute* r = find(plan, dst);
    ASSERT_NE(r, nullptr) << dst << ": tunnelled over the IPv4 underlay, an IPv6 address or not";
    EXPECT_FALSE(r->nodeIp6.valid()) << dst;
  }
  EXPECT_EQ(plan.unroutable, 0);
  EXPECT_TRUE(plan.problems.empty());
}

TEST(NativeIpv6Plan, NodeAddressesOfBothFamiliesAreExemptFromMasquerade) {
  Plan plan = planFor(nativeNodes(), "node-1", true);
  for (const char* a : {"198.18.0.1", "fd00:198:18::1", "198.18.0.2", "fd00:198:18::2", "198.18.0.3"})
    EXPECT_NE(std::find(plan.nodeIps.begin(), plan.nodeIps.end(), ip(a)), plan.nodeIps.end()) << a;
  EXPECT_EQ(plan.nodeIps.size(), 5u);
}

TEST(PodSourceTable, VxlanModeRoutesOtherNodesAddressesThroughTheOverlayInItsOwnTable) {
  Plan plan = planFor(nativeNodes(), "node-1", false);
  KernelRouteOptions ko;
  ko.overlayIfindex = 7;
  ko.underlayIfindex = 2;
  ko.mtu = 1450;
  ko.nodeIp = ip("198.18.0.1");
  std::vector<KernelRoute> table;
  for (const auto& k : kernelRoutesFor(plan.remote, ko)) {
    if (k.table == kMainTable) {
      EXPECT_FALSE(k.dst.prefix() == 32 && (k.dst.addr() == ip("198.18.0.2") || k.dst.addr() == ip("198.18.0.3")))
          << "the main table keeps node addresses on the underlay: " << k.dst.str();
      continue;
    }
    EXPECT_EQ(k.table, kPodSourceTable);
    table.push_back(k);
  }
  ASSERT_EQ(table.size(), 2u);
  std::sort(table.begin(), table.end(), [](auto& a, auto& b) { return a.dst < b.dst; });
  EXPECT_EQ(table[0].dst, cidr("198.18.0.2/32"));
  EXPECT_EQ(table[1].dst, cidr("198.18.0.3/32"));
  for (const auto& k : table) {
    EXPECT_EQ(k.ifindex, 7) << "sluice_vxlan, where to_overlay finds the node-address tunnel key";
    EXPECT_EQ(k.mtu, 1450);
    EXPECT_FALSE(k.gateway.valid());
  }

  KernelRouteOptions native = ko;
  native.native = true;
  for (const auto& k : kernelRoutesFor(planFor(nativeNodes(), "node-1", true).remote, native))
    EXPECT_EQ(k.table, kMainTable) << k.dst.str() << ": native mode needs no such table (one device both ways)";
}

}  // namespace
}  // namespace sluice::agent
