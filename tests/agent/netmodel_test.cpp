// SPDX-License-Identifier: Apache-2.0
// The agent's side of the network model: --chain and uninstall on the command line, chained
// plugins in the conflist (and their VERSION, which decides whether it offers CNI 1.1), the
// masquerade ruleset's node exemption, node-address routes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "agent_test_util.h"
#include "conflist.h"
#include "flags.h"
#include "masquerade.h"
#include "reconcile.h"

namespace sluice::agent {
namespace {

using nlohmann::json;
using testutil::cidr;
using testutil::ip;

TEST(AgentFlags, ChainListsPluginsInOrder) {
  auto o = parseArgs({"--node-name", "n1", "--chain", "portmap,bandwidth"}, nullptr);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->chain, (std::vector<std::string>{"portmap", "bandwidth"}));
  auto none = parseArgs({"--node-name", "n1"}, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->chain.empty());
}

TEST(AgentFlags, BadChainsAreRefusedByName) {
  for (const char* bad :
       {"portmap,,bandwidth", "portmap,portmap", "sluice", "../x", "Portmap", ","}) {
    auto o = parseArgs({"--node-name", "n1", "--chain", bad}, nullptr);
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_NE(o.error().message().find("--chain"), std::string::npos) << o.error().message();
  }
}

TEST(AgentFlags, UninstallIsASubcommandWithoutNodeName) {
  auto o = parseArgs({"uninstall", "--bpf-root", "/run/x/bpf", "--cni-conf-dir", "/run/x/net.d"},
                     nullptr);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->command, Command::kUninstall);
  EXPECT_EQ(o->cniConfDir, "/run/x/net.d");
  EXPECT_FALSE(parseArgs({"uninstall", "status"}, nullptr).ok()) << "one subcommand at a time";
}

TEST(Conflist, ChainedPluginsFollowSluiceWithTheirCapabilities) {
  ConflistParams p;
  p.podCidr = cidr("10.244.1.0/24");
  p.mtu = 1450;
  p.bpfRoot = "/sys/fs/bpf/sluice";
  p.stateDir = "/var/lib/sluice";
  p.logLevel = "info";
  json plain = json::parse(renderConflist(p));
  ASSERT_EQ(plain["plugins"].size(), 1u);
  EXPECT_FALSE(plain["plugins"][0].contains("capabilities"));
  EXPECT_EQ(plain["cniVersion"], "1.0.0") << "what runtimes before CNI 1.1 read";
  EXPECT_EQ(plain["cniVersions"], json({"1.0.0", "1.1.0"})) << "sluice alone offers CNI 1.1";

  p.chain = {"portmap", "bandwidth", "tuning"};
  json c = json::parse(renderConflist(p));
  ASSERT_EQ(c["plugins"].size(), 4u);
  EXPECT_EQ(c["plugins"][0]["type"], "sluice");
  EXPECT_EQ(c["plugins"][0]["capabilities"], json({{"bandwidth", true}}))
      << "sluice takes the limits too, to make room for bandwidth's qdiscs";
  EXPECT_EQ(c["plugins"][1],
            json({{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}}));
  EXPECT_EQ(c["plugins"][2],
            json({{"type", "bandwidth"}, {"capabilities", {{"bandwidth", true}}}}));
  EXPECT_EQ(c["plugins"][3], json({{"type", "tuning"}}));
  EXPECT_EQ(c["cniVersion"], "1.0.0");
  EXPECT_FALSE(c.contains("cniVersions")) << "chained plugins may not speak 1.1.0";

  p.chainSpeaks11 = true;
  json c11 = json::parse(renderConflist(p));
  EXPECT_EQ(c11["cniVersion"], "1.0.0");
  EXPECT_EQ(c11["cniVersions"], json({"1.0.0", "1.1.0"})) << "every chained plugin speaks 1.1.0";
}

// Chained plugins' VERSION, as the agent asks it before offering CNI 1.1 in the conflist: from
// the CNI bin directory, once per binary until the binary changes.
class ChainVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-chain-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A plugin that logs each VERSION it is asked to <dir>/runs and answers with `versions`.
  void plugin(const std::string& name, const std::string& versions, const std::string& extra = "") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n"
                        << "echo \"$CNI_COMMAND $(cat)\" >> " << dir_ << "/runs\n"
                        << extra << "echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[" << versions
                        << "]}'\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  }
  int runs() const {
    std::ifstream in(dir_ + "/runs");
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      EXPECT_EQ(line, "VERSION {\"cniVersion\":\"1.0.0\"}");
      ++n;
    }
    return n;
  }
  // Whether the process the hanging plugin started is gone (or dead, waiting to be reaped).
  bool sleeperGone() const {
    std::string pid;
    std::ifstream(dir_ + "/sleeper") >> pid;
    if (pid.empty()) return false;
    for (int i = 0; i < 500; ++i) {
      std::ifstream stat("/proc/" + pid + "/stat");
      std::string line;
      if (!std::getline(stat, line)) return true;
      if (line.find(") Z ") != std::string::npos) return true;
      ::usleep(10000);
    }
    return false;
  }
  std::string dir_;
};

TEST_F(ChainVersionsTest, OfferedOnlyWhenEveryChainedPluginSpeaksIt) {
  plugin("new", "\"0.4.0\",\"1.0.0\",\"1.1.0\"");
  plugin("newer", "\"1.0.0\",\"1.1.0\"");
  plugin("old", "\"0.3.1\",\"0.4.0\",\"1.0.0\"");
  ChainVersions cv;
  EXPECT_TRUE(cv.allSpeak({"new", "newer"}, dir_, "1.1.0"));
  EXPECT_FALSE(cv.allSpeak({"new", "old"}, dir_, "1.1.0")) << "old stops at 1.0.0";
  EXPECT_TRUE(cv.allSpeak({"new", "old"}, dir_, "1.0.0"));
  EXPECT_FALSE(cv.allSpeak({"new", "missing"}, dir_, "1.1.0")) << "not installed";
  EXPECT_EQ(runs(), 3) << "each binary asked once";

  plugin("old", "\"0.4.0\",\"1.0.0\",\"1.1.0\"");  // upgraded in place: another size
  EXPECT_TRUE(cv.allSpeak({"new", "old"}, dir_, "1.1.0"));
  EXPECT_EQ(runs(), 4) << "only the changed binary asked again";
}

TEST_F(ChainVersionsTest, AFailingOrHangingPluginIsNotCountedOn) {
  plugin("fails", "\"1.1.0\"", "exit 1\n");
  plugin("hangs", "\"1.1.0\"", "sleep 600 &\necho $! > " + dir_ + "/sleeper\nwait\n");
  plugin("garbage", "", "echo not json; exit 0\n");
  plugin("detaches", "\"1.1.0\"", "exec 1>&-\nexec sleep 600\n");  // stdout closed, still running
  ChainVersions cv(200);
  EXPECT_FALSE(cv.allSpeak({"fails"}, dir_, "1.1.0"));
  EXPECT_FALSE(cv.allSpeak({"hangs"}, dir_, "1.1.0")) << "killed after the timeout";
  EXPECT_TRUE(sleeperGone()) << "and what it started, with it";
  EXPECT_FALSE(cv.allSpeak({"garbage"}, dir_, "1.1.0"));
  EXPECT_FALSE(cv.allSpeak({"detaches"}, dir_, "1.1.0")) << "held to the timeout after closing stdout";
  EXPECT_FALSE(cv.allSpeak({"fails", "hangs"}, dir_, "1.1.0"));
  EXPECT_EQ(runs(), 4) << "a failure is remembered like an answer until the binary changes";
}

TEST(Masquerade, EveryNodeAddressIsExemptAndTheTableIsReplacedInOneGo) {
  std::string r =
      masqueradeRuleset(cidr("10.244.0.0/16"), "sluice_vxlan",
                        {ip("198.18.0.2"), ip("198.18.0.1"), ip("198.18.0.2"), ip("fd00::1")});
  // declare, delete, recreate: one transaction, never two rules, never none
  EXPECT_EQ(r.rfind("table ip sluice\ndelete table ip sluice\ntable ip sluice {", 0), 0u) << r;
  EXPECT_NE(r.find("elements = { 198.18.0.1, 198.18.0.2 }"), std::string::npos) << r;
  EXPECT_NE(r.find("ip saddr 10.244.0.0/16 ip daddr != 10.244.0.0/16 ip daddr != @nodes oifname != "
                   "\"sluice_vxlan\" masquerade"),
            std::string::npos)
      << r;
  std::string noNodes = masqueradeRuleset(cidr("10.244.0.0/16"), "", {});
  EXPECT_EQ(noNodes.find("elements"), std::string::npos) << "an empty set has no elements line";
  EXPECT_EQ(noNodes.find("oifname"), std::string::npos) << "native mode has no overlay device";
}

TEST(Masquerade, VxlanModeMarksPodTrafficTowardsNodesButDnatReplies) {
  const std::vector<net::IpAddr> nodes{ip("198.18.0.1"), ip("198.18.0.2")};
  std::string r = masqueradeRuleset(cidr("10.244.0.0/16"), "sluice_vxlan", nodes);
  EXPECT_NE(r.find("  chain podtonode {\n    type filter hook prerouting priority mangle; policy accept;\n"
                   "    ct status dnat return\n"
                   "    ip saddr 10.244.0.0/16 ip daddr @nodes meta mark set mark or 0x10000000\n"),
            std::string::npos)
      << "replies in flows this node DNATed (NodePort, hostPort) leave as they came\n" << r;
  EXPECT_EQ(masqueradeRuleset(cidr("10.244.0.0/16"), "", nodes).find("podtonode"), std::string::npos)
      << "native mode: one device both ways, nothing to steer";
  EXPECT_EQ(masqueradeRuleset(cidr("fd00:10:244::/48"), "sluice_vxlan", nodes).find("podtonode"), std::string::npos)
      << "IPv6 has no rp_filter";
}

std::vector<NodeInfo> threeNodes() {
  return {{"node-1", ip("198.18.0.1"), {cidr("10.244.1.0/24")}},
          {"node-2", ip("198.18.0.2"), {cidr("10.244.2.0/24")}},
          {"node-3", ip("198.18.0.3"), {cidr("10.244.3.0/24")}}};
}

TEST(Plan, OtherNodesGetAddressRoutesButNoMainTableRoutes) {
  Plan plan = planFor(threeNodes(), "node-1");
  std::vector<std::string> nodeRoutes, podRoutes;
  for (const auto& r : plan.remote)
    (r.nodeAddress ? nodeRoutes : podRoutes).push_back(r.podCidr.str());
  EXPECT_EQ(podRoutes, (std::vector<std::string>{"10.244.2.0/24", "10.244.3.0/24"}));
  EXPECT_EQ(nodeRoutes, (std::vector<std::string>{"198.18.0.2/32", "198.18.0.3/32"}))
      << "not this node's own";
  EXPECT_EQ(plan.nodeIps.size(), 3u) << "the masquerade exemption includes this node";

  KernelRouteOptions ko;
  ko.overlayIfindex = 7;
  ko.nodeIp = ip("198.18.0.1");
  int mainTable = 0;
  for (const auto& k : kernelRoutesFor(plan.remote, ko)) {
    if (k.table != kMainTable) continue;  // the pod-source table (native_ipv6_test.cpp)
    EXPECT_NE(k.dst.prefix(), 32) << k.dst.str() << ": nodes stay on the underlay for the stack";
    ++mainTable;
  }
  EXPECT_EQ(mainTable, 2);

  for (const auto& r : plan.remote)
    EXPECT_EQ(isNodeAddressRoute(routeKey(r.podCidr), routeValue(r.nodeIp)), r.nodeAddress)
        << r.podCidr.str();
}

TEST(Plan, NativeModeRoutesPodCidrsViaTheirNodeOnTheUnderlay) {
  Plan plan = planFor(threeNodes(), "node-1");
  KernelRouteOptions ko;
  ko.native = true;
  ko.underlayIfindex = 3;
  ko.overlayIfindex = 7;  // ignored: there is no overlay in native mode
  ko.nodeIp = ip("198.18.0.1");
  auto routes = kernelRoutesFor(plan.remote, ko);
  ASSERT_EQ(routes.size(), 2u) << "pod CIDRs only: nodes are on-link already";
  EXPECT_EQ(routes[0].dst.str(), "10.244.2.0/24");
  EXPECT_EQ(routes[0].gateway.str(), "198.18.0.2");
  EXPECT_EQ(routes[1].dst.str(), "10.244.3.0/24");
  EXPECT_EQ(routes[1].gateway.str(), "198.18.0.3");
  for (const auto& r : routes) {
    EXPECT_EQ(r.ifindex, 3) << r.dst.str() << ": out of the underlay";
    EXPECT_EQ(r.mtu, 0) << r.dst.str() << ": no encapsulation, no lower MTU";
    EXPECT_FALSE(r.prefSrc.valid()) << r.dst.str();
  }
}

TEST(AgentFlags, ModeIsVxlanOrNative) {
  auto native = parseArgs({"--node-name", "n", "--mode", "native"}, nullptr);
  ASSERT_TRUE(native.ok()) << native.error().describe();
  EXPECT_EQ(native->mode, DatapathMode::kNative);
  EXPECT_STREQ(modeName(native->mode), "native");
  auto dflt = parseArgs({"--node-name", "n"}, nullptr);
  ASSERT_TRUE(dflt.ok());
  EXPECT_EQ(dflt->mode, DatapathMode::kVxlan);
  auto bad = parseArgs({"--node-name", "n", "--mode", "geneve"}, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().describe().find("expected vxlan or native"), std::string::npos) << bad.error().describe();
}

TEST(Plan, ANodeAddressInsideAPodCidrGetsNoRoute) {
  auto nodes = threeNodes();
  nodes[2].internalIP = ip("10.244.2.77");  // inside node-2's pod CIDR
  Plan plan = planFor(nodes, "node-1");
  for (const auto& r : plan.remote) EXPECT_NE(r.podCidr.str(), "10.244.2.77/32");
  ASSERT_FALSE(plan.problems.empty());
  EXPECT_NE(plan.problems.back().find("10.244.2.77"), std::string::npos) << plan.problems.back();
}

}  // namespace
}  // namespace sluice::agent
