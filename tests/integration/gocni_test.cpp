// SPDX-License-Identifier: Apache-2.0
// Sluice under a real runtime library: containerd's go-cni (libcni underneath) loads the
// conflist from a conf dir next to the loopback network, exactly as containerd's CRI does,
// and runs ADD, CHECK and DEL. The results must be the same as under direct exec.
#include <filesystem>
#include <fstream>

#include "harness.h"

namespace sluice::itest::gocni {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSubnet = "10.244.4.0/24";

class GoCniTest : public NodeTest {
 protected:
  void SetUp() override {
    NodeTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(node_.bins().gocni.empty())
        << "the go-cni driver was not built (needs golang-go and golang-github-containerd-go-cni-dev)";
    ASSERT_EQ(::access(node_.bins().gocni.c_str(), X_OK), 0) << node_.bins().gocni;
    // Unique per run: libcni caches results under /var/lib/cni/results/<net>-<id>-<if>.
    net_ = node_.prefix() + "-net";
    confDir_ = node_.tmpDir() + "/net.d";
    fs::create_directories(confDir_);
    std::ofstream(confDir_ + "/10-sluice.conflist") << node_.conflist("1.0.0", net_, node_.sluiceIpam(kSubnet)).dump(2);
  }

  void TearDown() override {
    // libcni's result cache lives outside our temp dir; never leave ours behind.
    std::error_code ec;
    if (!net_.empty())
      for (auto it = fs::directory_iterator("/var/lib/cni/results", ec); !ec && it != fs::directory_iterator();
           it.increment(ec))
        if (it->path().filename().string().rfind(net_ + "-", 0) == 0) fs::remove(it->path(), ec);
    NodeTest::TearDown();
  }

  ProcResult drive(const std::string& op, const Pod& pod, const std::string& labels = "") {
    return node_.runIn(node_.hostNs(), {node_.bins().gocni, "-op", op, "-conf-dir", confDir_, "-plugin-dirs",
                                        node_.pluginDir() + ":" + node_.bins().refCniDir, "-netns", pod.netnsPath,
                                        "-id", pod.containerId, "-labels", labels});
  }

  std::string cacheFile(const Pod& pod) const {
    return "/var/lib/cni/results/" + net_ + "-" + pod.containerId + "-" + pod.ifname;
  }

  std::string net_;
  std::string confDir_;
};

TEST_F(GoCniTest, SetupCheckRemoveThroughContainerdGoCni) {
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  const std::string labelsA = "IgnoreUnknown=1;K8S_POD_NAMESPACE=gocni-ns;K8S_POD_NAME=gocni-a;K8S_POD_INFRA_CONTAINER_ID=" +
                              a.containerId + ";K8S_POD_UID=11111111-2222-4333-8444-555555555555";
  for (Pod* p : {&a, &b}) {
    ProcResult r = drive("add", *p, p == &a ? labelsA : "");
    ASSERT_TRUE(r.ok()) << "go-cni Setup\n" << r.describe();
    json out = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(out.is_object() && out.value("ok", false)) << r.out;
    // containerd reads the pod IP from Interfaces["eth0"].IPConfigs.
    const json& eth0 = out["interfaces"]["eth0"];
    ASSERT_TRUE(eth0.is_object() && eth0.contains("IPConfigs") && !eth0["IPConfigs"].empty()) << r.out;
    p->ip = eth0["IPConfigs"][0]["IP"];
    EXPECT_TRUE(inSubnet(p->ip, kSubnet)) << p->ip;
    EXPECT_EQ(eth0.value("Sandbox", ""), p->netnsPath);
    // raw[0] is the loopback network, raw[1] Sluice's result, converted by libcni.
    ASSERT_TRUE(out["raw"].is_array() && out["raw"].size() == 2) << r.out;
    EXPECT_EQ(out["raw"][1].value("cniVersion", ""), "1.0.0");
    EXPECT_TRUE(fs::exists(cacheFile(*p))) << "libcni cached no result";
    EXPECT_TRUE(node_.link(node_.hostNs(), hostVethName(p->containerId, p->ifname)));
  }
  EXPECT_NE(a.ip, b.ip);
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip));
  EXPECT_TRUE(node_.tcpExchange(a.netnsName, a.ip, b.netnsName, 1 << 20));

  auto rec = node_.endpointRecord(hostVethName(a.containerId, a.ifname));
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->value("podNamespace", ""), "gocni-ns");
  EXPECT_EQ(rec->value("podName", ""), "gocni-a");

  for (Pod* p : {&a, &b}) {
    ProcResult c = drive("check", *p);
    EXPECT_TRUE(c.ok()) << "go-cni Check\n" << c.describe();
  }
  // CHECK through libcni notices a broken pod too.
  ASSERT_TRUE(node_.runIn(b.netnsName, {"ip", "link", "del", b.ifname}).ok());
  ProcResult broken = drive("check", b);
  EXPECT_FALSE(broken.ok()) << "go-cni Check on a pod without its veth\n" << broken.describe();

  for (Pod* p : {&a, &b}) {
    ProcResult d = drive("del", *p, p == &a ? labelsA : "");
    EXPECT_TRUE(d.ok()) << "go-cni Remove\n" << d.describe();
    EXPECT_FALSE(fs::exists(cacheFile(*p)));
  }
  EXPECT_TRUE(node_.nothingLeft(net_, {a, b}));
  // Remove twice, as a runtime retrying after a crash does.
  ProcResult again = drive("del", a, labelsA);
  EXPECT_TRUE(again.ok()) << again.describe();
}

}  // namespace
}  // namespace sluice::itest::gocni
