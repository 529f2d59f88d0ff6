// SPDX-License-Identifier: Apache-2.0
// The agent's node set-up against the real kernel, in a network namespace of the test's own:
// native-routing mode puts sl_from_native / sl_to_native on the underlay (and no sluice_vxlan),
// vxlan mode sl_from_tunnel at its ingress; the drift check repairs them when they go, a mode
// switch swaps them in place, and `uninstall` detaches them while leaving other programs alone.
#include <gtest/gtest.h>
#include <net/if.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "../agent_test_util.h"
#include "instance_lock.h"
#include "node_setup.h"
#include "sluice/bpf/datapath.h"
#include "sluice/bpf/tc.h"
#include "uninstall.h"
#include "vxlan.h"

namespace sluice::agent {
namespace {

using testutil::sh;

// `sluice-agent uninstall` options for a node whose state, conf and bpf root are under `dir`
// (created here, empty).
AgentOptions uninstallOptions(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "state");
  std::filesystem::create_directories(dir / "net.d");
  AgentOptions u;
  u.command = Command::kUninstall;
  u.bpfRoot = (dir / "bpf").string();
  u.stateDir = (dir / "state").string();
  u.cniConfDir = (dir / "net.d").string();
  return u;
}

class NativeSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // the "underlay": a veth end with this node's address, up, as a node NIC would be
    sh("ip link add sltul0 mtu 1500 type veth peer name sltul1");
    sh("ip addr add 198.18.0.1/24 dev sltul0");
    sh("ip link set sltul0 up && ip link set sltul1 up");
    underlay_ = static_cast<int>(if_nametoindex("sltul0"));
    ASSERT_GT(underlay_, 0);
    auto dp = bpf::Datapath::load({});
    ASSERT_TRUE(dp.ok()) << dp.error().describe();
    dp_.emplace(std::move(dp).value());
    self_.name = "node-1";
    self_.internalIP = *net::IpAddr::parse("198.18.0.1");
    self_.podCIDRs = {*net::Cidr::parse("10.244.1.0/24")};
    opts_.mode = DatapathMode::kNative;
    opts_.nodeName = "node-1";
  }
  void TearDown() override {
    std::system("ip link del sltul0 2>/dev/null");
    std::system(("ip link del " + std::string(kVxlanName) + " 2>/dev/null").c_str());
  }

  uint32_t ingressId() const { return *bpf::tcIngressProgId(underlay_); }
  uint32_t egressId() const { return *bpf::tcEgressProgId(underlay_); }
  uint32_t id(int fd) const { return *bpf::progId(fd); }

  int underlay_ = 0;
  std::optional<bpf::Datapath> dp_;
  NodeInfo self_;
  AgentOptions opts_;
};

TEST_F(NativeSetupTest, NativeModeAttachesToTheUnderlayAndCreatesNoOverlay) {
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(n->underlay.ifindex, underlay_);
  EXPECT_EQ(n->overlayIfindex, 0);
  EXPECT_EQ(n->podMtu, 1500) << "no encapsulation: pods get the underlay's MTU";
  EXPECT_EQ(if_nametoindex(kVxlanName), 0u) << "no sluice_vxlan in native mode";
  EXPECT_EQ(ingressId(), id(dp_->fromNativeFd()));
  EXPECT_EQ(egressId(), id(dp_->toNativeFd()));
  EXPECT_NE(std::system("tc qdisc show dev sltul0 | grep -q clsact"), 0)
      << "attached through TCX: no qdisc added to the node's device";
  auto cfg = dp_->maps().config.lookup(0);
  ASSERT_TRUE(cfg.ok() && cfg->has_value());
  EXPECT_EQ((*cfg)->mode, SL_MODE_NATIVE);
  EXPECT_EQ((*cfg)->underlay_ifindex, static_cast<uint32_t>(underlay_));
  EXPECT_EQ((*cfg)->overlay_mtu, 1500u) << "what from_pod may redirect: the underlay's MTU";

  // set up again (agent restart): nothing changes
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  EXPECT_EQ(ingressId(), id(dp_->fromNativeFd()));
}

TEST_F(NativeSetupTest, AnMtuOverrideAboveTheUnderlaysDoesNotRaiseWhatIsRedirected) {
  opts_.mtu = 9000;
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(n->podMtu, 9000) << "the operator's choice for pods";
  EXPECT_EQ((*dp_->maps().config.lookup(0))->overlay_mtu, 1500u)
      << "larger packets go to the stack, which answers 'fragmentation needed'";
}

TEST_F(NativeSetupTest, TheDriftCheckPutsDetachedProgramsBack) {
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  ASSERT_TRUE(bpf::detachTcIngress(underlay_).ok());
  ASSERT_TRUE(bpf::detachTcEgress(underlay_).ok());
  ASSERT_EQ(ingressId(), 0u);
  auto ok = checkNodeNetwork(opts_, *dp_, *n);
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_TRUE(*ok);
  EXPECT_EQ(ingressId(), id(dp_->fromNativeFd()));
  EXPECT_EQ(egressId(), id(dp_->toNativeFd()));
}

TEST_F(NativeSetupTest, BackToVxlanModeSwapsTheUnderlayPrograms) {
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  opts_.mode = DatapathMode::kVxlan;
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_GT(n->overlayIfindex, 0);
  EXPECT_EQ(n->podMtu, 1450);
  EXPECT_EQ(ingressId(), id(dp_->fromTunnelFd())) << "sl_from_tunnel replaced sl_from_native";
  EXPECT_EQ(egressId(), 0u) << "vxlan mode has nothing at the underlay's egress";
  opts_.mode = DatapathMode::kNative;
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  EXPECT_EQ(ingressId(), id(dp_->fromNativeFd())) << "and back";
}

TEST_F(NativeSetupTest, VxlanModeDecapsulatesAtTheUnderlaysIngress) {
  opts_.mode = DatapathMode::kVxlan;
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(ingressId(), id(dp_->fromTunnelFd()));
  EXPECT_NE(std::system("tc qdisc show dev sltul0 | grep -q clsact"), 0)
      << "attached through TCX: no qdisc added to the node's device";
  auto cfg = dp_->maps().config.lookup(0);
  ASSERT_TRUE(cfg.ok() && cfg->has_value());
  EXPECT_EQ((*cfg)->underlay_ifindex, static_cast<uint32_t>(underlay_)) << "where from_pod sends VXLAN";
  EXPECT_EQ((*cfg)->node_ip4, self_.internalIP.v4NetOrder()) << "the outer source";
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  EXPECT_EQ(ingressId(), id(dp_->fromTunnelFd())) << "a restart changes nothing";

  ASSERT_TRUE(bpf::detachTcIngress(underlay_).ok());
  ASSERT_EQ(ingressId(), 0u);
  auto ok = checkNodeNetwork(opts_, *dp_, *n);
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  EXPECT_TRUE(*ok);
  EXPECT_EQ(ingressId(), id(dp_->fromTunnelFd())) << "the drift check puts it back";
}

TEST_F(NativeSetupTest, NativeModeRemovesTheOverlayOfAVxlanModeBefore) {
  opts_.mode = DatapathMode::kVxlan;
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  ASSERT_NE(if_nametoindex(kVxlanName), 0u);
  opts_.mode = DatapathMode::kNative;
  auto n = setupNodeNetwork(opts_, *dp_, self_);
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(if_nametoindex(kVxlanName), 0u) << "nothing uses sluice_vxlan in native mode";
  EXPECT_EQ(ingressId(), id(dp_->fromNativeFd()));
  EXPECT_EQ((*dp_->maps().config.lookup(0))->overlay_ifindex, 0u) << "from_pod must not redirect there";
}

TEST_F(NativeSetupTest, DetachingNativeProgramsLeavesOthersAlone) {
  // another Sluice program at an interface's hooks (a pod veth's) is not the underlay's
  ASSERT_TRUE(bpf::attachTcIngress(underlay_, dp_->fromPodFd()).ok());
  auto none = detachUnderlayFrom(underlay_, true);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  EXPECT_EQ(ingressId(), id(dp_->fromPodFd()));
  ASSERT_TRUE(bpf::detachTcIngress(underlay_).ok());

  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  auto some = detachUnderlayFrom(underlay_, true);
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(*some);
  EXPECT_EQ(ingressId(), 0u);
  EXPECT_EQ(egressId(), 0u);
}

TEST_F(NativeSetupTest, VxlanModeKeepsItsOwnUnderlayProgram) {
  opts_.mode = DatapathMode::kVxlan;
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  auto kept = detachUnderlayFrom(underlay_, false);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(*kept) << "vxlan mode's own clean-up of native programs leaves sl_from_tunnel";
  EXPECT_EQ(ingressId(), id(dp_->fromTunnelFd()));
  auto gone = detachUnderlayFrom(underlay_, true);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(*gone);
  EXPECT_EQ(ingressId(), 0u);
}

TEST_F(NativeSetupTest, UninstallDetachesTheTunnelProgram) {
  opts_.mode = DatapathMode::kVxlan;
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  auto dir = std::filesystem::temp_directory_path() / ("sluice-vxlan-uninstall-" + std::to_string(::getpid()));
  AgentOptions u = uninstallOptions(dir);
  auto r = uninstallNode(u);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->nativeDetached, 1) << "the underlay";
  EXPECT_EQ(ingressId(), 0u);
}

// Whether an agent runs is asked before anything is removed: a running one would put it all back.
// One that has exited is no obstacle even before its parent reaps it (init may take seconds to
// reap an agent it inherited).
TEST_F(NativeSetupTest, UninstallRefusesARunningAgentButNotOneThatHasExited) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-uninstall-agent-" + std::to_string(::getpid()));
  const AgentOptions u = uninstallOptions(dir);
  struct Cleanup {
    std::filesystem::path dir;
    pid_t pid = -1;
    ~Cleanup() {
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
      std::filesystem::remove_all(dir);
    }
  } cleanup{dir};
  // An agent as uninstall sees one: a process holding the state dir's instance lock (whose pid
  // this process may not even see: the agent's container has a PID namespace of its own).
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto lock = InstanceLock::tryAcquire(u.stateDir);
    const char ok = lock.ok() && *lock ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  cleanup.pid = pid;
  ::close(ready[1]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(ok, '1');
  auto refused = uninstallNode(u);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("still running"), std::string::npos) << refused.error().describe();

  // Killed, not yet reaped (a zombie, as init may leave one for seconds): the lock went with it.
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  auto done = uninstallNode(u);
  EXPECT_TRUE(done.ok()) << done.error().describe();
}

TEST_F(NativeSetupTest, UninstallDetachesTheNativePrograms) {
  ASSERT_TRUE(setupNodeNetwork(opts_, *dp_, self_).ok());
  auto dir = std::filesystem::temp_directory_path() / ("sluice-native-uninstall-" + std::to_string(::getpid()));
  AgentOptions u = uninstallOptions(dir);  // nothing pinned under its bpf root: this datapath is unpinned
  auto r = uninstallNode(u);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->nativeDetached, 1);
  EXPECT_EQ(ingressId(), 0u);
  EXPECT_EQ(egressId(), 0u);
  auto again = uninstallNode(u);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(again->nativeDetached, 0) << "idempotent";
}

}  // namespace
}  // namespace sluice::agent
