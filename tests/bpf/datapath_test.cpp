// SPDX-License-Identifier: Apache-2.0
// Every verdict of from_pod, from_overlay and to_overlay on crafted frames.
#include <gtest/gtest.h>

#include <cstring>

#include "fixture.h"

namespace sluice::test {
namespace {

const Mac kPodAMac{0x02, 0xaa, 0, 0, 0, 0x02};
const Mac kHostAMac{0x02, 0xbb, 0, 0, 0, 0x02};
const Mac kPodBMac{0x02, 0xaa, 0, 0, 0, 0x03};
const Mac kHostBMac{0x02, 0xbb, 0, 0, 0, 0x03};

class DatapathTest : public DatapathSuite {
 protected:
  static void SetUpTestSuite() { loadDatapath("sltdpa", "sltdpb"); }

  void SetUp() override {
    clearMaps();
    // pod A (10.244.1.2) on veth a; pod B (10.244.1.3) on veth b
    sl_iface a{};
    a.flags = SL_IFACE_F_HAS_V4 | SL_IFACE_F_HAS_V6;
    a.ip4 = ip4Net("10.244.1.2");
    sl_ip a6 = slIp("fd00:10:244:1::2");
    std::memcpy(a.ip6, a6.addr, 16);
    ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->a()), a).ok());
    addEndpoint("10.244.1.3", veth_->b(), kPodBMac, kHostBMac);
    addEndpoint("fd00:10:244:1::3", veth_->b(), kPodBMac, kHostBMac);
    sl_config c{};
    c.layout_version = SL_LAYOUT_VERSION;
    c.mode = SL_MODE_VXLAN;
    c.node_ip4 = ip4Net("198.18.0.1");
    c.overlay_ifindex = static_cast<uint32_t>(veth_->b());  // any existing device will do
    c.vni = 1;
    c.overlay_mtu = 1450;
    ASSERT_TRUE(maps().config.update(0, c).ok());
    addRoute("10.244.2.0/24", "198.18.0.2");
    addRoute("fd00:10:244:2::/64", "198.18.0.2");  // dual stack: IPv6 pods, IPv4 underlay
    before_ = counters();
  }



  static void addEndpoint(const std::string& ip, int ifindex, const Mac& pod, const Mac& host) {
    sl_endpoint ep{};
    ep.ifindex = static_cast<uint32_t>(ifindex);
    std::memcpy(ep.pod_mac, pod.data(), 6);
    std::memcpy(ep.host_mac, host.data(), 6);
    ASSERT_TRUE(maps().endpoints.update(epKey(ip), ep).ok());
  }

  static void addRoute(const std::string& cidr, const std::string& node) {
    sl_route r{};
    r.node_ip4 = ip4Net(node);
    ASSERT_TRUE(maps().routes.update(routeKey(cidr), r).ok());
  }

  // How many packets counter `id` gained since SetUp.
  uint64_t delta(int id) const { return counters()[static_cast<size_t>(id)].packets - before_[static_cast<size_t>(id)].packets; }

  RunResult fromPod(const Bytes& f, int ifindex = 0, bool mayRefuse = false) {
    return runProg(dp_->fromPodFd(), f, ifindex ? ifindex : veth_->a(), mayRefuse);
  }
  // A frame shorter than its EtherType's header: recent kernels refuse to build such an skb
  // for a test run (EINVAL), as the stack never delivers one; where they accept it, the
  // program must drop it as malformed.
  void expectTruncatedDropped(const Bytes& in) {
    auto r = fromPod(in, 0, true);
    if (r.err != 0) {
      EXPECT_EQ(errno, EINVAL) << std::strerror(errno);
      return;
    }
    EXPECT_EQ(r.retval, TC_ACT_SHOT);
    expectOnlyCounter(SL_CNT_DROP(SL_DROP_MALFORMED));
  }
  RunResult fromOverlay(const Bytes& f) { return runProg(dp_->fromOverlayFd(), f, veth_->b()); }
  RunResult toOverlay(const Bytes& f) { return runProg(dp_->toOverlayFd(), f, veth_->b()); }

};

TEST_F(DatapathTest, LocalDestinationIsRedirectedToPeerWithRewrittenMacs) {
  Bytes in = ip4Frame(kHostAMac, kPodAMac, {});
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), in.size());
  EXPECT_EQ(macAt(r.out, 0), kPodBMac) << "destination MAC must be the target pod's eth0";
  EXPECT_EQ(macAt(r.out, 6), kHostBMac) << "source MAC must be the target pod's host veth";
  EXPECT_EQ(r.out[14 + 8], 63) << "a routed hop decrements the TTL";
  EXPECT_TRUE(ip4ChecksumValid(r.out)) << "the IPv4 checksum follows the TTL";
  EXPECT_EQ(std::memcmp(r.out.data() + 14 + 12, in.data() + 14 + 12, in.size() - 26), 0) << "addresses and payload untouched";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

// A pod the chained bandwidth plugin limits (its veth on TCX): after the source check every
// packet goes on, unchanged, to the veth's ingress qdisc (bandwidth's mirror to the ifb) and
// then the stack, even one for a local pod; a spoofed one is still dropped.
TEST_F(DatapathTest, ShapedPodHandsEveryPacketToItsQdisc) {
  auto a = maps().ifaces.lookup(static_cast<uint32_t>(veth_->a()));
  ASSERT_TRUE(a.ok() && a->has_value());
  sl_iface shaped = **a;
  shaped.flags |= SL_IFACE_F_QDISC_EGRESS;
  ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->a()), shaped).ok());
  Bytes in = ip4Frame(kHostAMac, kPodAMac, {});
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, -1) << "TC_ACT_UNSPEC: on to the next TCX program, then the qdisc";
  EXPECT_EQ(r.out, in) << "no L2 rewrite, no TTL decrement: the stack routes it";
  expectOnlyCounter(SL_CNT_TO_STACK);

  Ip4Spec spoofed;
  spoofed.src = "10.244.1.99";
  before_ = counters();
  r = fromPod(ip4Frame(kHostAMac, kPodAMac, spoofed));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
}

// Another node's own address (a /32 route towards that node, which the agent adds): a pod's
// packet to it is encapsulated like pod traffic, so it reaches that node through its overlay
// device with the pod's source address (strict rp_filter there holds).
TEST_F(DatapathTest, RemoteNodeAddressIsEncapsulated) {
  addRoute("198.18.0.2/32", "198.18.0.2");
  Ip4Spec s;
  s.dst = "198.18.0.2";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(DatapathTest, SpoofedSourceIsDroppedAndCounted) {
  Ip4Spec s;
  s.src = "10.244.1.99";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
}

TEST_F(DatapathTest, SpoofedSourceToAnotherNodeIsDroppedToo) {
  Ip4Spec s;
  s.src = "10.244.1.3";  // pod B's address, sent from pod A's veth
  s.dst = "10.244.2.7";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
}

TEST_F(DatapathTest, VethWithoutIdentityIsDropped) {
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, {}), veth_->b());
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_UNKNOWN_IFACE));
}

TEST_F(DatapathTest, UnknownDestinationGoesToTheStackUnchanged) {
  Ip4Spec s;
  s.dst = "192.0.2.10";
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, TtlOneGoesToTheStackForTimeExceeded) {
  Ip4Spec s;
  s.ttl = 1;
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, ArpIsNeverTouched) {
  Bytes in = arpRequest(kPodAMac, "10.244.1.2", "169.254.1.1");
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, OtherEtherTypesGoToTheStack) {
  Bytes in = ethHeader(kHostAMac, kPodAMac, 0x88cc);  // LLDP
  in.resize(60, 0x5a);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
}

TEST_F(DatapathTest, TruncatedIpv4HeaderIsDroppedAsMalformed) {
  Bytes in = ip4Frame(kHostAMac, kPodAMac, {});
  in.resize(14 + 12);
  expectTruncatedDropped(in);
}

TEST_F(DatapathTest, GarbageIpv4HeadersAreDroppedAsMalformed) {
  struct Case {
    const char* what;
    size_t off;
    uint8_t value;
  };
  const Case cases[] = {
      {"ihl below 5", 14, 0x43},
      {"wrong version", 14, 0x55},
      {"ihl beyond the frame", 14, 0x4f},
      {"total length below header length", 14 + 2, 0x00},
  };
  for (const auto& c : cases) {
    Ip4Spec s;
    s.payload = 8;
    Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
    in[c.off] = c.value;
    if (c.off == 16) in[17] = 10;
    auto before = counters()[SL_CNT_DROP(SL_DROP_MALFORMED)].packets;
    auto r = fromPod(in);
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << c.what;
    EXPECT_EQ(counters()[SL_CNT_DROP(SL_DROP_MALFORMED)].packets, before + 1) << c.what;
  }
}

TEST_F(DatapathTest, RandomGarbageNeverCrashesAndNeverRedirects) {
  uint32_t seed = 12345;
  int ran = 0;
  for (int i = 0; i < 200; ++i) {
    Bytes in(14 + 20 + (i % 80), 0);
    for (auto& b : in) {
      seed = seed * 1103515245 + 12345;
      b = static_cast<uint8_t>(seed >> 16);
    }
    in[12] = 0x08;
    in[13] = 0x00;
    if (i % 2) in[14] = static_cast<uint8_t>(0x40 | (in[14] & 0x0f));  // half of them claim IPv4
    auto r = fromPod(in, 0, true);
    if (r.err != 0) continue;
    ++ran;
    EXPECT_TRUE(r.retval == TC_ACT_SHOT || r.retval == TC_ACT_OK) << "frame " << i;
  }
  EXPECT_GT(ran, 150) << "most random frames must reach the program";
}

TEST_F(DatapathTest, Ipv4OptionsAreForwardedIntact) {
  Ip4Spec s;
  s.options = {0x01, 0x01, 0x01, 0x00};  // NOP NOP NOP EOL
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(macAt(r.out, 0), kPodBMac);
  EXPECT_EQ(r.out[14], 0x46);
  EXPECT_TRUE(ip4ChecksumValid(r.out));
  EXPECT_EQ(std::memcmp(r.out.data() + 34, in.data() + 34, 4), 0) << "options kept";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(DatapathTest, FragmentsFollowTheirDestination) {
  for (uint16_t off : {uint16_t{0x2000}, uint16_t{0x2000 | 185}, uint16_t{370}}) {
    Ip4Spec s;
    s.fragOff = off;
    auto before = counters()[SL_CNT_REDIRECT_LOCAL].packets;
    auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
    EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "frag_off " << off;
    EXPECT_EQ(macAt(r.out, 0), kPodBMac);
    EXPECT_EQ(counters()[SL_CNT_REDIRECT_LOCAL].packets, before + 1);
  }
}

TEST_F(DatapathTest, RemoteDestinationIsEncapsulated) {
  Ip4Spec s;
  s.dst = "10.244.2.9";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(r.out[14 + 8], 63);
  EXPECT_TRUE(ip4ChecksumValid(r.out));
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(DatapathTest, RemoteDestinationTooBigForTheOverlayGoesToTheStack) {
  Ip4Spec s;
  s.dst = "10.244.2.9";
  s.payload = 1500 - 20;  // a 1500-byte IP packet; the overlay carries 1450
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, RemoteDestinationWithoutOverlayDeviceGoesToTheStack) {
  sl_config c = **maps().config.lookup(0);
  c.overlay_ifindex = 0;
  ASSERT_TRUE(maps().config.update(0, c).ok());
  Ip4Spec s;
  s.dst = "10.244.2.9";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, NativeModeRedirectsToTheUnderlayNeighbour) {
  sl_config c = **maps().config.lookup(0);
  c.mode = SL_MODE_NATIVE;
  c.underlay_ifindex = static_cast<uint32_t>(veth_->b());
  ASSERT_TRUE(maps().config.update(0, c).ok());
  Ip4Spec s;
  s.dst = "10.244.2.9";
  auto r = fromPod(ip4Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_NATIVE);
}

TEST_F(DatapathTest, Ipv6LocalDestinationIsRedirected) {
  Bytes in = ip6Frame(kHostAMac, kPodAMac, {});
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), in.size());
  EXPECT_EQ(macAt(r.out, 0), kPodBMac) << "destination MAC must be the target pod's eth0";
  EXPECT_EQ(macAt(r.out, 6), kHostBMac) << "source MAC must be the target pod's host veth";
  EXPECT_EQ(r.out[14 + 7], 63) << "hop limit decremented";
  EXPECT_EQ(std::memcmp(r.out.data() + 14, in.data() + 14, 7), 0) << "version, class, flow, length, next header kept";
  EXPECT_EQ(std::memcmp(r.out.data() + 14 + 8, in.data() + 14 + 8, in.size() - 22), 0) << "addresses and payload untouched";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(DatapathTest, Ipv6HopLimitOneGoesToTheStackForTimeExceeded) {
  Ip6Spec s;
  s.hopLimit = 1;
  Bytes in = ip6Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

// Dual stack over an IPv4 underlay: the IPv6 pod CIDR of node-2 maps to node-2's IPv4 address.
// (The tunnel key itself is read off a real VXLAN packet in datapath_fuzz_test.cpp: a test run
// cannot show tunnel metadata.)
TEST_F(DatapathTest, Ipv6RemoteDestinationIsEncapsulatedOverTheIpv4Underlay) {
  Ip6Spec s;
  s.dst = "fd00:10:244:2::9";
  Bytes in = ip6Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), in.size());
  EXPECT_EQ(r.out[14 + 7], 63) << "hop limit decremented";
  EXPECT_EQ(std::memcmp(r.out.data(), in.data(), 14), 0) << "the overlay device takes the frame as it is";
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(DatapathTest, Ipv6RemoteDestinationTooBigForTheOverlayGoesToTheStack) {
  Ip6Spec s;
  s.dst = "fd00:10:244:2::9";
  s.payload = Bytes(1500 - 40, 0x5a);  // a 1500-byte IPv6 packet; the overlay carries 1450
  Bytes in = ip6Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "the stack answers packet-too-big";
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, Ipv6SpoofedSourceIsDropped) {
  Ip6Spec s;
  s.src = "fd00:10:244:1::99";
  auto r = fromPod(ip6Frame(kHostAMac, kPodAMac, s));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
}

TEST_F(DatapathTest, Ipv6SourceOfAnotherPodIsDroppedLocallyAndTowardsOtherNodes) {
  for (const char* dst : {"fd00:10:244:1::3", "fd00:10:244:2::9", "2001:db8::1"}) {
    Ip6Spec s;
    s.src = "fd00:10:244:1::3";  // pod B's address, sent from pod A's veth
    s.dst = dst;
    before_ = counters();
    auto r = fromPod(ip6Frame(kHostAMac, kPodAMac, s));
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << "to " << dst;
    expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
  }
}

// A pod with an IPv4 address only may not send IPv6 from any global address at all.
TEST_F(DatapathTest, Ipv4OnlyPodSendingIpv6IsDropped) {
  sl_iface b{};
  b.flags = SL_IFACE_F_HAS_V4;
  b.ip4 = ip4Net("10.244.1.3");
  ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->b()), b).ok());
  for (const char* src : {"fd00:10:244:1::3", "fd00:10:244:1::2", "::ffff:10.244.1.3"}) {
    Ip6Spec s;
    s.src = src;
    s.dst = "fd00:10:244:1::3";
    before_ = counters();
    auto r = fromPod(ip6Frame(kHostBMac, kPodBMac, s), veth_->b());
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << "from " << src;
    expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
  }
  // Its IPv4 still flows.
  Ip4Spec ok;
  ok.src = "10.244.1.3";
  ok.dst = "10.244.2.9";
  before_ = counters();
  EXPECT_EQ(fromPod(ip4Frame(kHostBMac, kPodBMac, ok), veth_->b()).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_ENCAP);
}

namespace {
// An ICMPv6 neighbour discovery message of `type` (its body zero).
Ip6Spec ndisc(uint8_t type, const std::string& src, const std::string& dst) {
  Ip6Spec s;
  s.src = src;
  s.dst = dst;
  s.hopLimit = 255;
  s.nextHeader = 58;
  s.payload = Bytes(type == 133 ? 8 : 24, 0);
  s.payload[0] = type;
  return s;
}
}  // namespace

TEST_F(DatapathTest, Ipv6NeighbourDiscoveryAlwaysReachesTheHost) {
  const Mac snm{0x33, 0x33, 0xff, 0, 0, 1};
  struct Case {
    const char* what;
    Ip6Spec spec;
  };
  const Case cases[] = {
      {"neighbour solicitation from link-local", ndisc(135, "fe80::aa:ff:fe00:2", "ff02::1:ff00:1")},
      {"DAD probe from the unspecified address", ndisc(135, "::", "ff02::1:ff00:2")},
      {"router solicitation", ndisc(133, "fe80::aa:ff:fe00:2", "ff02::2")},
      // The pod answers the host's solicitation for its address from that address, to the host
      // veth's link-local one; another pod's global source does not stop ND either.
      {"neighbour advertisement from the pod's own address", ndisc(136, "fd00:10:244:1::2", "fe80::bb:ff:fe00:2")},
      {"neighbour advertisement from a foreign address", ndisc(136, "fd00:10:244:1::3", "fe80::bb:ff:fe00:2")},
      {"neighbour solicitation for the gateway", ndisc(135, "fd00:10:244:1::2", "fe80::1")},
  };
  for (const auto& c : cases) {
    Bytes in = ip6Frame(snm, kPodAMac, c.spec);
    before_ = counters();
    auto r = fromPod(in);
    EXPECT_EQ(r.retval, TC_ACT_OK) << c.what;
    EXPECT_EQ(r.out, in) << c.what;
    expectOnlyCounter(SL_CNT_TO_STACK);
  }
}

// Only what a receiver accepts as ND skips the source check: of those ICMPv6 types, one with a
// routed hop limit or addressed beyond the link is judged like any packet.
TEST_F(DatapathTest, Ipv6NdLookalikesAreNoWayAroundTheSourceCheck) {
  Ip6Spec routed = ndisc(135, "fd00:10:244:1::3", "fe80::1");
  routed.hopLimit = 64;
  Ip6Spec global = ndisc(136, "fd00:10:244:1::3", "fd00:10:244:2::9");
  for (const Ip6Spec& s : {routed, global}) {
    before_ = counters();
    auto r = fromPod(ip6Frame(kHostAMac, kPodAMac, s));
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << s.dst << " hop limit " << int(s.hopLimit);
    expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
  }
  // From the pod's own address such a packet is ordinary traffic: redirected to pod B.
  Ip6Spec own = ndisc(136, "fd00:10:244:1::2", "fd00:10:244:1::3");
  before_ = counters();
  EXPECT_EQ(fromPod(ip6Frame(kHostAMac, kPodAMac, own)).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

namespace {
// `s` with extension header `ext` (8 bytes) in front of its payload; for a fragment header
// `fragOffMf` is the offset/flags field (host order).
Ip6Spec withExtension(Ip6Spec s, uint8_t ext, uint16_t fragOffMf = 0) {
  Bytes h(8, 0);
  h[0] = s.nextHeader;
  if (ext == 44) {
    h[2] = static_cast<uint8_t>(fragOffMf >> 8);
    h[3] = static_cast<uint8_t>(fragOffMf);
    h[7] = 0x42;  // identification
  } else {
    h[2] = 1;  // PadN over the remaining 4 bytes
    h[3] = 4;
  }
  s.nextHeader = ext;
  s.payload.insert(s.payload.begin(), h.begin(), h.end());
  return s;
}
}  // namespace

// Behind extension headers (fragments included) the upper layer is out of the NAT check's sight:
// such packets go to the stack unchanged, after the source check, wherever they are headed.
TEST_F(DatapathTest, Ipv6ExtensionHeadersAndFragmentsGoToTheStackUnchanged) {
  struct Case {
    const char* what;
    uint8_t ext;
    uint16_t frag;
  };
  const Case cases[] = {{"first fragment", 44, 0x0001}, {"later fragment", 44, 0x0100},
                        {"last fragment", 44, 0x0200}, {"hop-by-hop options", 0, 0},
                        {"destination options", 60, 0}, {"routing header", 43, 0}};
  for (const char* dst : {"fd00:10:244:1::3", "fd00:10:244:2::9"}) {
    for (const auto& c : cases) {
      Ip6Spec s;
      s.dst = dst;
      Bytes in = ip6Frame(kHostAMac, kPodAMac, withExtension(s, c.ext, c.frag));
      before_ = counters();
      auto r = fromPod(in);
      EXPECT_EQ(r.retval, TC_ACT_OK) << c.what << " to " << dst;
      EXPECT_EQ(r.out, in) << c.what << " to " << dst;
      expectOnlyCounter(SL_CNT_TO_STACK);
    }
  }
  Ip6Spec spoofed;
  spoofed.src = "fd00:10:244:1::3";
  before_ = counters();
  EXPECT_EQ(fromPod(ip6Frame(kHostAMac, kPodAMac, withExtension(spoofed, 44, 0x0001))).retval, TC_ACT_SHOT)
      << "a fragment with a forged source is still dropped";
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_SPOOFED_SRC));
}

TEST_F(DatapathTest, Ipv6NativeRoutingNeedsAnIpv6NextHop) {
  sl_config c = **maps().config.lookup(0);
  c.mode = SL_MODE_NATIVE;
  c.underlay_ifindex = static_cast<uint32_t>(veth_->b());
  ASSERT_TRUE(maps().config.update(0, c).ok());
  Ip6Spec s;
  s.dst = "fd00:10:244:2::9";
  Bytes in = ip6Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "IPv4 next hop only: the stack's route takes it";
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);

  sl_route dual{};
  dual.node_ip4 = ip4Net("198.18.0.2");
  sl_ip nh6 = slIp("fd00:198:18::2");
  std::memcpy(dual.node_ip6, nh6.addr, 16);
  ASSERT_TRUE(maps().routes.update(routeKey("fd00:10:244:2::/64"), dual).ok());
  before_ = counters();
  r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "with an IPv6 next hop, bpf_redirect_neigh";
  EXPECT_EQ(r.out[14 + 7], 63);
  expectOnlyCounter(SL_CNT_NATIVE);
}

TEST_F(DatapathTest, TruncatedIpv6HeaderIsDropped) {
  Bytes in = ip6Frame(kHostAMac, kPodAMac, {});
  in.resize(14 + 30);
  expectTruncatedDropped(in);
}

TEST_F(DatapathTest, DecapsulatedTrafficForALocalPodGoesStraightIn) {
  Ip4Spec s;
  s.src = "10.244.2.9";
  s.dst = "10.244.1.3";
  Bytes in = ip4Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s);
  auto r = fromOverlay(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(macAt(r.out, 0), kPodBMac);
  EXPECT_EQ(macAt(r.out, 6), kHostBMac);
  expectOnlyCounter(SL_CNT_DECAP);
}

TEST_F(DatapathTest, DecapsulatedTrafficForTheHostGoesToTheStack) {
  Ip4Spec s;
  s.src = "10.244.2.9";
  s.dst = "198.18.0.1";
  Bytes in = ip4Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s);
  auto r = fromOverlay(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, StackTrafficToARemotePodGetsATunnelKey) {
  Ip4Spec s;
  s.src = "198.18.0.1";
  s.dst = "10.244.2.9";
  auto r = toOverlay(ip4Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(DatapathTest, DecapsulatedIpv6ForALocalPodGoesStraightIn) {
  Ip6Spec s;
  s.src = "fd00:10:244:2::9";
  s.dst = "fd00:10:244:1::3";
  Bytes in = ip6Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s);
  auto r = fromOverlay(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(macAt(r.out, 0), kPodBMac);
  EXPECT_EQ(macAt(r.out, 6), kHostBMac);
  EXPECT_EQ(std::memcmp(r.out.data() + 14, in.data() + 14, in.size() - 14), 0) << "the packet itself untouched";
  expectOnlyCounter(SL_CNT_DECAP);
}

TEST_F(DatapathTest, DecapsulatedIpv6FragmentsGoToTheStack) {
  Ip6Spec s;
  s.src = "fd00:10:244:2::9";
  s.dst = "fd00:10:244:1::3";
  Bytes in = ip6Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, withExtension(s, 44, 0x0001));
  auto r = fromOverlay(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(DatapathTest, StackIpv6TrafficToARemotePodGetsATunnelKey) {
  Ip6Spec s;
  s.src = "fd00:10:244:1::";
  s.dst = "fd00:10:244:2::9";
  auto r = toOverlay(ip6Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(DatapathTest, StackTrafficWithoutARemoteNodeIsDroppedAtTheOverlay) {
  Ip4Spec s;
  s.src = "198.18.0.1";
  s.dst = "10.244.9.9";
  auto r = toOverlay(ip4Frame(Mac{0x02, 0xcc, 0, 0, 0, 1}, Mac{0x02, 0xdd, 0, 0, 0, 1}, s));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_NO_ROUTE));
}

// What the stack sends on sluice_vxlan by itself: with IPv6 forwarding on, the device joins the
// all-routers groups and reports them (MLDv2, hop-by-hop router alert, from :: to ff02::16).
// Link-scope destinations have no peer on the overlay: discarded and counted apart from drops, so
// an idle node's drop counters stay zero. Wider multicast, like any address no node owns, is a drop.
TEST_F(DatapathTest, LinkScopeMulticastOnTheOverlayIsDiscardedNotDropped) {
  const Mac mcast6{0x33, 0x33, 0, 0, 0, 0x16};
  const Mac src{0x02, 0xcc, 0, 0, 0, 1};
  Ip6Spec mld;
  mld.src = "::";
  mld.dst = "ff02::16";
  mld.hopLimit = 1;
  mld.nextHeader = 58;
  mld.payload = Bytes(48, 0);
  mld.payload[0] = 143;  // MLDv2 report, two records (ff02::2, ff05::2)
  for (const auto& dst : {"ff02::16", "ff01::2", "ff02::1:ff00:1"}) {
    mld.dst = dst;
    before_ = counters();
    auto r = toOverlay(ip6Frame(mcast6, src, withExtension(mld, 0)));
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << dst;
    expectOnlyCounter(SL_CNT_LINK_SCOPE);
  }
  for (const auto& dst : {"224.0.0.22", "224.0.0.251", "255.255.255.255"}) {
    Ip4Spec s;
    s.src = "198.18.0.1";
    s.dst = dst;
    before_ = counters();
    EXPECT_EQ(toOverlay(ip4Frame(Mac{0x01, 0, 0x5e, 0, 0, 0x16}, src, s)).retval, TC_ACT_SHOT) << dst;
    expectOnlyCounter(SL_CNT_LINK_SCOPE);
  }
  struct Wider {
    bool v6;
    const char* dst;
  };
  for (const auto& w : {Wider{true, "ff05::2"}, Wider{true, "ff0e::1"}, Wider{false, "224.0.1.1"},
                        Wider{false, "239.1.1.1"}}) {
    before_ = counters();
    RunResult r;
    if (w.v6) {
      Ip6Spec s;
      s.src = "fd00:10:244:1::";
      s.dst = w.dst;
      r = toOverlay(ip6Frame(mcast6, src, s));
    } else {
      Ip4Spec s;
      s.src = "198.18.0.1";
      s.dst = w.dst;
      r = toOverlay(ip4Frame(Mac{0x01, 0, 0x5e, 0, 0, 1}, src, s));
    }
    EXPECT_EQ(r.retval, TC_ACT_SHOT) << w.dst;
    expectOnlyCounter(SL_CNT_DROP(SL_DROP_NO_ROUTE));
  }
  before_ = counters();
  EXPECT_EQ(toOverlay(arpRequest(src, "198.18.0.1", "198.18.0.2")).retval, TC_ACT_SHOT)
      << "non-IP: no node to send it to";
  expectOnlyCounter(SL_CNT_DROP(SL_DROP_NO_ROUTE));
}

}  // namespace
}  // namespace sluice::test
