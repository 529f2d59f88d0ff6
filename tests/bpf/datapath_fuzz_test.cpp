// SPDX-License-Identifier: Apache-2.0
// sl_from_pod against its reference model (datapath_model.h): seeded random map states and
// frames, every verdict, output byte, counter and tunnel key compared. The seed and the size
// are fixed so a failure reproduces; SLUICE_DATAPATH_FUZZ_SEED / _SCENARIOS / _FRAMES change
// them for longer runs (tests/fuzz/fuzz_datapath is the coverage-guided variant).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>

#include "datapath_model.h"
#include "packet.h"

namespace sluice::test::model {
namespace {

uint64_t envNumber(const char* name, uint64_t def) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : def;
}

class DatapathModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = Runner::create();
    ASSERT_TRUE(r.ok()) << r.error().describe();
    runner_ = std::move(r).value().release();
  }
  static void TearDownTestSuite() {
    delete runner_;
    runner_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(runner_, nullptr); }
  static inline Runner* runner_ = nullptr;
};

TEST_F(DatapathModelTest, RandomFramesMatchTheReferenceModel) {
  const uint64_t seed = envNumber("SLUICE_DATAPATH_FUZZ_SEED", 20261128);
  const uint64_t scenarios = envNumber("SLUICE_DATAPATH_FUZZ_SCENARIOS", 60);
  const uint64_t frames = envNumber("SLUICE_DATAPATH_FUZZ_FRAMES", 200);
  std::map<int, uint64_t> byCounter;
  int failures = 0;
  uint64_t mayRefuse = 0;
  for (uint64_t sc = 0; sc < scenarios && failures < 5; ++sc) {
    const State s = sc < kFixedScenarios ? scenario(static_cast<unsigned>(sc), runner_->ifindexes())
                                         : Generator(seed + sc, runner_->ifindexes()).state();
    ASSERT_TRUE(runner_->apply(s).ok());
    Generator g(seed * 7919 + sc, runner_->ifindexes());
    for (uint64_t i = 0; i < frames && failures < 5; ++i) {
      const Frame f = g.frame(s);
      const Decision d = decideFromPod(s, f);
      ++byCounter[d.counter];
      mayRefuse += d.kernelMayRefuse;
      const std::string mismatch = runner_->check(s, f);
      if (!mismatch.empty()) {
        ++failures;
        ADD_FAILURE() << "seed " << seed << " scenario " << sc << " frame " << i << ":\n" << mismatch;
      }
    }
  }
  // The run must have exercised every decision, or it proves little.
  for (int counter : std::initializer_list<int>{SL_CNT_REDIRECT_LOCAL, SL_CNT_ENCAP, SL_CNT_ENCAP_DIRECT, SL_CNT_NATIVE, SL_CNT_TO_STACK,
                                               SL_CNT_DROP(SL_DROP_MALFORMED), SL_CNT_DROP(SL_DROP_SPOOFED_SRC),
                                               SL_CNT_DROP(SL_DROP_UNKNOWN_IFACE)})
    EXPECT_GE(byCounter[counter], scenarios * frames / 200) << "too few frames decided as counter " << counter;
  EXPECT_GE(runner_->ran() + mayRefuse, scenarios * frames) << "frames refused that the kernel must run";
  EXPECT_GE(runner_->ran(), scenarios * frames * 9 / 10);
  EXPECT_GE(runner_->tunnelsChecked(), byCounter[SL_CNT_ENCAP] / 4) << "tunnel keys checked on the real path";
  RecordProperty("frames_run", std::to_string(runner_->ran()));
  RecordProperty("tunnel_keys_checked", std::to_string(runner_->tunnelsChecked()));
}

// The comparison itself can fail: a model that disagrees with the maps is caught on the
// MACs, the verdict and the tunnel key.
TEST_F(DatapathModelTest, ADisagreementIsReported) {
  const State s = scenario(0, runner_->ifindexes());
  ASSERT_TRUE(runner_->apply(s).ok());

  // pod A (veth 0) to pod B: a local redirect; the model is told another MAC.
  Frame local;
  local.ifindex = runner_->ifindexes()[0];
  local.bytes = {0x02, 0xbb, 0, 0, 0, 2, 0x02, 0xaa, 0, 0, 0, 2, 0x08, 0x00,
                 0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 244, 1, 2, 10, 244, 1, 3,
                 0x9c, 0x40, 0x13, 0x88, 0, 8, 0, 0};
  EXPECT_EQ(runner_->check(s, local), "") << "the unmodified model agrees";
  State wrongMac = s;
  wrongMac.endpoints[0].ep.pod_mac[5] ^= 0xff;
  EXPECT_NE(runner_->check(wrongMac, local).find("output differs"), std::string::npos);

  // to node-2: encapsulated; the model is told another VNI, then another node.
  Frame remote = local;
  remote.bytes[14 + 18] = 2;  // 10.244.2.9
  remote.bytes[14 + 19] = 9;
  const uint64_t tunnels = runner_->tunnelsChecked();
  EXPECT_EQ(runner_->check(s, remote), "");
  EXPECT_EQ(runner_->tunnelsChecked(), tunnels + 1) << "the tunnel key was checked on the real path";
  State wrongVni = s;
  wrongVni.config.vni = 2;
  EXPECT_NE(runner_->check(wrongVni, remote).find("tunnel key"), std::string::npos);
  State wrongNode = s;
  wrongNode.routes[0].route.node_ip4 ^= 0x01000000;  // 198.18.0.2 -> .3
  EXPECT_NE(runner_->check(wrongNode, remote).find("tunnel key"), std::string::npos);

  // no identity for the veth: the model that thinks there is one disagrees on the verdict.
  Frame stranger = local;
  stranger.ifindex = runner_->ifindexes()[2];
  State known = s;
  known.ifaces.emplace_back(runner_->ifindexes()[2], s.ifaces[0].second);
  EXPECT_NE(runner_->check(known, stranger).find("verdict"), std::string::npos);
  EXPECT_EQ(runner_->check(s, stranger), "");
}

// Dual stack over an IPv4 underlay, on the real path: a pod's IPv6 packet to node-3's IPv6 pod
// CIDR leaves the underlay as VXLAN in IPv4 to node-3's IPv4 address, with the VNI; a model
// that names another node or VNI is contradicted by the captured packet.
TEST_F(DatapathModelTest, Ipv6PodTrafficRidesTheIpv4Underlay) {
  const State s = scenario(0, runner_->ifindexes());
  ASSERT_TRUE(runner_->apply(s).ok());
  Frame f;
  f.ifindex = runner_->ifindexes()[0];
  Ip6Spec spec;
  spec.src = "fd00:10:244:1::2";  // pod A's own
  spec.dst = "fd00:10:244:3::9";
  spec.nextHeader = 17;
  spec.payload = Bytes(64, 0x5a);
  f.bytes = ip6Frame(Mac{0x02, 0xbb, 0, 0, 0, 2}, Mac{0x02, 0xaa, 0, 0, 0, 2}, spec);

  const Decision d = decideFromPod(s, f);
  ASSERT_EQ(d.counter, SL_CNT_ENCAP) << d.why;
  ASSERT_TRUE(d.tunnel.has_value());
  EXPECT_FALSE(d.tunnel->ipv6) << "the underlay stays IPv4";
  EXPECT_EQ(d.tunnel->remote4, 0xc6120003u) << "198.18.0.3";
  const uint64_t tunnels = runner_->tunnelsChecked();
  EXPECT_EQ(runner_->check(s, f), "");
  EXPECT_EQ(runner_->tunnelsChecked(), tunnels + 1) << "the tunnel key was checked on the real path";

  State wrongNode = s;
  bool found = false;
  for (auto& r : wrongNode.routes)
    if (r.family == SL_AF_INET6 && r.route.node_ip4 != 0) {
      r.route.node_ip4 ^= 0x01000000;  // 198.18.0.3 -> .2
      found = true;
    }
  ASSERT_TRUE(found) << "scenario 0 has an IPv6 pod CIDR over the IPv4 underlay";
  ASSERT_TRUE(runner_->apply(s).ok());
  EXPECT_NE(runner_->check(wrongNode, f).find("tunnel key"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test::model
