// SPDX-License-Identifier: Apache-2.0
// The agent's kernel routes and its policy rule against the real kernel (the test's own network
// namespace): native routing's IPv6 route via another node's IPv6 address on the underlay, and
// vxlan mode's "from <pod CIDR> fwmark 0x10000000 lookup 83" rule with the node-address routes
// of table 83, which the stack then uses for the flows local pods start (marked), and nothing
// else.
#include <gtest/gtest.h>
#include <net/if.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "../agent_test_util.h"
#include "kernel_routes.h"

namespace sluice::agent {
namespace {

using testutil::cidr;
using testutil::ip;
using testutil::sh;

std::string out(const std::string& cmd) {
  std::unique_ptr<FILE, decltype(&pclose)> p(popen(cmd.c_str(), "r"), &pclose);
  std::string s;
  std::array<char, 512> buf{};
  while (p && fgets(buf.data(), buf.size(), p.get()) != nullptr) s += buf.data();
  return s;
}

class KernelRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // the underlay with both of this node's addresses, a stand-in for sluice_vxlan, and a
    // stand-in for a pod's host veth
    sh("ip link add sltrt0 type veth peer name sltrt1");
    sh("ip addr add 198.18.0.1/24 dev sltrt0 && ip addr add fd00:198:18::1/64 dev sltrt0 nodad");
    sh("ip link set sltrt0 up && ip link set sltrt1 up");
    sh("ip link add sltov0 type veth peer name sltov1 && ip link set sltov0 up && ip link set sltov1 up");
    sh("ip link add sltpd0 type veth peer name sltpd1 && ip link set sltpd0 up && ip link set sltpd1 up");
    sh("sysctl -qw net.ipv4.ip_forward=1");
    underlay_ = static_cast<int>(if_nametoindex("sltrt0"));
    overlay_ = static_cast<int>(if_nametoindex("sltov0"));
    ASSERT_GT(underlay_, 0);
    ASSERT_GT(overlay_, 0);
  }
  void TearDown() override {
    (void)syncKernelRoutes({});
    (void)syncPodSourceRule(std::nullopt);
    std::system("ip link del sltrt0 2>/dev/null; ip link del sltov0 2>/dev/null; ip link del sltpd0 2>/dev/null");
  }
  int underlay_ = 0;
  int overlay_ = 0;
};

TEST_F(KernelRoutesTest, AnIpv6PodCidrRoutedViaAnotherNodesIpv6Address) {
  KernelRoute r;
  r.dst = cidr("fd00:10:244:2::/64");
  r.ifindex = underlay_;
  r.gateway = ip("fd00:198:18::2");
  auto c = syncKernelRoutes({r});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->added, 1);
  EXPECT_NE(out("ip -6 route show fd00:10:244:2::/64").find("via fd00:198:18::2 dev sltrt0 proto 83"), std::string::npos)
      << out("ip -6 route show");
  auto listed = listOwnedRoutes();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0], r) << "read back as written: the next sync leaves it alone";
  auto again = syncKernelRoutes({r});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->unchanged, 1);
  EXPECT_EQ(again->added + again->updated, 0);
  ASSERT_TRUE(syncKernelRoutes({}).ok());
  EXPECT_EQ(out("ip -6 route show fd00:10:244:2::/64"), "") << "removed when its node goes";
}

TEST_F(KernelRoutesTest, ThePodSourceRuleSendsForwardedPodTrafficToNodesThroughTheOverlay) {
  KernelRoute pods;  // main table: another node's pod CIDR (so the route lookups have a contrast)
  pods.dst = cidr("10.244.2.0/24");
  pods.ifindex = overlay_;
  KernelRoute node2;
  node2.dst = cidr("198.18.0.2/32");
  node2.table = kPodSourceTable;
  node2.ifindex = overlay_;
  node2.mtu = 1450;
  auto c = syncKernelRoutes({pods, node2});
  ASSERT_TRUE(c.ok()) << c.error().describe();
  EXPECT_EQ(c->added, 2);
  auto added = syncPodSourceRule(cidr("10.244.1.0/24"));
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_TRUE(*added);
  EXPECT_EQ(out("ip rule show table 83"), "30083:\tfrom 10.244.1.0/24 fwmark 0x10000000/0x10000000 lookup 83 proto 83\n");

  // a flow a local pod starts towards node-2 (marked): the overlay; a pod's reply in a flow a
  // node started (unmarked), node-2's own traffic and anyone else's: the underlay, as before
  const std::string fromPod = "ip route get 198.18.0.2 from 10.244.1.5 iif sltpd0";
  EXPECT_NE(out(fromPod + " mark 0x10000000").find("dev sltov0"), std::string::npos) << out(fromPod + " mark 0x10000000");
  EXPECT_NE(out(fromPod).find("dev sltrt0"), std::string::npos) << out(fromPod);
  EXPECT_NE(out("ip route get 198.18.0.2").find("dev sltrt0"), std::string::npos) << out("ip route get 198.18.0.2");
  EXPECT_NE(out("ip route get 198.18.0.254 from 10.244.1.5 iif sltpd0 mark 0x10000000").find("dev sltrt0"),
            std::string::npos)
      << "not a node: main table, the underlay (masquerade's way out)";

  auto same = syncPodSourceRule(cidr("10.244.1.0/24"));
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(*same) << "idempotent: nothing to do the second time";
  auto moved = syncPodSourceRule(cidr("10.244.9.0/24"));
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(*moved);
  EXPECT_EQ(out("ip rule show table 83"), "30083:\tfrom 10.244.9.0/24 fwmark 0x10000000/0x10000000 lookup 83 proto 83\n")
      << "a new pod CIDR replaces the old one's rule";
  auto none = syncPodSourceRule(std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(out("ip rule show table 83"), "");
  ASSERT_TRUE(syncKernelRoutes({}).ok());
  EXPECT_EQ(out("ip route show table 83"), "") << "table 83's routes are ours too";
}

}  // namespace
}  // namespace sluice::agent
