// SPDX-License-Identifier: Apache-2.0
// External IPAM: any ipam.type other than sluice-ipam is executed from CNI_PATH per the spec.
// Checked with the reference host-local plugin (Debian's containernetworking-plugins).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace sluice::itest::delegation {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSubnet = "10.244.9.0/24";

using DelegationTest = NodeTest;

TEST_F(DelegationTest, HostLocalAllocatesAndReleases) {
  ASSERT_TRUE(fs::exists(node_.bins().refCniDir + "/host-local"))
      << "host-local not found in " << node_.bins().refCniDir << " (containernetworking-plugins)";
  const std::string dataDir = node_.tmpDir() + "/host-local";
  json ipam = {{"type", "host-local"},
               {"ranges", json::array({json::array({json{{"subnet", kSubnet}}})})},
               {"dataDir", dataDir}};
  json conf = node_.pluginConf("1.0.0", kNet, ipam);
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, conf));
  EXPECT_NE(a.ip, b.ip);

  for (const Pod* p : {&a, &b}) {
    SCOPED_TRACE(p->netnsName + " " + p->ip);
    EXPECT_TRUE(inSubnet(p->ip, kSubnet));
    // host-local's own reservation, owned by this container.
    const fs::path lease = fs::path(dataDir) / kNet / p->ip;
    ASSERT_TRUE(fs::exists(lease)) << lease << " (host-local did not allocate)";
    std::ifstream in(lease);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_NE(ss.str().find(p->containerId), std::string::npos) << ss.str();
    // The address is on the pod's interface and the record names the delegate.
    bool onEth0 = false;
    for (const json& ad : node_.addrs(p->netnsName, p->ifname))
      if (ad.value("local", "") == p->ip) onEth0 = true;
    EXPECT_TRUE(onEth0);
    auto rec = node_.endpointRecord(hostVethName(p->containerId, p->ifname));
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->value("ipamType", ""), "host-local");
  }
  // The built-in allocator was not used.
  EXPECT_TRUE(node_.ipamReservations(kNet).empty());
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip));
  EXPECT_TRUE(node_.tcpExchange(b.netnsName, b.ip, a.netnsName, 1 << 20));

  ASSERT_TRUE(node_.del(a, conf).ok());
  EXPECT_FALSE(fs::exists(fs::path(dataDir) / kNet / a.ip)) << "DEL did not release the host-local lease";
  EXPECT_TRUE(fs::exists(fs::path(dataDir) / kNet / b.ip));
  ASSERT_TRUE(node_.del(b, conf).ok());
  EXPECT_FALSE(fs::exists(fs::path(dataDir) / kNet / b.ip));
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

TEST_F(DelegationTest, FailedAddReleasesTheDelegatedLease) {
  const std::string dataDir = node_.tmpDir() + "/host-local";
  json ipam = {{"type", "host-local"},
               {"ranges", json::array({json::array({json{{"subnet", kSubnet}}})})},
               {"dataDir", dataDir}};
  json conf = node_.pluginConf("1.0.0", kNet, ipam);
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf, {"SLUICE_TEST_FAIL_AT=endpoints-map"});
  EXPECT_TRUE(isCniError(r));
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  std::vector<std::string> leases;
  std::error_code ec;
  for (auto it = fs::directory_iterator(fs::path(dataDir) / kNet, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n != "lock" && n.rfind("last_reserved_ip", 0) != 0) leases.push_back(n);
  }
  EXPECT_TRUE(leases.empty()) << "host-local lease left: " << ::testing::PrintToString(leases);
}

TEST_F(DelegationTest, MissingIpamPluginIsAnErrorAndLeavesNothing) {
  json conf = node_.pluginConf("1.0.0", kNet, json{{"type", "no-such-ipam-plugin"}});
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf);
  EXPECT_TRUE(isCniError(r));
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

}  // namespace
}  // namespace sluice::itest::delegation
