// SPDX-License-Identifier: Apache-2.0
// Loading and pinning under a bpffs of our own, reuse across restarts, refusing foreign
// layouts, and tc attachment by fd.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <bpf/libbpf.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "fixture.h"
#include "sluice/bpf/tc.h"

namespace sluice::test {
namespace {

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sltbpf.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(mount("bpf", dir_.c_str(), "bpf", 0, nullptr), 0) << std::strerror(errno);
    root_ = dir_ + "/sluice";
  }
  void TearDown() override {
    umount2(dir_.c_str(), MNT_DETACH);
    rmdir(dir_.c_str());
  }
  std::string dir_, root_;
};

TEST_F(LoaderTest, PinsEveryMapAndProgram) {
  EXPECT_FALSE(bpf::datapathPinned(root_));
  auto dp = bpf::Datapath::load({root_});
  ASSERT_TRUE(dp.ok()) << dp.error().describe();
  for (const char* n : {SL_MAP_ENDPOINTS, SL_MAP_IFACES, SL_MAP_ROUTES, SL_MAP_CONFIG, SL_MAP_METRICS,
                        SL_MAP_STACK_FLOWS, SL_MAP_STACK_FRAGS, SL_PROG_FROM_POD, SL_PROG_TO_POD,
                        SL_PROG_FROM_OVERLAY, SL_PROG_TO_OVERLAY, SL_PROG_FROM_NATIVE, SL_PROG_TO_NATIVE,
                        SL_PROG_FROM_TUNNEL})
    EXPECT_EQ(access(bpf::pinPath(root_, n).c_str(), F_OK), 0) << n;
  EXPECT_TRUE(bpf::datapathPinned(root_));
  auto maps = bpf::PinnedMaps::open(root_);
  ASSERT_TRUE(maps.ok()) << maps.error().describe();
  EXPECT_EQ((*maps->config.lookup(0))->layout_version, static_cast<uint32_t>(SL_LAYOUT_VERSION));
}

TEST_F(LoaderTest, ASecondLoadReusesTheMapsAndTheirContents) {
  {
    auto dp = bpf::Datapath::load({root_});
    ASSERT_TRUE(dp.ok()) << dp.error().describe();
    sl_endpoint ep{};
    ep.ifindex = 42;
    ASSERT_TRUE(dp->maps().endpoints.update(epKey("10.244.1.5"), ep).ok());
    sl_config c = **dp->maps().config.lookup(0);
    c.vni = 77;
    ASSERT_TRUE(dp->maps().config.update(0, c).ok());
  }  // the first "agent" exits; pins stay
  auto dp = bpf::Datapath::load({root_});
  ASSERT_TRUE(dp.ok()) << dp.error().describe();
  auto got = dp->maps().endpoints.lookup(epKey("10.244.1.5"));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value()) << "endpoint entries survive a reload";
  EXPECT_EQ((*got)->ifindex, 42u);
  EXPECT_EQ((*dp->maps().config.lookup(0))->vni, 77u) << "config survives a reload";
  auto pinnedProg = bpf::openPinned(bpf::pinPath(root_, SL_PROG_FROM_POD));
  ASSERT_TRUE(pinnedProg.ok());
  EXPECT_EQ(*bpf::progId(pinnedProg->get()), *bpf::progId(dp->fromPodFd())) << "the pin points at the new program";
}

TEST_F(LoaderTest, RefusesMapsOfAnotherLayoutVersion) {
  {
    auto dp = bpf::Datapath::load({root_});
    ASSERT_TRUE(dp.ok());
    sl_config c = **dp->maps().config.lookup(0);
    c.layout_version = SL_LAYOUT_VERSION + 1;
    ASSERT_TRUE(dp->maps().config.update(0, c).ok());
  }
  auto dp = bpf::Datapath::load({root_});
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.error().message().find("layout version"), std::string::npos) << dp.error().message();
  auto maps = bpf::PinnedMaps::open(root_);
  ASSERT_FALSE(maps.ok()) << "the plugin must not write into maps it cannot read";
  EXPECT_NE(maps.error().message().find("layout version"), std::string::npos);
  EXPECT_FALSE(bpf::datapathPinned(root_));
}

// Maps pinned by a build without the NAT detection maps are reused, the new maps are added
// next to them, and the programs of both objects share them.
TEST_F(LoaderTest, ALoadOverAnOlderDatapathAddsTheNewMaps) {
  {
    auto dp = bpf::Datapath::load({root_});
    ASSERT_TRUE(dp.ok()) << dp.error().describe();
    sl_endpoint ep{};
    ep.ifindex = 7;
    ASSERT_TRUE(dp->maps().endpoints.update(epKey("10.244.1.9"), ep).ok());
  }
  for (const char* n : {SL_MAP_STACK_FLOWS, SL_MAP_STACK_FRAGS, SL_PROG_TO_POD})
    ASSERT_EQ(unlink(bpf::pinPath(root_, n).c_str()), 0) << n;
  EXPECT_FALSE(bpf::datapathPinned(root_)) << "a datapath without them is incomplete";
  auto dp = bpf::Datapath::load({root_});
  ASSERT_TRUE(dp.ok()) << dp.error().describe();
  EXPECT_TRUE(bpf::datapathPinned(root_));
  EXPECT_TRUE(dp->maps().endpoints.lookup(epKey("10.244.1.9"))->has_value()) << "old contents kept";
  sl_flow_key k{};
  k.family = SL_AF_INET;
  k.proto = 6;
  ASSERT_TRUE(dp->stackFlows().update(k, sl_flow{}).ok());
  auto pinned = bpf::StackFlowMap::openPinned(root_, SL_MAP_STACK_FLOWS);
  ASSERT_TRUE(pinned.ok()) << pinned.error().describe();
  EXPECT_TRUE((*pinned->lookup(k)).has_value()) << "the pin is the map the programs use";
}

TEST_F(LoaderTest, MissingDatapathIsReportedAsSuch) {
  auto maps = bpf::PinnedMaps::open(root_);
  ASSERT_FALSE(maps.ok());
  EXPECT_EQ(maps.error().code(), CniCode::kDatapathMissing);
  auto fd = bpf::openPinned(bpf::pinPath(root_, SL_PROG_FROM_POD));
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code(), CniCode::kDatapathMissing);
}

TEST_F(LoaderTest, MapsOfTheWrongShapeAreRefused) {
  auto dp = bpf::Datapath::load({root_});
  ASSERT_TRUE(dp.ok());
  auto wrong = bpf::Map<uint32_t, uint32_t>::openPinned(root_, SL_MAP_ENDPOINTS);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message().find("sizes"), std::string::npos);
}

// Asking a link without a clsact qdisc for its filter is an answer (none), which the agent's
// drift check asks every second: it logs nothing at info level (the kernel's "Parent Qdisc
// doesn't exists" through libbpf goes to debug), while libbpf's warnings elsewhere still do.
TEST_F(LoaderTest, QueryingALinkWithoutClsactLogsNothingAtInfo) {
  VethPair veth("sltldqa", "sltldqb");
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  capture->set_level(spdlog::level::info);
  spdlog::set_default_logger(capture);
  struct Restore {
    std::shared_ptr<spdlog::logger> logger;
    ~Restore() { spdlog::set_default_logger(logger); }
  } restore{previous};
  EXPECT_EQ(*bpf::tcIngressProgId(veth.a()), 0u);
  EXPECT_EQ(*bpf::tcEgressProgId(veth.a()), 0u);
  capture->flush();
  EXPECT_EQ(out.str(), "");
  // Control: the same call without the quiet guard is what logged (libbpf's warning at info).
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = veth.a();
  hook.attach_point = BPF_TC_INGRESS;
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = 1;
  opts.priority = 1;
  EXPECT_NE(bpf_tc_query(&hook, &opts), 0);
  capture->flush();
  EXPECT_NE(out.str().find("libbpf"), std::string::npos) << "control: libbpf said nothing, so the check proves nothing";
}

TEST_F(LoaderTest, TcAttachReplaceQueryDetach) {
  VethPair veth("sltldra", "sltldrb");
  auto dp = bpf::Datapath::load({root_});
  ASSERT_TRUE(dp.ok());
  EXPECT_EQ(*bpf::tcIngressProgId(veth.a()), 0u);
  ASSERT_TRUE(bpf::attachTcIngress(veth.a(), dp->fromPodFd()).ok());
  EXPECT_EQ(*bpf::tcIngressProgId(veth.a()), *bpf::progId(dp->fromPodFd()));
  // attaching again at the same slot replaces the program in place (agent upgrade)
  ASSERT_TRUE(bpf::attachTcIngress(veth.a(), dp->fromOverlayFd()).ok());
  EXPECT_EQ(*bpf::tcIngressProgId(veth.a()), *bpf::progId(dp->fromOverlayFd()));
  ASSERT_TRUE(bpf::attachTcEgress(veth.a(), dp->toOverlayFd()).ok());
  EXPECT_EQ(*bpf::tcEgressProgId(veth.a()), *bpf::progId(dp->toOverlayFd()));
  ASSERT_TRUE(bpf::attachTcEgress(veth.a(), dp->toPodFd()).ok());
  EXPECT_EQ(*bpf::tcEgressProgId(veth.a()), *bpf::progId(dp->toPodFd()));
  ASSERT_TRUE(bpf::detachTcIngress(veth.a()).ok());
  EXPECT_EQ(*bpf::tcIngressProgId(veth.a()), 0u);
  EXPECT_TRUE(bpf::detachTcIngress(veth.a()).ok()) << "detaching twice is success";
  ASSERT_TRUE(bpf::detachTcEgress(veth.a()).ok());
  EXPECT_EQ(*bpf::tcEgressProgId(veth.a()), 0u);
}

TEST_F(LoaderTest, CounterNamesCoverEveryVerdictAndDropReason) {
  for (int id : {SL_CNT_REDIRECT_LOCAL, SL_CNT_ENCAP, SL_CNT_DECAP, SL_CNT_TO_STACK, SL_CNT_NATIVE,
                 SL_CNT_TO_STACK_NAT, SL_CNT_NATIVE_IN, SL_CNT_ENCAP_DIRECT, SL_CNT_DECAP_DIRECT,
                 SL_CNT_LINK_SCOPE})
    EXPECT_NE(bpf::counterName(id), nullptr) << id;
  for (int r = 1; r <= SL_DROP_MAX_REASON; ++r) {
    EXPECT_NE(bpf::dropReasonName(-r), nullptr) << r;
    EXPECT_STREQ(bpf::counterName(SL_CNT_DROP(-r)), bpf::dropReasonName(-r));
  }
  EXPECT_EQ(bpf::counterName(SL_CNT_MAX - 1), nullptr);
}

}  // namespace
}  // namespace sluice::test
