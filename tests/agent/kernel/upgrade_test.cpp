// SPDX-License-Identifier: Apache-2.0
// The agent's pass over pod veths at start (upgradePodPrograms), against the real kernel: it
// swaps every veth to the newly pinned sl_from_pod / sl_to_pod, and it ends a pod's
// SL_IFACE_F_UNTRANSLATED promise unless the sl_to_pod that watched the veth runs the same
// code as the new one (a restart of the same build keeps it; any other program, or none, ends
// it), before the new programs run.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "../agent_test_util.h"
#include "node_setup.h"
#include "sluice/bpf/datapath.h"
#include "sluice/bpf/tc.h"

namespace sluice::agent {
namespace {

using testutil::sh;

class UpgradePassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-upgrade-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    root_ = tmpl;
    ASSERT_EQ(mount("bpf", root_.c_str(), "bpf", 0, nullptr), 0) << std::strerror(errno);
    sh("ip link add sltupg0 type veth peer name sltupg1");
    veth_ = static_cast<int>(if_nametoindex("sltupg0"));
    ASSERT_GT(veth_, 0);
    old_ = load();
    ASSERT_TRUE(old_);
    // plumbed as the plugin does: both programs, and the pod's identity with the promise
    ASSERT_TRUE(bpf::createClsact(veth_).ok());
    ASSERT_TRUE(bpf::attachTcPair(veth_, old_->fromPodFd(), old_->toPodFd()).ok());
    sl_iface id{};
    id.flags = SL_IFACE_F_HAS_V4 | SL_IFACE_F_UNTRANSLATED;
    id.ip4 = htonl(0x0af40102);  // 10.244.1.2
    ASSERT_TRUE(old_->maps().ifaces.update(static_cast<uint32_t>(veth_), id).ok());
  }
  void TearDown() override {
    old_.reset();
    std::system("ip link del sltupg0 2>/dev/null");
    umount2(root_.c_str(), MNT_DETACH);
    rmdir(root_.c_str());
  }

  // The datapath an agent start loads: the maps pinned under root_ reused, programs afresh.
  std::optional<bpf::Datapath> load() {
    auto dp = bpf::Datapath::load({.bpfRoot = root_});
    EXPECT_TRUE(dp.ok()) << dp.error().describe();
    if (!dp.ok()) return std::nullopt;
    return std::move(dp).value();
  }
  uint32_t flags(const bpf::Datapath& dp) const {
    auto v = dp.maps().ifaces.lookup(static_cast<uint32_t>(veth_));
    EXPECT_TRUE(v.ok() && *v);
    return v.ok() && *v ? (*v)->flags : 0;
  }
  static uint32_t id(int fd) { return *bpf::progId(fd); }

  std::string root_;
  int veth_ = 0;
  std::optional<bpf::Datapath> old_;
};

TEST_F(UpgradePassTest, ARestartOfTheSameBuildSwapsTheProgramsAndKeepsThePromise) {
  auto now = load();
  ASSERT_TRUE(now);
  ASSERT_NE(id(now->fromPodFd()), id(old_->fromPodFd())) << "each start loads its programs afresh";
  auto switched = upgradePodPrograms(*now);
  ASSERT_TRUE(switched.ok()) << switched.error().describe();
  EXPECT_EQ(*switched, 1);
  EXPECT_EQ(*bpf::tcIngressProgId(veth_), id(now->fromPodFd()));
  EXPECT_EQ(*bpf::tcEgressProgId(veth_), id(now->toPodFd()));
  EXPECT_EQ(flags(*now), SL_IFACE_F_HAS_V4 | SL_IFACE_F_UNTRANSLATED)
      << "an sl_to_pod of the same code watched the veth: the promise holds";
}

TEST_F(UpgradePassTest, AnotherProgramWatchingTheVethEndsThePromise) {
  // another build's sl_to_pod, standing in: a program of other code at the same slot
  ASSERT_TRUE(bpf::attachTcEgress(veth_, old_->toOverlayFd()).ok());
  auto now = load();
  ASSERT_TRUE(now);
  auto switched = upgradePodPrograms(*now);
  ASSERT_TRUE(switched.ok()) << switched.error().describe();
  EXPECT_EQ(*switched, 1);
  EXPECT_EQ(*bpf::tcEgressProgId(veth_), id(now->toPodFd()));
  EXPECT_EQ(flags(*now), SL_IFACE_F_HAS_V4) << "only the promise ends; the identity stays";
}

TEST_F(UpgradePassTest, NoProgramWatchingTheVethEndsThePromise) {
  // a veth plumbed before sl_to_pod existed
  ASSERT_TRUE(bpf::detachTcEgress(veth_).ok());
  auto now = load();
  ASSERT_TRUE(now);
  ASSERT_TRUE(upgradePodPrograms(*now).ok());
  EXPECT_EQ(*bpf::tcEgressProgId(veth_), id(now->toPodFd())) << "it gets one now";
  EXPECT_EQ(flags(*now), SL_IFACE_F_HAS_V4);
}

TEST_F(UpgradePassTest, NothingToSwapLeavesEverythingAlone) {
  auto switched = upgradePodPrograms(*old_);
  ASSERT_TRUE(switched.ok()) << switched.error().describe();
  EXPECT_EQ(*switched, 0);
  EXPECT_EQ(flags(*old_), SL_IFACE_F_HAS_V4 | SL_IFACE_F_UNTRANSLATED);
}

}  // namespace
}  // namespace sluice::agent
