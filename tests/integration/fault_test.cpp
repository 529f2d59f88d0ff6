// SPDX-License-Identifier: Apache-2.0
// ADD is all-or-nothing: a failure after any step (SLUICE_TEST_FAIL_AT, docs/internals.md)
// and a pod netns that disappears before or during ADD leave nothing behind, and the DEL the
// runtime sends after a failed ADD succeeds. The steps fail with dual-stack ranges, so that the
// IPv4 and the IPv6 pieces of every step are rolled back.
#include <thread>

#include "harness.h"

namespace sluice::itest::fault {
namespace {

constexpr const char* kSubnet = "10.244.1.0/24";
constexpr const char* kSubnet6 = "fd00:10:244:1::/64";

using FaultStepTest = NodeTestP<std::string>;

TEST_P(FaultStepTest, AddFailingAfterTheStepRollsEverythingBack) {
  const std::string step = GetParam();
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(std::vector<std::string>{kSubnet, kSubnet6}));
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf, {"SLUICE_TEST_FAIL_AT=" + step});
  EXPECT_TRUE(isCniError(r)) << "ADD with SLUICE_TEST_FAIL_AT=" << step;
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));

  // The runtime follows a failed ADD with DEL.
  ProcResult del = node_.del(pod, conf);
  EXPECT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));

  // The node is still usable: the same pod can be added for real afterwards.
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  Pod other = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(other, conf));
  EXPECT_TRUE(node_.ping(pod.netnsName, other.ip));
  EXPECT_TRUE(node_.ping(pod.netnsName, other.ip6));
  EXPECT_TRUE(node_.del(pod, conf).ok());
  EXPECT_TRUE(node_.del(other, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod, other}));
}

INSTANTIATE_TEST_SUITE_P(Steps, FaultStepTest,
                         ::testing::Values("ipam", "veth", "pod-link", "pod-addr", "pod-routes", "attach", "ifaces-map",
                                           "host-route", "endpoint-record", "endpoints-map"),
                         [](const auto& info) {
                           std::string n;
                           for (char ch : info.param) n += ch == '-' ? '_' : ch;
                           return n;
                         });

using NetnsGoneTest = NodeTest;

TEST_F(NetnsGoneTest, NetnsDeletedBeforeAddLeavesNothing) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  node_.deleteNetns(pod.netnsName);
  ProcResult r = node_.add(pod, conf);
  EXPECT_TRUE(isCniError(r));
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  EXPECT_TRUE(node_.del(pod, conf, std::string("")).ok());
}

// The netns is removed while ADD runs. Depending on the interleaving ADD fails (and must
// leave nothing) or succeeds into a namespace that dies right after (then DEL with an empty
// CNI_NETNS must clean up). Several rounds to hit different interleavings.
TEST_F(NetnsGoneTest, NetnsDeletedDuringAddLeavesNothingAfterDel) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  int failed = 0, succeeded = 0;
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Pod pod = node_.makePod("r" + std::to_string(round));
    ProcResult r;
    std::thread adder([&] { r = node_.add(pod, conf); });
    // Vary the moment of deletion a little from round to round.
    for (int spin = 0; spin < round * 2; ++spin) std::this_thread::yield();
    ProcResult d = runProcess({"ip", "netns", "del", pod.netnsName});
    adder.join();
    EXPECT_TRUE(d.ok()) << d.describe();
    if (r.ok()) {
      ++succeeded;
    } else {
      ++failed;
      EXPECT_TRUE(isCniError(r));
      EXPECT_TRUE(node_.nothingLeft(kNet)) << "after a failed ADD";
    }
    ProcResult del = node_.del(pod, conf, std::string(""));
    EXPECT_TRUE(del.ok()) << del.describe();
    EXPECT_TRUE(node_.nothingLeft(kNet)) << "after DEL";
  }
  RecordProperty("add_failed", failed);
  RecordProperty("add_succeeded", succeeded);
}

}  // namespace
}  // namespace sluice::itest::fault
