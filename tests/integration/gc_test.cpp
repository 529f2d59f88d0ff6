// SPDX-License-Identifier: Apache-2.0
// CNI 1.1 GC, and a plugin killed in the middle of ADD: whether the runtime follows up with
// DEL or only with GC, nothing of the attachment survives and the allocator stays consistent.
#include <csignal>
#include <random>
#include <set>

#include "harness.h"

namespace sluice::itest::gc {
namespace {

constexpr const char* kSubnet = "10.244.1.0/24";
constexpr const char* kSubnet6 = "fd00:10:244:1::/64";

const std::vector<std::string> kSteps = {"ipam",       "veth",   "pod-link",   "pod-addr",
                                         "pod-routes", "attach", "ifaces-map", "host-route",
                                         "endpoint-record", "endpoints-map"};

using GcTest = NodeTest;

// Dual stack: each stale attachment's IPv4 and IPv6 pieces go.
TEST_F(GcTest, RemovesEveryAttachmentTheRuntimeNoLongerKnows) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(std::vector<std::string>{kSubnet, kSubnet6}));
  Pod a = node_.makePod("a"), b = node_.makePod("b"), c = node_.makePod("c");
  for (Pod* p : {&a, &b, &c}) ASSERT_NO_FATAL_FAILURE(node_.addOk(*p, conf));

  ProcResult r = node_.gc(conf, {&a});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(r.out.empty()) << "GC prints nothing on success: " << r.out;
  // b and c are gone, a is whole and still talks.
  for (const Pod* p : {&b, &c}) {
    EXPECT_FALSE(node_.link(node_.hostNs(), hostVethName(p->containerId, p->ifname))) << p->netnsName;
    EXPECT_FALSE(node_.endpointRecord(hostVethName(p->containerId, p->ifname))) << p->netnsName;
    EXPECT_EQ(node_.linkNames(p->netnsName), std::set<std::string>{"lo"}) << p->netnsName;
  }
  EXPECT_EQ(node_.ipamReservations(kNet), (std::vector<std::string>{a.ip, a.ip6})) << "a's two addresses";
  EXPECT_EQ(node_.endpointEntries().size(), 2u) << "a's two addresses";
  EXPECT_EQ(node_.ifaceEntries().size(), 1u);
  EXPECT_TRUE(node_.check(a, conf).ok());

  // GC is idempotent, and an empty list removes the rest.
  EXPECT_TRUE(node_.gc(conf, {&a}).ok());
  EXPECT_TRUE(node_.check(a, conf).ok());
  EXPECT_TRUE(node_.gc(conf, {}).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b, c}));
}

TEST_F(GcTest, OldConfigVersionsAndMissingListAreErrors) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod a = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));

  json old = conf;
  old["cniVersion"] = "1.0.0";
  old["cni.dev/valid-attachments"] = json::array();
  CniRequest r;
  r.command = "GC";
  r.config = old.dump();
  EXPECT_TRUE(isCniError(node_.cni(r), 1)) << "GC of a 1.0.0 config";

  r.config = conf.dump();  // 1.1.0 without cni.dev/valid-attachments
  EXPECT_TRUE(isCniError(node_.cni(r), 7)) << "GC without its list";
  EXPECT_TRUE(node_.check(a, conf).ok()) << "a refused GC removed something";

  // Old-version configs still get ADD/CHECK/DEL.
  json v040 = conf;
  v040["cniVersion"] = "0.4.0";
  Pod b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, v040));
  EXPECT_TRUE(node_.check(b, v040).ok());
  EXPECT_TRUE(node_.del(b, v040).ok());
  EXPECT_TRUE(node_.del(a, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

// A plugin SIGKILLed right after each step of ADD (no rollback runs).
using KilledAddTest = NodeTestP<std::string>;

TEST_P(KilledAddTest, DelAfterwardsLeavesNothing) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf, {"SLUICE_TEST_KILL_AT=" + GetParam()});
  ASSERT_EQ(r.termSignal, SIGKILL) << r.describe();
  ProcResult del = node_.del(pod, conf);
  EXPECT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

TEST_P(KilledAddTest, GcAfterwardsLeavesNothing) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod keep = node_.makePod("k");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(keep, conf));
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf, {"SLUICE_TEST_KILL_AT=" + GetParam()});
  ASSERT_EQ(r.termSignal, SIGKILL) << r.describe();
  ProcResult g = node_.gc(conf, {&keep});
  EXPECT_TRUE(g.ok()) << g.describe();
  EXPECT_TRUE(node_.check(keep, conf).ok()) << "GC touched the valid attachment";
  EXPECT_TRUE(node_.del(keep, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod, keep}));
}

INSTANTIATE_TEST_SUITE_P(Steps, KilledAddTest, ::testing::ValuesIn(kSteps), [](const auto& info) {
  std::string n;
  for (char ch : info.param) n += ch == '-' ? '_' : ch;
  return n;
});

// The same at random moments, as a node or runtime crash would: after each kill the runtime
// retries DEL; addresses are never handed out twice and none is lost.
TEST_F(GcTest, RandomlyKilledAddsLeaveNothingAndLoseNoAddress) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam("10.244.1.0/28"));  // 14 addresses
  std::mt19937 rng(20261128);
  std::uniform_int_distribution<int> delay(0, 60000);  // µs; ADD itself takes a few ms
  Pod live = node_.makePod("live");  // one healthy pod throughout
  ASSERT_NO_FATAL_FAILURE(node_.addOk(live, conf));
  int killed = 0, completed = 0;
  for (int i = 0; i < 200; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    Pod pod = node_.makePod("r" + std::to_string(i));
    CniRequest req;
    req.command = "ADD";
    req.containerId = pod.containerId;
    req.netns = pod.netnsPath;
    req.ifname = pod.ifname;
    req.config = conf.dump();
    req.killAfterMicros = 1 + delay(rng);
    ProcResult r = node_.cni(req);
    if (r.termSignal == SIGKILL) ++killed;
    else if (r.ok()) ++completed;
    else ADD_FAILURE() << "ADD neither completed nor was killed: " << r.describe();
    ProcResult del = node_.del(pod, conf);
    ASSERT_TRUE(del.ok()) << del.describe();
    node_.deleteNetns(pod.netnsName);
    auto held = node_.ipamReservations(kNet);
    std::string names;
    for (const auto& h : held) names += " " + h;
    ASSERT_EQ(held.size(), 1u) << "an address leaked or the live pod lost its own:" << names << "\n"
                               << r.describe();
  }
  RecordProperty("killed", killed);
  RecordProperty("completed", completed);
  EXPECT_GT(killed, 0) << "no ADD was ever interrupted: the delays are too long to test anything";
  EXPECT_TRUE(node_.check(live, conf).ok());
  EXPECT_TRUE(node_.del(live, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {live}));
}

}  // namespace
}  // namespace sluice::itest::gc
