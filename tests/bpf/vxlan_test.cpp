// SPDX-License-Identifier: Apache-2.0
// VXLAN in BPF (bpf/lib/vxlan.h): from_pod pushes the outer headers itself for a remote pod
// (bytes checked: Ethernet, IPv4 with a valid checksum, UDP ports, VXLAN flags and VNI, the
// pod's frame intact) and falls back to the device's tunnel key where it cannot; from_tunnel,
// at the underlay's ingress, strips them off a VXLAN packet for a local pod and passes
// everything else on untouched and uncounted, for the kernel's UDP socket and sluice_vxlan.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "fixture.h"

namespace sluice::test::vxlan {
namespace {

const Mac kPodAMac{0x02, 0xaa, 0, 0, 0, 0x12};   // pod A, 10.244.1.2, on veth a (node-1)
const Mac kHostAMac{0x02, 0xbb, 0, 0, 0, 0x12};
const Mac kPodBMac{0x02, 0xaa, 0, 0, 0, 0x13};   // pod B, 10.244.1.3, on veth a too
const Mac kHostBMac{0x02, 0xbb, 0, 0, 0, 0x13};
const Mac kUnderlayMac{0x02, 0xdd, 0, 0, 0, 0x11};  // node-1's underlay device (veth b)
const Mac kPeerNodeMac{0x02, 0xdd, 0, 0, 0, 0x12};
constexpr uint32_t kVni = 0x00abcd;
constexpr size_t kOuter = 14 + 20 + 8 + 8;  // where the inner frame starts

// Recomputes the IPv4 header checksum at `ipOff` after a test changed the header.
void fixIp4Checksum(Bytes& b, size_t ipOff) {
  put16(b, ipOff + 10, 0);
  put16(b, ipOff + 10, csum16(b.data() + ipOff, (b[ipOff] & 0x0f) * 4u));
}

struct Outer {
  std::string src = "198.18.0.2";
  std::string dst = "198.18.0.1";
  uint16_t port = 8472;
  uint32_t vni = kVni;
  uint32_t flags = 0x08000000;
  uint16_t udpCheck = 0;
  uint16_t fragOff = 0;
  uint8_t tos = 0;
  Mac dstMac = kUnderlayMac;
};

// A VXLAN packet as a node sends it over the underlay, carrying `inner`.
Bytes vxlanFrame(const Bytes& inner, const Outer& o = {}) {
  Bytes b = ethHeader(o.dstMac, kPeerNodeMac, 0x0800);
  b.resize(kOuter);
  const size_t ipLen = kOuter - 14 + inner.size();
  b[14] = 0x45;
  b[15] = o.tos;
  put16(b, 16, static_cast<uint16_t>(ipLen));
  put16(b, 18, 0x4242);
  put16(b, 20, o.fragOff);
  b[22] = 64;
  b[23] = 17;
  inet_pton(AF_INET, o.src.c_str(), &b[26]);
  inet_pton(AF_INET, o.dst.c_str(), &b[30]);
  fixIp4Checksum(b, 14);
  put16(b, 34, 45000);
  put16(b, 36, o.port);
  put16(b, 38, static_cast<uint16_t>(ipLen - 20));
  put16(b, 40, o.udpCheck);
  put16(b, 42, static_cast<uint16_t>(o.flags >> 16));
  put16(b, 44, static_cast<uint16_t>(o.flags));
  put16(b, 46, static_cast<uint16_t>(o.vni >> 8));
  b[48] = static_cast<uint8_t>(o.vni);
  b[49] = 0;
  b.insert(b.end(), inner.begin(), inner.end());
  return b;
}

// Node-1 (198.18.0.1), vxlan mode, VNI 0xabcd: pods A and B on veth a; veth b stands for the
// underlay (and the overlay device: a test run never transmits). Node-2 (198.18.0.2) owns
// 10.244.2.0/24 and fd00:10:244:2::/64, node-3 (198.18.0.3) 10.244.3.0/24.
class VxlanTest : public DatapathSuite {
 protected:
  static void SetUpTestSuite() { loadDatapath("sltvxa", "sltvxb", "02:dd:00:00:00:11"); }

  void SetUp() override {
    clearMaps();
    sl_iface a{};
    a.flags = SL_IFACE_F_HAS_V4 | SL_IFACE_F_HAS_V6;
    a.ip4 = ip4Net("10.244.1.2");
    sl_ip a6 = slIp("fd00:10:244:1::2");
    std::memcpy(a.ip6, a6.addr, 16);
    ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(veth_->a()), a).ok());
    addEndpoint("10.244.1.3", kPodBMac, kHostBMac);
    addEndpoint("fd00:10:244:1::3", kPodBMac, kHostBMac);
    addRoute("10.244.2.0/24", "198.18.0.2");
    addRoute("fd00:10:244:2::/64", "198.18.0.2");
    addRoute("10.244.3.0/24", "198.18.0.3");
    sl_config c{};
    c.layout_version = SL_LAYOUT_VERSION;
    c.mode = SL_MODE_VXLAN;
    c.node_ip4 = ip4Net("198.18.0.1");
    c.overlay_ifindex = static_cast<uint32_t>(underlay());
    c.underlay_ifindex = static_cast<uint32_t>(underlay());
    c.vni = kVni;
    c.overlay_mtu = 1450;
    ASSERT_TRUE(maps().config.update(0, c).ok());
    before_ = counters();
  }

  static int underlay() { return veth_->b(); }

  static void addEndpoint(const std::string& ip, const Mac& pod, const Mac& host, uint32_t flags = 0) {
    sl_endpoint ep{};
    ep.ifindex = static_cast<uint32_t>(veth_->a());
    ep.flags = flags;
    std::memcpy(ep.pod_mac, pod.data(), 6);
    std::memcpy(ep.host_mac, host.data(), 6);
    ASSERT_TRUE(maps().endpoints.update(epKey(ip), ep).ok());
  }
  static void addRoute(const std::string& cidr, const std::string& node) {
    sl_route r{};
    r.node_ip4 = node.empty() ? 0 : ip4Net(node);
    ASSERT_TRUE(maps().routes.update(routeKey(cidr), r).ok());
  }
  static void changeConfig(void (*f)(sl_config&)) {
    sl_config c = **maps().config.lookup(0);
    f(c);
    ASSERT_TRUE(maps().config.update(0, c).ok());
  }


  static RunResult fromPod(const Bytes& f, uint32_t gsoSize = 0) {
    __sk_buff ctx{};
    ctx.ifindex = static_cast<uint32_t>(veth_->a());
    ctx.gso_size = gsoSize;
    return runProgCtx(dp_->fromPodFd(), f, ctx);
  }
  static RunResult fromTunnel(const Bytes& f, uint32_t gsoSize = 0, bool mayRefuse = false) {
    __sk_buff ctx{};
    ctx.ifindex = static_cast<uint32_t>(underlay());
    ctx.gso_size = gsoSize;
    return runProgCtx(dp_->fromTunnelFd(), f, ctx, mayRefuse);
  }
  static RunResult fromOverlay(const Bytes& f) { return runProg(dp_->fromOverlayFd(), f, underlay()); }

  void expectPassedOnUntouched(const RunResult& r, const Bytes& in, const std::string& what) {
    EXPECT_EQ(r.retval, TC_ACT_UNSPEC) << what << ": passed on (TC_ACT_UNSPEC) to the kernel's VXLAN path";
    EXPECT_EQ(r.out, in) << what << ": untouched";
    expectOnlyCounter(-1);
    before_ = counters();
  }

  // The encapsulated frame from_pod made of `in` (a packet from pod A to node `node`), checked
  // byte by byte; returns its UDP source port.
  uint16_t expectEncapsulated(const RunResult& r, const Bytes& in, const std::string& node, uint8_t ecn) {
    EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "bpf_redirect_neigh to the underlay";
    if (r.out.size() != in.size() + 50) {
      ADD_FAILURE() << "50 bytes of headers pushed: got " << r.out.size() << " from " << in.size();
      return 0;
    }
    const Bytes& o = r.out;
    EXPECT_EQ(be16(o, 12), 0x0800) << "outer EtherType IPv4 (the underlay is IPv4)";
    EXPECT_FALSE(o[0] & 1) << "a multicast destination MAC would make bpf_redirect_neigh drop it";
    EXPECT_EQ(o[14], 0x45) << "IPv4, no options";
    EXPECT_EQ(o[15], ecn) << "outer ECN";
    EXPECT_EQ(be16(o, 16), o.size() - 14) << "IPv4 total length";
    EXPECT_EQ(be16(o, 20), 0) << "DF clear, not a fragment (sluice_vxlan sets no df)";
    EXPECT_EQ(o[22], 64) << "TTL";
    EXPECT_EQ(o[23], 17) << "UDP";
    EXPECT_TRUE(ip4ChecksumValid(o)) << "outer IPv4 checksum";
    uint32_t src = 0, dst = 0;
    std::memcpy(&src, &o[26], 4);
    std::memcpy(&dst, &o[30], 4);
    EXPECT_EQ(src, ip4Net("198.18.0.1")) << "from this node";
    EXPECT_EQ(dst, ip4Net(node)) << "to the node owning the pod CIDR";
    const uint16_t sport = be16(o, 34);
    EXPECT_GE(sport, 32768);
    EXPECT_LE(sport, 60999);
    EXPECT_EQ(be16(o, 36), 8472) << "UDP destination port";
    EXPECT_EQ(be16(o, 38), o.size() - 34) << "UDP length";
    EXPECT_EQ(be16(o, 40), 0) << "UDP checksum 0, as the kernel's VXLAN over IPv4 by default";
    EXPECT_EQ(be16(o, 42), 0x0800) << "VXLAN flags: I";
    EXPECT_EQ(be16(o, 44), 0);
    EXPECT_EQ((static_cast<uint32_t>(be16(o, 46)) << 8) | o[48], kVni) << "VNI";
    EXPECT_EQ(o[49], 0) << "VXLAN reserved byte";
    EXPECT_EQ(std::memcmp(&o[kOuter], in.data(), 14), 0) << "the pod's Ethernet header, inside";
    return sport;
  }

};

Ip4Spec toNode2(uint16_t sport = 40000) {
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.2.9";
  s.sport = sport;
  s.payload = 200;
  return s;
}

// ---- encapsulation in from_pod ----

TEST_F(VxlanTest, RemotePodIsEncapsulatedInBpf) {
  Bytes in = ip4Frame(kHostAMac, kPodAMac, toNode2());
  auto r = fromPod(in);
  expectEncapsulated(r, in, "198.18.0.2", 0);
  Bytes inner(r.out.begin() + kOuter, r.out.end());
  EXPECT_EQ(inner[14 + 8], 63) << "a routed hop first";
  EXPECT_TRUE(ip4ChecksumValid(inner)) << "inner checksum follows the TTL";
  EXPECT_EQ(std::memcmp(inner.data() + 14 + 12, in.data() + 14 + 12, in.size() - 26), 0)
      << "inner addresses and payload intact";
  expectOnlyCounter(SL_CNT_ENCAP_DIRECT);
  EXPECT_EQ(counters()[SL_CNT_ENCAP_DIRECT].bytes - before_[SL_CNT_ENCAP_DIRECT].bytes, in.size())
      << "counted as the pod sent it";
}

TEST_F(VxlanTest, Ipv6PodPacketRidesTheIpv4Underlay) {
  Ip6Spec s;
  s.src = "fd00:10:244:1::2";
  s.dst = "fd00:10:244:2::9";
  Bytes in = ip6Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  expectEncapsulated(r, in, "198.18.0.2", 0);
  ASSERT_EQ(r.out.size(), in.size() + 50);
  EXPECT_EQ(be16(r.out, kOuter + 12), 0x86dd) << "inner EtherType IPv6";
  EXPECT_EQ(r.out[kOuter + 14 + 7], 63) << "hop limit decremented";
  EXPECT_EQ(std::memcmp(&r.out[kOuter + 14 + 8], &in[14 + 8], in.size() - 22), 0) << "inner packet intact";
  expectOnlyCounter(SL_CNT_ENCAP_DIRECT);
}

// INET_ECN_encapsulate(): the inner ECN field is copied out, but CE becomes ECT(0).
TEST_F(VxlanTest, OuterEcnFollowsTheInnerPacket) {
  for (auto [inner, outer] : {std::pair<uint8_t, uint8_t>{0, 0}, {1, 1}, {2, 2}, {3, 2}}) {
    Bytes in = ip4Frame(kHostAMac, kPodAMac, toNode2());
    in[15] = static_cast<uint8_t>(0xb8 | inner);  // DSCP EF, and the ECN bits
    fixIp4Checksum(in, 14);
    before_ = counters();
    expectEncapsulated(fromPod(in), in, "198.18.0.2", outer);
    expectOnlyCounter(SL_CNT_ENCAP_DIRECT);
  }
}

// The source port comes from the inner flow's hash: one flow keeps its port (no reordering
// across the underlay's paths), flows spread over the range.
TEST_F(VxlanTest, SourcePortFollowsTheInnerFlow) {
  Bytes a = ip4Frame(kHostAMac, kPodAMac, toNode2(40000));
  const uint16_t first = expectEncapsulated(fromPod(a), a, "198.18.0.2", 0);
  EXPECT_EQ(expectEncapsulated(fromPod(a), a, "198.18.0.2", 0), first) << "same flow, same port";
  std::set<uint16_t> ports;
  for (uint16_t p = 40001; p < 40017; ++p) {
    Bytes f = ip4Frame(kHostAMac, kPodAMac, toNode2(p));
    ports.insert(expectEncapsulated(fromPod(f), f, "198.18.0.2", 0));
  }
  EXPECT_GE(ports.size(), 8u) << "16 flows over at most " << ports.size() << " source ports";
}

TEST_F(VxlanTest, EachRemoteNodeGetsItsOwnOuterDestination) {
  Ip4Spec s = toNode2();
  s.dst = "10.244.3.7";
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  expectEncapsulated(fromPod(in), in, "198.18.0.3", 0);
  expectOnlyCounter(SL_CNT_ENCAP_DIRECT);
}

// What BPF cannot encapsulate keeps the device path exactly as before: a tunnel key and a
// redirect to sluice_vxlan, the frame itself unchanged but for the routed hop.
TEST_F(VxlanTest, WhatBpfCannotEncapsulateTakesTheDevice) {
  auto expectDevicePath = [&](const RunResult& r, const Bytes& in, const std::string& what) {
    EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << what;
    ASSERT_EQ(r.out.size(), in.size()) << what << ": no headers pushed";
    EXPECT_EQ(std::memcmp(r.out.data(), in.data(), 14), 0) << what;
    EXPECT_EQ(r.out[14 + 8], 63) << what;
    expectOnlyCounter(SL_CNT_ENCAP);
    before_ = counters();
  };
  Bytes in = ip4Frame(kHostAMac, kPodAMac, toNode2());
  // a GSO packet of a type bpf_skb_adjust_room refuses (a test run makes no TCP GSO type)
  expectDevicePath(fromPod(in, 100), in, "GSO packet the kernel refuses the headroom");
  // no underlay known yet
  changeConfig([](sl_config& c) { c.underlay_ifindex = 0; });
  expectDevicePath(fromPod(in), in, "no underlay ifindex");
  changeConfig([](sl_config& c) { c.underlay_ifindex = c.overlay_ifindex; c.node_ip4 = 0; });
  expectDevicePath(fromPod(in), in, "no node address of our own");
  changeConfig([](sl_config& c) { c.node_ip4 = htonl(0xc6120001); });
  // a node known only by an IPv6 underlay address
  sl_route v6only{};
  sl_ip n6 = slIp("fd00:198:18::2");
  std::memcpy(v6only.node_ip6, n6.addr, 16);
  ASSERT_TRUE(maps().routes.update(routeKey("10.244.2.0/24"), v6only).ok());
  expectDevicePath(fromPod(in), in, "IPv6 underlay peer");
}

TEST_F(VxlanTest, TooBigForTheOverlayStillGoesToTheStack) {
  Ip4Spec s = toNode2();
  s.payload = 1451 - 20;  // one byte more than sluice_vxlan's MTU
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto r = fromPod(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "the stack answers 'fragmentation needed'";
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
  s.payload = 1450 - 20;
  in = ip4Frame(kHostAMac, kPodAMac, s);
  before_ = counters();
  expectEncapsulated(fromPod(in), in, "198.18.0.2", 0);
  EXPECT_EQ(be16(fromPod(in).out, 16), 1500) << "a full-size packet fills the 1500-byte underlay exactly";
}

// ---- decapsulation in from_tunnel ----

Ip4Spec fromNode2Pod() {
  Ip4Spec s;
  s.src = "10.244.2.9";
  s.dst = "10.244.1.3";
  s.sport = 5000;
  s.dport = 40000;
  return s;
}
const Mac kInnerDst{0x02, 0xbb, 0, 0, 0, 0x99};  // the sending pod's gateway: its host veth
const Mac kInnerSrc{0x02, 0xaa, 0, 0, 0, 0x99};

TEST_F(VxlanTest, VxlanForALocalPodIsDecapsulatedStraightIn) {
  Bytes inner = ip4Frame(kInnerDst, kInnerSrc, fromNode2Pod());
  Bytes in = vxlanFrame(inner);
  auto r = fromTunnel(in);
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "bpf_redirect_peer into pod B";
  ASSERT_EQ(r.out.size(), inner.size()) << "outer headers and inner Ethernet header gone";
  EXPECT_EQ(macAt(r.out, 0), kPodBMac) << "destination MAC: the pod's eth0";
  EXPECT_EQ(macAt(r.out, 6), kHostBMac) << "source MAC: its host veth";
  EXPECT_EQ(be16(r.out, 12), 0x0800);
  EXPECT_EQ(std::memcmp(r.out.data() + 14, inner.data() + 14, inner.size() - 14), 0)
      << "the inner packet untouched (no routed hop: from_overlay makes none either)";
  expectOnlyCounter(SL_CNT_DECAP_DIRECT);
}

TEST_F(VxlanTest, Ipv6InsideIpv4IsDecapsulatedWithItsEtherType) {
  Ip6Spec s;
  s.src = "fd00:10:244:2::9";
  s.dst = "fd00:10:244:1::3";
  Bytes inner = ip6Frame(kInnerDst, kInnerSrc, s);
  auto r = fromTunnel(vxlanFrame(inner));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(r.out.size(), inner.size());
  EXPECT_EQ(macAt(r.out, 0), kPodBMac);
  EXPECT_EQ(be16(r.out, 12), 0x86dd) << "the outer EtherType was IPv4";
  EXPECT_EQ(std::memcmp(r.out.data() + 14, inner.data() + 14, inner.size() - 14), 0);
  expectOnlyCounter(SL_CNT_DECAP_DIRECT);
}

// What from_pod sends, from_tunnel on the receiving node takes: the round trip gives the pod's
// packet back, one routed hop older.
TEST_F(VxlanTest, WhatFromPodSendsFromTunnelTakes) {
  Ip4Spec s = toNode2();
  s.dst = "10.244.1.3";  // as node-2 sees it below
  s.src = "10.244.1.2";
  addRoute("10.244.1.3/32", "198.18.0.2");  // node-1's pod B is "remote" while we send
  ASSERT_TRUE(maps().endpoints.erase(epKey("10.244.1.3")).ok());
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  auto sent = fromPod(in);
  ASSERT_EQ(sent.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(sent.out.size(), in.size() + 50);
  // now play node-2: its address, pod B local to it, node-1 owning pod A's CIDR
  ASSERT_TRUE(maps().routes.erase(routeKey("10.244.1.3/32")).ok());
  addEndpoint("10.244.1.3", kPodBMac, kHostBMac);
  addRoute("10.244.1.2/32", "198.18.0.1");
  changeConfig([](sl_config& c) { c.node_ip4 = htonl(0xc6120002); });
  Bytes wire = sent.out;
  std::memcpy(wire.data(), kUnderlayMac.data(), 6);  // what bpf_redirect_neigh addresses
  before_ = counters();
  auto got = fromTunnel(wire);
  EXPECT_EQ(got.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(got.out.size(), in.size());
  EXPECT_EQ(macAt(got.out, 0), kPodBMac);
  EXPECT_EQ(got.out[14 + 8], 63);
  EXPECT_TRUE(ip4ChecksumValid(got.out));
  EXPECT_EQ(std::memcmp(got.out.data() + 14 + 12, in.data() + 14 + 12, in.size() - 26), 0);
  expectOnlyCounter(SL_CNT_DECAP_DIRECT);
}

// Everything from_tunnel does not take goes on, byte for byte and uncounted, to the kernel's
// UDP socket and sluice_vxlan, where from_overlay decides and counts as it always did.
TEST_F(VxlanTest, AnythingElsePassesOnUntouched) {
  const Bytes inner = ip4Frame(kInnerDst, kInnerSrc, fromNode2Pod());
  struct Case {
    const char* what;
    Bytes frame;
  };
  std::vector<Case> cases;
  auto with = [&](const char* what, auto change) {
    Outer o;
    change(o);
    cases.push_back({what, vxlanFrame(inner, o)});
  };
  with("another UDP port", [](Outer& o) { o.port = 4789; });
  with("another VNI", [](Outer& o) { o.vni = kVni + 1; });
  with("not this node's address", [](Outer& o) { o.dst = "198.18.0.3"; });
  with("another host's frame (PACKET_OTHERHOST)", [](Outer& o) { o.dstMac = kPeerNodeMac; });
  with("a first outer fragment", [](Outer& o) { o.fragOff = 0x2000; });
  with("a later outer fragment", [](Outer& o) { o.fragOff = 185; });
  with("a non-zero UDP checksum (the device path's senders set one): the stack verifies it",
       [](Outer& o) { o.udpCheck = 0x1234; });
  with("VXLAN flags beyond I (GBP)", [](Outer& o) { o.flags = 0x88000000; });
  with("VXLAN without the I flag", [](Outer& o) { o.flags = 0; });
  with("congestion experienced on the underlay", [](Outer& o) { o.tos = 3; });
  with("spoofed: node-2's pod CIDR from node-3", [](Outer& o) { o.src = "198.18.0.3"; });

  Bytes badCsum = vxlanFrame(inner);
  badCsum[24] ^= 0xff;
  cases.push_back({"a bad outer IPv4 checksum", badCsum});
  Bytes options = vxlanFrame(inner);
  options.insert(options.begin() + 34, {1, 1, 1, 0});
  options[14] = 0x46;
  put16(options, 16, static_cast<uint16_t>(options.size() - 14));
  fixIp4Checksum(options, 14);
  cases.push_back({"outer IPv4 options", options});
  Bytes longer = vxlanFrame(inner);
  put16(longer, 16, static_cast<uint16_t>(be16(longer, 16) - 4));  // Ethernet padding behind
  fixIp4Checksum(longer, 14);
  cases.push_back({"outer total length short of the frame", longer});
  Ip4Spec unknown = fromNode2Pod();
  unknown.dst = "10.244.1.99";
  cases.push_back({"inner destination no local endpoint", vxlanFrame(ip4Frame(kInnerDst, kInnerSrc, unknown))});
  Ip4Spec host = fromNode2Pod();
  host.dst = "198.18.0.1";
  cases.push_back({"inner destination this host", vxlanFrame(ip4Frame(kInnerDst, kInnerSrc, host))});
  cases.push_back({"inner ARP", vxlanFrame(arpRequest(kInnerSrc, "10.244.2.9", "10.244.1.3"))});
  Ip6Spec ext;
  ext.src = "fd00:10:244:2::9";
  ext.dst = "fd00:10:244:1::3";
  ext.nextHeader = 60;  // destination options: the NAT check cannot see past it
  ext.payload = Bytes{17, 0, 1, 4, 0, 0, 0, 0, 0x9c, 0x40, 0x13, 0x88, 0, 8, 0, 0};
  cases.push_back({"inner IPv6 with an extension header", vxlanFrame(ip6Frame(kInnerDst, kInnerSrc, ext))});
  Bytes cut = vxlanFrame(inner);
  cut.resize(14 + 20 + 8 + 4);
  put16(cut, 16, 20 + 8 + 4);
  put16(cut, 38, 8 + 4);
  fixIp4Checksum(cut, 14);
  cases.push_back({"cut short inside the VXLAN header", cut});
  Bytes cutInner = vxlanFrame(inner);
  cutInner.resize(kOuter + 14 + 10);
  put16(cutInner, 16, static_cast<uint16_t>(cutInner.size() - 14));
  put16(cutInner, 38, static_cast<uint16_t>(cutInner.size() - 34));
  fixIp4Checksum(cutInner, 14);
  cases.push_back({"inner IPv4 header cut short", cutInner});
  cases.push_back({"plain IPv4 to this node", ip4Frame(kUnderlayMac, kPeerNodeMac, fromNode2Pod())});

  for (const auto& c : cases) {
    before_ = counters();
    expectPassedOnUntouched(fromTunnel(c.frame, 0, true), c.frame, c.what);
  }
}

// from_tunnel asks the same NAT question as from_overlay: a reply of a flow this node's stack
// translated (here: a flow record) is left to the kernel path and the stack.
TEST_F(VxlanTest, TranslatedFlowsAreLeftToTheStack) {
  changeConfig([](sl_config& c) { c.flags = SL_CFG_F_NAT_RECORDS; });
  sl_flow_key k{};
  k.family = SL_AF_INET;
  k.proto = 17;
  k.sport = htons(5000);
  k.dport = htons(40000);
  k.saddr[0] = ip4Net("10.244.2.9");
  k.daddr[0] = ip4Net("10.244.1.3");
  sl_flow v{};
  v.ifindex = static_cast<uint32_t>(veth_->a());
  ASSERT_TRUE(dp_->stackFlows().update(k, v).ok());
  Bytes in = vxlanFrame(ip4Frame(kInnerDst, kInnerSrc, fromNode2Pod()));
  expectPassedOnUntouched(fromTunnel(in), in, "a translated flow");
  ASSERT_TRUE(dp_->stackFlows().erase(k).ok());
  EXPECT_EQ(fromTunnel(in).retval, TC_ACT_REDIRECT) << "control: without the record it goes straight in";
}

// A GSO packet keeps skb->encapsulation and the tunnel GSO bits through bpf_skb_adjust_room on
// this kernel: one that a qdisc on the host veth may segment (bandwidth limit) takes the device
// path; a test run's GSO packet, of no TCP type, is refused the decap and passes on unchanged.
TEST_F(VxlanTest, GsoPacketsOnlyWhereNothingSegmentsThem) {
  ASSERT_TRUE(maps().endpoints.erase(epKey("10.244.1.3")).ok());
  addEndpoint("10.244.1.3", kPodBMac, kHostBMac, SL_EP_F_VIA_VETH);
  Bytes in = vxlanFrame(ip4Frame(kInnerDst, kInnerSrc, fromNode2Pod()));
  expectPassedOnUntouched(fromTunnel(in, 1400), in, "GSO to a pod behind its host veth's qdisc");
  EXPECT_EQ(fromTunnel(in).retval, TC_ACT_REDIRECT) << "control: not GSO, through the host veth";
  expectOnlyCounter(SL_CNT_DECAP_DIRECT);
  ASSERT_TRUE(maps().endpoints.erase(epKey("10.244.1.3")).ok());
  addEndpoint("10.244.1.3", kPodBMac, kHostBMac);
  before_ = counters();
  expectPassedOnUntouched(fromTunnel(in, 1400), in, "GSO of a type the kernel will not decapsulate");
}

TEST_F(VxlanTest, NativeModeTakesNoVxlan) {
  changeConfig([](sl_config& c) { c.mode = SL_MODE_NATIVE; });
  Bytes in = vxlanFrame(ip4Frame(kInnerDst, kInnerSrc, fromNode2Pod()));
  expectPassedOnUntouched(fromTunnel(in), in, "native mode");
}

// The property behind it all: for packets whose outer header is ours, from_tunnel delivers
// exactly the inner packets from_overlay would deliver, to the same pod, and leaves the rest.
TEST_F(VxlanTest, FromTunnelTakesWhatFromOverlayDelivers) {
  addEndpoint("10.244.1.2", kPodAMac, kHostAMac);
  std::vector<Bytes> inners;
  for (const char* dst : {"10.244.1.3", "10.244.1.2", "10.244.1.77", "198.18.0.1", "8.8.8.8"}) {
    Ip4Spec s = fromNode2Pod();
    s.dst = dst;
    inners.push_back(ip4Frame(kInnerDst, kInnerSrc, s));
    s.proto = 1;
    s.icmpType = 3;  // an ICMP error: the stack translates its quote
    inners.push_back(ip4Frame(kInnerDst, kInnerSrc, s));
  }
  Ip4Spec ttl1 = fromNode2Pod();
  ttl1.ttl = 1;
  inners.push_back(ip4Frame(kInnerDst, kInnerSrc, ttl1));
  for (const char* dst : {"fd00:10:244:1::3", "fd00:10:244:1::5"}) {
    Ip6Spec s;
    s.src = "fd00:10:244:2::9";
    s.dst = dst;
    inners.push_back(ip6Frame(kInnerDst, kInnerSrc, s));
  }
  int delivered = 0;
  for (const Bytes& inner : inners) {
    before_ = counters();
    auto ov = fromOverlay(inner);
    const bool deliver = counters()[SL_CNT_DECAP].packets > before_[SL_CNT_DECAP].packets;
    Bytes in = vxlanFrame(inner);
    before_ = counters();
    auto tun = fromTunnel(in);
    if (deliver) {
      ++delivered;
      EXPECT_EQ(tun.retval, TC_ACT_REDIRECT) << "inner frame " << delivered;
      EXPECT_EQ(tun.out, ov.out) << "the same frame into the same pod";
      expectOnlyCounter(SL_CNT_DECAP_DIRECT);
    } else {
      expectPassedOnUntouched(tun, in, "not delivered by from_overlay either");
    }
  }
  EXPECT_EQ(delivered, 4) << "pods A and B over IPv4, pod B over IPv6, and the TTL-1 one (no routed hop)";
}

}  // namespace
}  // namespace sluice::test::vxlan
