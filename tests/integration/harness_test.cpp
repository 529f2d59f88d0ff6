// SPDX-License-Identifier: Apache-2.0
// The harness's own oracles must be able to fail: every leak detector sees a planted
// leftover, the traffic helpers fail without a path, process capture is exact. These need no
// plugin (the node is created without a datapath).
#include <bpf/bpf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "harness.h"

namespace sluice::itest::harness {
namespace {

namespace fs = std::filesystem;

class HarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "needs root";
    node_.create(Binaries::fromEnvironment(), /*loadDatapath=*/false);
  }
  void TearDown() override { node_.destroy(); }
  Node node_;
};

TEST_F(HarnessTest, ProcessCaptureIsExact) {
  ProcOptions o;
  o.input = std::string(200000, 'x');  // larger than a pipe buffer
  ProcResult r = runProcess({"sh", "-c", "wc -c; echo oops >&2; exit 3"}, o);
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_EQ(r.out, "200000\n");
  EXPECT_EQ(r.err, "oops\n");
  ProcResult k = runProcess({"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(k.termSignal, 9);
  EXPECT_FALSE(k.ok());
  ProcOptions env;
  env.inheritEnv = false;
  env.env = {"ONLY=1"};
  ProcResult e = runProcess({"/usr/bin/env"}, env);
  EXPECT_EQ(e.out, "ONLY=1\n");
}

TEST_F(HarnessTest, HostVethNameIsSha256OfContainerIdAndIfname) {
  ProcResult r = runProcess({"sh", "-c", "printf %s 'abc123/eth0' | sha256sum"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(hostVethName("abc123", "eth0"), "sl" + r.out.substr(0, 11));
  EXPECT_EQ(hostVethName("abc123", "eth0").size(), 13u);
}

TEST_F(HarnessTest, CniErrorParsing) {
  ProcResult r;
  r.exitCode = 1;
  r.out = R"({"cniVersion":"1.0.0","code":7,"msg":"bad mtu","details":"x"})";
  EXPECT_TRUE(isCniError(r, 7));
  EXPECT_FALSE(isCniError(r, 4));
  r.exitCode = 0;
  EXPECT_FALSE(isCniError(r, 7)) << "exit 0 is not a failure";
  r.exitCode = 1;
  r.out = "Error: something";
  EXPECT_FALSE(isCniError(r));
  r.out = R"({"code":"7","msg":"x"})";
  EXPECT_FALSE(isCniError(r));
}

TEST_F(HarnessTest, LeakDetectorSeesEveryKindOfLeftover) {
  const std::string net = kNet;
  EXPECT_TRUE(node_.nothingLeft(net));

  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "link", "add", "sltleak0", "type", "veth", "peer", "name", "sltleak1"}).ok());
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover host link";
  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "link", "set", "sltleak0", "up"}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "route", "add", "10.244.1.7/32", "dev", "sltleak0"}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "link", "del", "sltleak0"}).ok());
  EXPECT_TRUE(node_.nothingLeft(net));
  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "route", "add", "blackhole", "10.244.1.8/32"}).ok());
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover host route";
  ASSERT_TRUE(runProcess({"ip", "-n", node_.hostNs(), "route", "del", "blackhole", "10.244.1.8/32"}).ok());
  EXPECT_TRUE(node_.nothingLeft(net));

  const fs::path ipam = fs::path(node_.stateDir()) / "ipam" / net;
  fs::create_directories(ipam);
  std::ofstream(ipam / "lock");
  std::ofstream(ipam / "last_reserved_ip.0") << "10.244.1.3";
  EXPECT_TRUE(node_.nothingLeft(net)) << "lock and last_reserved_ip are not reservations";
  std::ofstream(ipam / "10.244.1.3") << "cid\neth0\n";
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover reservation";
  fs::remove(ipam / "10.244.1.3");

  const fs::path eps = fs::path(node_.stateDir()) / "endpoints";
  fs::create_directories(eps);
  std::ofstream(eps / "sl0123456789a.json") << "{}";
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover endpoint record";
  fs::remove(eps / "sl0123456789a.json");
  EXPECT_TRUE(node_.nothingLeft(net));

  // Map entries: pin maps of the production layouts where the agent would.
  int ep = ::bpf_map_create(BPF_MAP_TYPE_HASH, SL_MAP_ENDPOINTS, sizeof(sl_endpoint_key), sizeof(sl_endpoint), 16, nullptr);
  int ifc = ::bpf_map_create(BPF_MAP_TYPE_HASH, SL_MAP_IFACES, sizeof(uint32_t), sizeof(sl_iface), 16, nullptr);
  ASSERT_GE(ep, 0);
  ASSERT_GE(ifc, 0);
  ASSERT_EQ(::bpf_obj_pin(ep, (node_.bpfRoot() + "/" SL_MAP_ENDPOINTS).c_str()), 0);
  ASSERT_EQ(::bpf_obj_pin(ifc, (node_.bpfRoot() + "/" SL_MAP_IFACES).c_str()), 0);
  EXPECT_TRUE(node_.nothingLeft(net));
  sl_endpoint_key k{};
  k.ip.family = SL_AF_INET;
  k.ip.addr[0] = 0x0501f40a;
  sl_endpoint v{};
  v.ifindex = 42;
  ASSERT_EQ(::bpf_map_update_elem(ep, &k, &v, BPF_ANY), 0);
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover sl_endpoints entry";
  EXPECT_EQ(node_.endpointEntries().size(), 1u);
  ASSERT_EQ(::bpf_map_delete_elem(ep, &k), 0);
  uint32_t idx = 42;
  sl_iface iv{};
  ASSERT_EQ(::bpf_map_update_elem(ifc, &idx, &iv, BPF_ANY), 0);
  EXPECT_FALSE(node_.nothingLeft(net)) << "a leftover sl_ifaces entry";
  ASSERT_EQ(::bpf_map_delete_elem(ifc, &idx), 0);
  EXPECT_TRUE(node_.nothingLeft(net));
  ::close(ep);
  ::close(ifc);

  Pod pod = node_.makePod("a");
  EXPECT_TRUE(node_.nothingLeft(net, {pod}));
  ASSERT_TRUE(runProcess({"ip", "-n", pod.netnsName, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"}).ok());
  EXPECT_FALSE(node_.nothingLeft(net, {pod})) << "a leftover interface in the pod netns";
}

TEST_F(HarnessTest, TrafficHelpersNeedARealPath) {
  std::string a = node_.createNetns("ta"), b = node_.createNetns("tb");
  ASSERT_TRUE(runProcess({"ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", a, "addr", "add", "10.99.0.1/24", "dev", "va"}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", b, "addr", "add", "10.99.0.2/24", "dev", "vb"}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", a, "link", "set", "va", "up"}).ok());
  ASSERT_TRUE(runProcess({"ip", "-n", b, "link", "set", "vb", "up"}).ok());
  EXPECT_TRUE(node_.ping(a, "10.99.0.2"));
  EXPECT_TRUE(node_.tcpExchange(b, "10.99.0.2", a, 3 << 20));
  EXPECT_TRUE(node_.tcpExchange(a, "10.99.0.1", b, 12345, 5202));

  ASSERT_TRUE(runProcess({"ip", "-n", a, "link", "set", "va", "down"}).ok());
  EXPECT_FALSE(node_.ping(a, "10.99.0.2", 1));
  EXPECT_FALSE(node_.tcpExchange(b, "10.99.0.2", a, 1024)) << "no path, yet the exchange passed";
}

}  // namespace
}  // namespace sluice::itest::harness
