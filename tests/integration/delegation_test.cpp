// SPDX-License-Identifier: Apache-2.0
// External IPAM: any ipam.type other than sluice-ipam is executed from CNI_PATH per the spec.
// Checked with the reference host-local plugin (Debian's containernetworking-plugins).
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "harness.h"

namespace sluice::itest::delegation {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSubnet = "10.244.9.0/24";

// A delegated IPAM section: plugin `type` allocating from kSubnet with its leases under dataDir.
json delegatedIpam(const std::string& type, const std::string& dataDir) {
  return {{"type", type}, {"ranges", json::array({json::array({json{{"subnet", kSubnet}}})})}, {"dataDir", dataDir}};
}

// host-local's leases of network kNet under dataDir (file names: the addresses).
std::vector<std::string> leases(const std::string& dataDir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(fs::path(dataDir) / kNet, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n != "lock" && n.rfind("last_reserved_ip", 0) != 0) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

using DelegationTest = NodeTest;

TEST_F(DelegationTest, HostLocalAllocatesAndReleases) {
  ASSERT_TRUE(fs::exists(node_.bins().refCniDir + "/host-local"))
      << "host-local not found in " << node_.bins().refCniDir << " (containernetworking-plugins)";
  const std::string dataDir = node_.tmpDir() + "/host-local";
  json conf = node_.pluginConf("1.0.0", kNet, delegatedIpam("host-local", dataDir));
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
  json conf = node_.pluginConf("1.0.0", kNet, delegatedIpam("host-local", dataDir));
  Pod pod = node_.makePod("a");
  ProcResult r = node_.add(pod, conf, {"SLUICE_TEST_FAIL_AT=endpoints-map"});
  EXPECT_TRUE(isCniError(r));
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  EXPECT_TRUE(leases(dataDir).empty()) << "host-local lease left: " << ::testing::PrintToString(leases(dataDir));
}

// --- CNI 1.1: GC and STATUS go on to the delegated plugin where it speaks them

// What the CNI 1.1 delegate (tests/integration/ipam11.py) was asked, one JSON object a call.
std::vector<json> delegateCalls(const std::string& dataDir) {
  std::vector<json> out;
  std::ifstream in(fs::path(dataDir) / "calls");
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

std::vector<json> callsOf(const std::vector<json>& calls, const std::string& command) {
  std::vector<json> out;
  for (const auto& c : calls)
    if (c.value("command", "") == command) out.push_back(c);
  return out;
}

class Cni11DelegateTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    if (HasFatalFailure()) return;
    // The delegate is found by its type name in CNI_PATH, like any IPAM plugin.
    const fs::path dir = fs::path(node_.tmpDir()) / "delegates";
    fs::create_directories(dir);
    fs::copy_file(SLUICE_IPAM11_SCRIPT, dir / "ipam11", fs::copy_options::overwrite_existing);
    fs::permissions(dir / "ipam11", fs::perms::owner_all, fs::perm_options::add);
    node_.prependCniPath(dir.string());
    dataDir_ = node_.tmpDir() + "/ipam11";
  }
  json conf(const std::string& type, const std::string& cniVersion = "1.1.0") const {
    return node_.pluginConf(cniVersion, kNet, delegatedIpam(type, dataDir_));
  }
  std::string dataDir_;
};

// GC is forwarded with the runtime's list, so the delegate also frees a lease that sluice has
// no record of: an ADD killed right after its IPAM step.
TEST_F(Cni11DelegateTest, GcIsForwardedAndFreesLeasesSluiceNeverRecorded) {
  const json c = conf("ipam11");
  Pod a = node_.makePod("a"), b = node_.makePod("b"), killed = node_.makePod("k");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, c));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, c));
  ProcResult k = node_.add(killed, c, {"SLUICE_TEST_KILL_AT=ipam"});
  ASSERT_EQ(k.termSignal, SIGKILL) << k.describe();
  ASSERT_EQ(leases(dataDir_).size(), 3u) << "a, b and the killed ADD's lease";

  const std::string versionLog = node_.tmpDir() + "/ipam11-versions";
  ProcResult r = node_.gc(c, {&a}, {"IPAM11_VERSION_LOG=" + versionLog});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(leases(dataDir_), std::vector<std::string>{a.ip}) << "b's and the killed ADD's leases go";
  std::ifstream versions(versionLog);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(versions), {}), "VERSION\n")
      << "one VERSION for the whole GC, not one per stale attachment plus one for the forward";
  EXPECT_FALSE(node_.link(node_.hostNs(), hostVethName(b.containerId, b.ifname))) << "b is torn down";
  EXPECT_TRUE(node_.check(a, c).ok()) << "a is untouched";
  auto gcs = callsOf(delegateCalls(dataDir_), "GC");
  ASSERT_EQ(gcs.size(), 1u) << "GC forwarded once";
  EXPECT_EQ(gcs[0]["cniVersion"], "1.1.0");
  EXPECT_EQ(gcs[0]["validAttachments"],
            json::array({json{{"containerID", a.containerId}, {"ifname", a.ifname}}}))
      << "with the runtime's list, unchanged";
  EXPECT_EQ(gcs[0]["containerID"], "") << "GC names no attachment";

  // The delegate's GC error, its code unchanged, is GC's error; the attachments not in the
  // list are dealt with all the same.
  Pod c2 = node_.makePod("c");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(c2, c));
  {
    std::ofstream(fs::path(dataDir_) / "gc-error") << "lease store busy";
  }
  ProcResult bad = node_.gc(c, {&a});
  EXPECT_TRUE(isCniError(bad, 11)) << bad.describe();
  EXPECT_FALSE(node_.link(node_.hostNs(), hostVethName(c2.containerId, c2.ifname))) << "c is torn down";
  EXPECT_EQ(leases(dataDir_), std::vector<std::string>{a.ip}) << "c's lease went with its DEL";
  fs::remove(fs::path(dataDir_) / "gc-error");
  EXPECT_TRUE(node_.del(a, c).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b, killed, c2}));
}

// Debian's host-local predates GC (it speaks up to 1.0.0, so its pods were added with a 1.0.0
// configuration, as before an upgrade of the conflist to 1.1.0): nothing is forwarded to it,
// and the attachments sluice knows are released through its DEL, in a version it speaks.
TEST_F(Cni11DelegateTest, GcWithADelegateThatPredatesItReleasesWhatSluiceKnows) {
  const json c = conf("host-local", "1.0.0");
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, c));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, c));
  ProcResult r = node_.gc(c, {&a});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(leases(dataDir_), std::vector<std::string>{a.ip});
  EXPECT_TRUE(node_.check(a, c).ok());
  EXPECT_TRUE(node_.del(a, c).ok());
  EXPECT_TRUE(leases(dataDir_).empty());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

// STATUS asks a delegate that speaks it and passes its error on unchanged; one that predates
// STATUS (host-local, which answers it with an error) is not asked; one missing from CNI_PATH
// makes the network unavailable.
TEST_F(Cni11DelegateTest, StatusAsksTheDelegateThatSpeaksIt) {
  const json c = conf("ipam11");
  ProcResult ok = node_.status(c);
  EXPECT_TRUE(ok.ok()) << ok.describe();
  EXPECT_EQ(callsOf(delegateCalls(dataDir_), "STATUS").size(), 1u) << "the delegate was asked";

  {
    std::ofstream(fs::path(dataDir_) / "status-error") << "address pool unreachable";
  }
  ProcResult down = node_.status(c);
  ASSERT_TRUE(isCniError(down, 50)) << down.describe();
  auto err = parseCniError(down.out);
  ASSERT_TRUE(err);
  EXPECT_NE(err->msg.find("address pool unreachable"), std::string::npos) << err->msg;
  fs::remove(fs::path(dataDir_) / "status-error");
  EXPECT_TRUE(node_.status(c).ok());

  ProcResult old = node_.status(conf("host-local"));  // 1.1.0, which host-local does not speak
  EXPECT_TRUE(old.ok()) << old.describe();

  ProcResult missing = node_.status(conf("no-such-ipam"));
  ASSERT_TRUE(isCniError(missing, 50)) << "a delegate missing from CNI_PATH: " << missing.describe();
  EXPECT_NE(parseCniError(missing.out)->msg.find("no-such-ipam"), std::string::npos) << missing.out;
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
