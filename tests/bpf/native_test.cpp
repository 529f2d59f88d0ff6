// SPDX-License-Identifier: Apache-2.0
// Native routing (bpf/native.bpf.c and from_pod's native branch): what arrives on the underlay
// for a local pod from a remote node's pod (or node) goes straight in; everything else on the
// node's own network passes on untouched and uncounted; with flow records as the NAT detection,
// flows the stack routes to a remote pod are recorded at the underlay's egress, and from_pod's
// own redirects, marked, are not.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

#include "fixture.h"

namespace sluice::test::native {
namespace {

const Mac kPodAMac{0x02, 0xaa, 0, 0, 0, 0x22};
const Mac kHostAMac{0x02, 0xbb, 0, 0, 0, 0x22};
const Mac kUnderlayMac{0x02, 0xdd, 0, 0, 0, 0x01};   // this node's underlay device
const Mac kPeerNodeMac{0x02, 0xdd, 0, 0, 0, 0x02};   // the remote node's
const Mac kOtherHostMac{0x02, 0xdd, 0, 0, 0, 0x03};  // a third host on the same segment

// Node 198.18.0.1: pod A 10.244.1.2 (and fd00:10:244:1::2) on veth a; veth b stands for the
// underlay. Node 198.18.0.2 owns 10.244.2.0/24 and fd00:10:244:2::/64; its node address has a
// node-address route (/32 to itself), as the agent's plan makes.
class NativeTest : public DatapathSuite {
 protected:
  static void SetUpTestSuite() { loadDatapath("sltnva", "sltnvb", "02:dd:00:00:00:01"); }

  void SetUp() override {
    clearMaps();
    sl_iface a{};
    a.flags = SL_IFACE_F_HAS_V4;
    a.ip4 = ip4Net("10.244.1.2");
    ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->a()), a).ok());
    addEndpoint("10.244.1.2");
    addEndpoint("fd00:10:244:1::2");
    addRoute("10.244.2.0/24", "198.18.0.2");
    addRoute("198.18.0.2/32", "198.18.0.2");
    sl_route r6{};
    r6.node_ip4 = ip4Net("198.18.0.2");
    ASSERT_TRUE(maps().routes.update(routeKey("fd00:10:244:2::/64"), r6).ok());
    sl_config c{};
    c.layout_version = SL_LAYOUT_VERSION;
    c.mode = SL_MODE_NATIVE;
    c.node_ip4 = ip4Net("198.18.0.1");
    c.underlay_ifindex = static_cast<uint32_t>(underlay());
    c.overlay_mtu = 1500;
    ASSERT_TRUE(maps().config.update(0, c).ok());
    before_ = counters();
  }

  static int underlay() { return veth_->b(); }

  static void addEndpoint(const std::string& ip) {
    sl_endpoint ep{};
    ep.ifindex = static_cast<uint32_t>(veth_->a());
    std::memcpy(ep.pod_mac, kPodAMac.data(), 6);
    std::memcpy(ep.host_mac, kHostAMac.data(), 6);
    ASSERT_TRUE(maps().endpoints.update(epKey(ip), ep).ok());
  }
  static void addRoute(const std::string& cidr, const std::string& node) {
    sl_route r{};
    r.node_ip4 = ip4Net(node);
    ASSERT_TRUE(maps().routes.update(routeKey(cidr), r).ok());
  }
  static void setNatFlags(uint32_t flags) {
    sl_config c = **maps().config.lookup(0);
    c.flags = flags;
    ASSERT_TRUE(maps().config.update(0, c).ok());
  }

  static size_t recordCount() {
    auto e = dp_->stackFlows().entries();
    EXPECT_TRUE(e.ok());
    return e.ok() ? e->size() : 0;
  }
  static bool recorded(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
    sl_flow_key k{};
    k.family = SL_AF_INET;
    k.proto = 17;
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.saddr[0] = ip4Net(src);
    k.daddr[0] = ip4Net(dst);
    auto v = dp_->stackFlows().lookup(k);
    return v.ok() && v->has_value();
  }

  // A remote pod's packet to pod A as it arrives on the underlay: addressed to this host.
  static Ip4Spec fromRemotePod() {
    Ip4Spec s;
    s.src = "10.244.2.9";
    s.dst = "10.244.1.2";
    s.sport = 5000;
    s.dport = 40000;
    return s;
  }
  static RunResult fromNative(const Bytes& f, bool mayRefuse = false) {
    return runProg(dp_->fromNativeFd(), f, underlay(), mayRefuse);
  }
  static RunResult toNative(const Bytes& f, uint32_t mark = 0, uint32_t* markOut = nullptr) {
    __sk_buff ctx{};
    ctx.ifindex = static_cast<uint32_t>(underlay());
    ctx.mark = mark;
    auto r = runProgCtx(dp_->toNativeFd(), f, ctx);
    if (markOut != nullptr) *markOut = ctx.mark;
    return r;
  }
  static RunResult fromPodA(const Bytes& f, uint32_t* markOut = nullptr) {
    __sk_buff ctx{};
    ctx.ifindex = static_cast<uint32_t>(veth_->a());
    auto r = runProgCtx(dp_->fromPodFd(), f, ctx);
    if (markOut != nullptr) *markOut = ctx.mark;
    return r;
  }
  void expectPassedOnUntouched(const RunResult& r, const Bytes& in, const std::string& what) const {
    EXPECT_EQ(r.retval, TC_ACT_UNSPEC) << what << ": passed on (TC_ACT_UNSPEC), later programs run";
    EXPECT_EQ(r.out, in) << what << ": untouched";
    expectOnlyCounter(-1);
  }

};

TEST_F(NativeTest, RemotePodToLocalPodGoesStraightIn) {
  Bytes in = ip4Frame(kUnderlayMac, kPeerNodeMac, fromRemotePod());
  auto r = fromNative(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), in.size());
  EXPECT_EQ(macAt(r.out, 0), kPodAMac) << "destination MAC: the pod's eth0";
  EXPECT_EQ(macAt(r.out, 6), kHostAMac) << "source MAC: its host veth";
  EXPECT_EQ(r.out[14 + 8], 63) << "a routed hop, as the stack would have made it";
  EXPECT_TRUE(ip4ChecksumValid(r.out));
  EXPECT_EQ(std::memcmp(r.out.data() + 14 + 12, in.data() + 14 + 12, in.size() - 26), 0)
      << "addresses and payload untouched";
  expectOnlyCounter(SL_CNT_NATIVE_IN);
}

TEST_F(NativeTest, RemoteNodeToLocalPodGoesStraightIn) {
  Ip4Spec s = fromRemotePod();
  s.src = "198.18.0.2";  // the remote node's host stack (its node-address route)
  auto r = fromNative(ip4Frame(kUnderlayMac, kPeerNodeMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_NATIVE_IN);
}

TEST_F(NativeTest, Ipv6FromARemotePodGoesStraightIn) {
  Ip6Spec s;
  s.src = "fd00:10:244:2::9";
  s.dst = "fd00:10:244:1::2";
  auto r = fromNative(ip6Frame(kUnderlayMac, kPeerNodeMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(macAt(r.out, 0), kPodAMac);
  EXPECT_EQ(r.out[14 + 7], 63) << "hop limit decremented";
  expectOnlyCounter(SL_CNT_NATIVE_IN);
}

TEST_F(NativeTest, Ipv6WithExtensionHeadersGoesToTheStack) {
  Ip6Spec s;
  s.src = "fd00:10:244:2::9";
  s.dst = "fd00:10:244:1::2";
  s.nextHeader = 0;  // hop-by-hop options: the upper layer is out of the NAT check's sight
  Bytes in = ip6Frame(kUnderlayMac, kPeerNodeMac, s);
  auto r = fromNative(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(NativeTest, ASourceOutsideTheRemotePodCidrsIsTheStacksToJudge) {
  // the outside world, and an address of this node's own pods (spoofed from the wire): the
  // stack's rp_filter and forwarding rules decide, as without Sluice
  for (const char* src : {"198.18.0.254", "10.244.1.7"}) {
    before_ = counters();
    Ip4Spec s = fromRemotePod();
    s.src = src;
    Bytes in = ip4Frame(kUnderlayMac, kPeerNodeMac, s);
    auto r = fromNative(in);
    EXPECT_EQ(r.retval, TC_ACT_OK) << src;
    EXPECT_EQ(r.out, in) << src << ": untouched";
    expectOnlyCounter(SL_CNT_TO_STACK);
  }
}

TEST_F(NativeTest, NodeTrafficPassesOnUntouchedAndUncounted) {
  Ip4Spec s = fromRemotePod();
  s.src = "198.18.0.2";
  s.dst = "198.18.0.1";  // the node itself (kubelet, SSH, ...)
  Bytes in = ip4Frame(kUnderlayMac, kPeerNodeMac, s);
  expectPassedOnUntouched(fromNative(in), in, "to the node");

  s.dst = "10.96.0.10";  // a Service address: kube-proxy's
  in = ip4Frame(kUnderlayMac, kPeerNodeMac, s);
  expectPassedOnUntouched(fromNative(in), in, "to a Service address");
}

TEST_F(NativeTest, ArpPassesOnUntouched) {
  Bytes req = arpRequest(kPeerNodeMac, "198.18.0.2", "198.18.0.1");
  expectPassedOnUntouched(fromNative(req), req, "broadcast ARP request");
  Bytes unicast = req;
  std::memcpy(unicast.data(), kUnderlayMac.data(), 6);  // a unicast ARP (reply, probe)
  expectPassedOnUntouched(fromNative(unicast), unicast, "unicast ARP");
}

TEST_F(NativeTest, AFrameForAnotherHostIsNotPickedUp) {
  // A switch floods a frame for another host's MAC: addressed to a local pod at L3 or not,
  // it is not routed here (the stack drops it as PACKET_OTHERHOST).
  Bytes in = ip4Frame(kOtherHostMac, kPeerNodeMac, fromRemotePod());
  expectPassedOnUntouched(fromNative(in), in, "unicast to another MAC");
  Bytes bcast = ip4Frame(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kPeerNodeMac, fromRemotePod());
  expectPassedOnUntouched(fromNative(bcast), bcast, "broadcast");
}

TEST_F(NativeTest, MalformedIpPassesOnToTheStack) {
  Bytes in = ip4Frame(kUnderlayMac, kPeerNodeMac, fromRemotePod());
  in[14] = 0x43;  // IHL 3: invalid
  auto r = fromNative(in, true);
  if (r.err != 0) {  // recent kernels refuse to build such an skb for a test run
    EXPECT_EQ(errno, EINVAL) << std::strerror(errno);
    return;
  }
  expectPassedOnUntouched(r, in, "IHL 3");
}

TEST_F(NativeTest, ExpiringTtlGoesToTheStack) {
  Ip4Spec s = fromRemotePod();
  s.ttl = 1;
  Bytes in = ip4Frame(kUnderlayMac, kPeerNodeMac, s);
  auto r = fromNative(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "the stack answers with ICMP time exceeded";
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(NativeTest, AReplyOfATranslatedFlowGoesToTheStack) {
  // Pod A reached a Service whose backend is 10.244.2.9 (DNAT in this node's stack): the
  // backend's reply must meet conntrack here. Flow records: the underlay's egress recorded the
  // DNATed packet; its reply is what from_native then sees.
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  Ip4Spec fwd;
  fwd.src = "10.244.1.2";
  fwd.dst = "10.244.2.9";
  fwd.sport = 40000;
  fwd.dport = 5000;
  auto out = toNative(ip4Frame(kPeerNodeMac, kUnderlayMac, fwd));
  EXPECT_EQ(out.retval, TC_ACT_UNSPEC);
  ASSERT_TRUE(recorded("10.244.2.9", 5000, "10.244.1.2", 40000)) << "recorded under its reply's tuple";

  Bytes reply = ip4Frame(kUnderlayMac, kPeerNodeMac, fromRemotePod());
  auto r = fromNative(reply);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, reply) << "the stack gets it untouched";
  expectOnlyCounter(SL_CNT_TO_STACK_NAT);

  // control: with the detection off the same reply is redirected (and would reach the client
  // with the backend's address)
  setNatFlags(SL_CFG_F_NAT_OFF);
  before_ = counters();
  EXPECT_EQ(fromNative(reply).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_NATIVE_IN);
}

TEST_F(NativeTest, EgressRecordsStackRoutedFlowsToRemotePodsOnlyWithFlowRecords) {
  Ip4Spec fwd;
  fwd.src = "10.244.1.2";
  fwd.dst = "10.244.2.9";
  fwd.sport = 40001;
  fwd.dport = 5001;
  Bytes in = ip4Frame(kPeerNodeMac, kUnderlayMac, fwd);

  setNatFlags(SL_CFG_F_NAT_OFF);
  auto r = toNative(in);
  EXPECT_EQ(r.retval, TC_ACT_UNSPEC);
  EXPECT_EQ(recordCount(), 0u) << "no detection: nothing recorded";

  setNatFlags(SL_CFG_F_NAT_RECORDS);
  r = toNative(in);
  EXPECT_EQ(r.retval, TC_ACT_UNSPEC);
  EXPECT_EQ(r.out, in) << "egress never changes a packet";
  EXPECT_TRUE(recorded("10.244.2.9", 5001, "10.244.1.2", 40001));
  EXPECT_EQ(recordCount(), 1u);
  expectOnlyCounter(-1);

  // node to node (the remote node's address route), the outside world: not pod traffic
  Ip4Spec node = fwd;
  node.src = "198.18.0.1";
  node.dst = "198.18.0.2";
  toNative(ip4Frame(kPeerNodeMac, kUnderlayMac, node));
  node.dst = "198.18.0.254";
  toNative(ip4Frame(kPeerNodeMac, kUnderlayMac, node));
  EXPECT_EQ(recordCount(), 1u) << "only flows to a remote pod CIDR are recorded";
}

TEST_F(NativeTest, FromPodMarksItsRedirectsOnlyWithFlowRecordsAndTheEgressClearsTheMark) {
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.2.9";
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);

  setNatFlags(SL_CFG_F_NAT_OFF);
  uint32_t mark = 0;
  auto r = fromPodA(in, &mark);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(mark, 0u) << "no flow records: no mark";

  setNatFlags(SL_CFG_F_NAT_RECORDS);
  r = fromPodA(in, &mark);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(mark, SL_MARK_NATIVE);

  // the redirected packet at the underlay's egress: not recorded, mark gone, other bits kept
  uint32_t after = 0;
  auto e = toNative(r.out, mark | 0x4000u, &after);
  EXPECT_EQ(e.retval, TC_ACT_UNSPEC);
  EXPECT_EQ(after, 0x4000u);
  EXPECT_EQ(recordCount(), 0u) << "from_pod's own redirect is no stack flow";
}

TEST_F(NativeTest, FromPodSendsWhatTheUnderlayCannotCarryToTheStack) {
  // a pod whose MTU is set above the underlay's (1500 here): the stack's route answers
  // "fragmentation needed"; a redirect would have the underlay drop it silently
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.2.9";
  s.payload = 1500 - 20 + 1;
  Bytes big = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPodA(big);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, big);
  expectOnlyCounter(SL_CNT_TO_STACK);

  before_ = counters();
  s.payload = 1500 - 20;  // exactly the underlay's MTU: redirected
  EXPECT_EQ(fromPodA(ip4Frame(kHostAMac, kPodAMac, s)).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_NATIVE);
}

TEST_F(NativeTest, Ipv6FromPodGoesToTheNodesIpv6AddressWithinTheUnderlaysMtu) {
  // dual-stack nodes: the agent gives a remote IPv6 pod CIDR its node's IPv6 address as next hop
  sl_iface a{};
  a.flags = SL_IFACE_F_HAS_V4 | SL_IFACE_F_HAS_V6;
  a.ip4 = ip4Net("10.244.1.2");
  std::memcpy(a.ip6, slIp("fd00:10:244:1::2").addr, 16);
  ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->a()), a).ok());
  sl_route r6{};
  r6.node_ip4 = ip4Net("198.18.0.2");
  std::memcpy(r6.node_ip6, slIp("fd00:198:18::2").addr, 16);
  ASSERT_TRUE(maps().routes.update(routeKey("fd00:10:244:2::/64"), r6).ok());

  Ip6Spec s;
  s.dst = "fd00:10:244:2::9";
  s.payload = Bytes(1500 - 40, 0xab);  // exactly the underlay's MTU: redirected
  auto r = fromPodA(ip6Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.out[14 + 7], 63) << "a routed hop";
  expectOnlyCounter(SL_CNT_NATIVE);

  before_ = counters();
  s.payload = Bytes(1500 - 40 + 1, 0xab);  // one byte more: the stack answers "packet too big"
  Bytes big = ip6Frame(kHostAMac, kPodAMac, s);
  r = fromPodA(big);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, big);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

}  // namespace
}  // namespace sluice::test::native
