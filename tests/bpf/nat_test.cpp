// SPDX-License-Identifier: Apache-2.0
// NAT detection (bpf/lib/nat.h): packets of flows the host stack translated go to the stack
// instead of being redirected or encapsulated, by flow records and by the conntrack lookup
// kfunc (against real conntrack entries made by real packets through an nftables DNAT rule
// in the test's own network namespace).
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "fixture.h"
#include "pod_noct.skel.h"
#include "sluice/fd.h"

namespace sluice::test::nat {
namespace {

const Mac kPodAMac{0x02, 0xaa, 0, 0, 0, 0x12};
const Mac kHostAMac{0x02, 0xbb, 0, 0, 0, 0x12};
const Mac kPodBMac{0x02, 0xaa, 0, 0, 0, 0x13};
const Mac kHostBMac{0x02, 0xbb, 0, 0, 0, 0x13};
const Mac kOuterMac{0x02, 0xcc, 0, 0, 0, 1};

// Pod A 10.244.1.2 (client) on veth a, pod B 10.244.1.3 (backend) on veth b, both local;
// 10.244.2.0/24 lives on node 198.18.0.2.
class NatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    veth_ = std::make_unique<VethPair>("sltnata", "sltnatb");
    auto dp = bpf::Datapath::load({});
    ASSERT_TRUE(dp.ok()) << dp.error().describe();
    dp_ = std::make_unique<bpf::Datapath>(std::move(dp).value());
    setIdentity(veth_->a(), "10.244.1.2");
    setIdentity(veth_->b(), "10.244.1.3");
    addEndpoint("10.244.1.2", veth_->a(), kPodAMac, kHostAMac);
    addEndpoint("10.244.1.3", veth_->b(), kPodBMac, kHostBMac);
    sl_route r{};
    r.node_ip4 = ip4Net("198.18.0.2");
    ASSERT_TRUE(maps().routes.update(routeKey("10.244.2.0/24"), r).ok());
    sl_config c{};
    c.layout_version = SL_LAYOUT_VERSION;
    c.mode = SL_MODE_VXLAN;
    c.node_ip4 = ip4Net("198.18.0.1");
    c.overlay_ifindex = static_cast<uint32_t>(veth_->b());
    c.vni = 1;
    c.overlay_mtu = 1450;
    ASSERT_TRUE(maps().config.update(0, c).ok());
    before_ = counters();
  }

  const bpf::PinnedMaps& maps() const { return dp_->maps(); }

  void setIdentity(int ifindex, const std::string& ip) {
    sl_iface id{};
    id.flags = SL_IFACE_F_HAS_V4;
    id.ip4 = ip4Net(ip);
    ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(ifindex), id).ok());
  }
  void addEndpoint(const std::string& ip, int ifindex, const Mac& pod, const Mac& host) {
    sl_endpoint ep{};
    ep.ifindex = static_cast<uint32_t>(ifindex);
    std::memcpy(ep.pod_mac, pod.data(), 6);
    std::memcpy(ep.host_mac, host.data(), 6);
    ASSERT_TRUE(maps().endpoints.update(epKey(ip), ep).ok());
  }
  // The pod's SL_IFACE_F_UNTRANSLATED promise, as the plugin makes it at ADD.
  void promiseUntranslated(int ifindex) {
    sl_iface id = **maps().ifaces.lookup(static_cast<uint32_t>(ifindex));
    id.flags |= SL_IFACE_F_UNTRANSLATED;
    ASSERT_TRUE(maps().ifaces.update(static_cast<uint32_t>(ifindex), id).ok());
  }
  uint32_t ifaceFlags(int ifindex) const {
    auto id = maps().ifaces.lookup(static_cast<uint32_t>(ifindex));
    EXPECT_TRUE(id.ok() && *id);
    return id.ok() && *id ? (*id)->flags : 0;
  }
  bool promised(int ifindex) const { return (ifaceFlags(ifindex) & SL_IFACE_F_UNTRANSLATED) != 0; }
  void setNatFlags(uint32_t flags) {
    sl_config c = **maps().config.lookup(0);
    c.flags = flags;
    ASSERT_TRUE(maps().config.update(0, c).ok());
  }

  static sl_flow_key flowKey(const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport,
                             uint8_t proto = 17) {
    sl_flow_key k{};
    k.family = SL_AF_INET;
    k.proto = proto;
    k.sport = htons(sport);
    k.dport = htons(dport);
    k.saddr[0] = ip4Net(src);
    k.daddr[0] = ip4Net(dst);
    return k;
  }
  void record(const sl_flow_key& k) {
    sl_flow f{};
    f.ifindex = static_cast<uint32_t>(veth_->b());
    ASSERT_TRUE(dp_->stackFlows().update(k, f).ok());
  }
  size_t recordCount() const {
    auto e = dp_->stackFlows().entries();
    EXPECT_TRUE(e.ok());
    return e.ok() ? e->size() : 0;
  }

  // The backend's reply: B:5000 -> A:40000 (UDP unless told).
  static Ip4Spec reply(uint8_t proto = 17) {
    Ip4Spec s;
    s.src = "10.244.1.3";
    s.dst = "10.244.1.2";
    s.sport = 5000;
    s.dport = 40000;
    s.proto = proto;
    return s;
  }

  RunResult fromPodB(const Bytes& f) { return runProg(dp_->fromPodFd(), f, veth_->b()); }
  RunResult fromPodA(const Bytes& f) { return runProg(dp_->fromPodFd(), f, veth_->a()); }
  RunResult toPodB(const Bytes& f) { return runProg(dp_->toPodFd(), f, veth_->b()); }
  RunResult fromOverlay(const Bytes& f) { return runProg(dp_->fromOverlayFd(), f, veth_->b()); }
  RunResult toOverlay(const Bytes& f) { return runProg(dp_->toOverlayFd(), f, veth_->b()); }

  std::vector<sl_counter> counters() const {
    auto c = maps().metrics.read();
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : std::vector<sl_counter>(SL_CNT_MAX);
  }
  // Exactly one verdict counted since the last call, and it is `id`.
  void expectOnlyCounter(int id) {
    auto now = counters();
    for (int i = 0; i < SL_CNT_MAX; ++i) {
      uint64_t d = now[static_cast<size_t>(i)].packets - before_[static_cast<size_t>(i)].packets;
      EXPECT_EQ(d, i == id ? 1u : 0u) << "counter " << i << " ("
                                      << (bpf::counterName(i) ? bpf::counterName(i) : "?") << ")";
    }
    before_ = now;
  }
  void expectTranslatedToStack(const RunResult& r, const Bytes& in, const std::string& what) {
    EXPECT_EQ(r.retval, TC_ACT_OK) << what;
    EXPECT_EQ(r.out, in) << what << ": the stack gets the packet untouched";
    expectOnlyCounter(SL_CNT_TO_STACK_NAT);
  }

  std::unique_ptr<VethPair> veth_;
  std::unique_ptr<bpf::Datapath> dp_;
  std::vector<sl_counter> before_;
};

// --- flow records -------------------------------------------------------------------------

TEST_F(NatTest, RecordedReplyGoesToTheStackInsteadOfTheLocalPod) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  record(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000));
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply());
  expectTranslatedToStack(fromPodB(in), in, "recorded flow");

  Ip4Spec other = reply();
  other.dport = 40001;  // another flow between the same pods
  auto r = fromPodB(ip4Frame(kHostBMac, kPodBMac, other));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "an unrecorded flow keeps the fast path";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(NatTest, RecordedReplyToARemotePodIsNotEncapsulated) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.2.9";
  s.sport = 8080;
  s.dport = 41000;
  record(flowKey("10.244.1.2", 8080, "10.244.2.9", 41000));
  Bytes in = ip4Frame(kHostAMac, kPodAMac, s);
  expectTranslatedToStack(fromPodA(in), in, "recorded flow to a remote pod");
  s.sport = 8081;
  EXPECT_EQ(fromPodA(ip4Frame(kHostAMac, kPodAMac, s)).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_ENCAP);
}

TEST_F(NatTest, ToPodRecordsWhatTheStackDeliversUnderTheReplyTuple) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  // The stack delivers A:40000 -> B:5000 (e.g. DNATed from a Service IP) through B's veth.
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.1.3";
  s.sport = 40000;
  s.dport = 5000;
  s.proto = 6;
  Bytes in = ip4Frame(kPodBMac, kHostBMac, s);
  auto r = toPodB(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "to_pod never stands in the way";
  EXPECT_EQ(r.out, in);
  auto got = dp_->stackFlows().lookup(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000, 6));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value()) << "the flow is recorded under the tuple of its replies";
  EXPECT_EQ((*got)->ifindex, static_cast<uint32_t>(veth_->b()));
  EXPECT_NE((*got)->seen_ns, 0u);
  EXPECT_EQ(recordCount(), 1u);

  Bytes rep = ip4Frame(kHostBMac, kPodBMac, reply(6));
  expectTranslatedToStack(fromPodB(rep), rep, "reply of a flow to_pod recorded");
}

TEST_F(NatTest, ToPodRecordsNothingWhileConntrackDecides) {
  ASSERT_TRUE(bpf::conntrackKfuncAvailable()) << "this kernel has bpf_skb_ct_lookup (CONFIG_NF_CONNTRACK=y)";
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.1.3";
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, s)).retval, TC_ACT_OK);
  EXPECT_EQ(recordCount(), 0u);
  setNatFlags(SL_CFG_F_NAT_OFF);
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, s)).retval, TC_ACT_OK);
  EXPECT_EQ(recordCount(), 0u);
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, s)).retval, TC_ACT_OK);
  EXPECT_EQ(recordCount(), 1u) << "control: the same packet is recorded in records mode";
}

TEST_F(NatTest, ToPodIgnoresWhatItCannotKeyOn) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  Ip4Spec icmp;
  icmp.src = "10.244.1.2";
  icmp.dst = "10.244.1.3";
  icmp.proto = 1;
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, icmp)).retval, TC_ACT_OK);
  Ip4Spec later = icmp;
  later.proto = 17;
  later.fragOff = 185;  // no ports in a later fragment
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, later)).retval, TC_ACT_OK);
  Bytes arp = arpRequest(kHostBMac, "169.254.1.1", "10.244.1.3");
  EXPECT_EQ(toPodB(arp).retval, TC_ACT_OK);
  Bytes cut = ip4Frame(kPodBMac, kHostBMac, later);
  cut.resize(14 + 10);
  auto r = runProg(dp_->toPodFd(), cut, veth_->b(), true);
  if (r.err == 0) {
    EXPECT_EQ(r.retval, TC_ACT_OK) << "even a malformed frame passes";
  }
  EXPECT_EQ(recordCount(), 0u);
}

TEST_F(NatTest, StackTrafficToTheOverlayIsRecordedAndItsRepliesGoToTheStack) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  // A -> Service, DNATed by the stack to a backend on another node: leaves through sluice_vxlan.
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.2.9";
  s.sport = 40000;
  s.dport = 8080;
  s.proto = 6;
  auto r = toOverlay(ip4Frame(kOuterMac, kOuterMac, s));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  expectOnlyCounter(SL_CNT_ENCAP);
  EXPECT_TRUE(dp_->stackFlows().lookup(flowKey("10.244.2.9", 8080, "10.244.1.2", 40000, 6))->has_value());

  // The backend's reply arrives decapsulated: it goes to the stack, not straight to A.
  Ip4Spec rep = s;
  rep.src = s.dst;
  rep.dst = s.src;
  rep.sport = s.dport;
  rep.dport = s.sport;
  Bytes in = ip4Frame(kOuterMac, kOuterMac, rep);
  expectTranslatedToStack(fromOverlay(in), in, "decapsulated reply of a recorded flow");
  rep.dport = 40001;
  EXPECT_EQ(fromOverlay(ip4Frame(kOuterMac, kOuterMac, rep)).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_DECAP);
}

TEST_F(NatTest, DetectionOffIgnoresRecords) {
  setNatFlags(SL_CFG_F_NAT_OFF);
  record(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000));
  auto r = fromPodB(ip4Frame(kHostBMac, kPodBMac, reply()));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "the control setting: replies of NATed flows skip the stack";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(NatTest, LaterFragmentsFollowTheirFirstFragmentToTheStack) {
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  record(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000));
  Ip4Spec first = reply();
  first.fragOff = 0x2000;  // MF, offset 0: carries the UDP header
  first.id = 0x4242;
  Bytes in = ip4Frame(kHostBMac, kPodBMac, first);
  expectTranslatedToStack(fromPodB(in), in, "first fragment");
  Ip4Spec later = first;
  later.fragOff = 185;  // the last fragment: no ports
  in = ip4Frame(kHostBMac, kPodBMac, later);
  expectTranslatedToStack(fromPodB(in), in, "later fragment of the same datagram");
  later.id = 0x4243;
  EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, later)).retval, TC_ACT_REDIRECT)
      << "a fragment of another datagram keeps the fast path";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(NatTest, IcmpErrorsGoToTheStackEchoesDoNot) {
  for (uint32_t flags : {0u, static_cast<uint32_t>(SL_CFG_F_NAT_RECORDS)}) {
    setNatFlags(flags);
    Ip4Spec err = reply(1);
    err.icmpType = 3;  // destination unreachable: quotes a packet the stack may have translated
    err.icmpCode = 3;
    Bytes in = ip4Frame(kHostBMac, kPodBMac, err);
    auto r = fromPodB(in);
    EXPECT_EQ(r.retval, TC_ACT_OK) << "flags " << flags;
    EXPECT_EQ(r.out, in);
    expectOnlyCounter(SL_CNT_TO_STACK);
    Ip4Spec echo = reply(1);
    echo.icmpType = 0;
    EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, echo)).retval, TC_ACT_REDIRECT) << "flags " << flags;
    expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  }
}

TEST_F(NatTest, TruncatedTransportHeaderIsLeftToTheStack) {
  Ip4Spec s = reply();
  s.payload = 2;  // a UDP "header" of two bytes: no destination port
  Bytes in = ip4Frame(kHostBMac, kPodBMac, s);
  auto r = fromPodB(in);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, in);
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(NatTest, SctpIsLeftToTheStackWhereConntrackCannotBeAsked) {
  ASSERT_TRUE(bpf::conntrackKfuncAvailable());
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply(132));
  auto r = fromPodB(in);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "the kfunc knows TCP and UDP only";
  expectOnlyCounter(SL_CNT_TO_STACK);
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  EXPECT_EQ(fromPodB(in).retval, TC_ACT_REDIRECT) << "flow records key SCTP by its ports";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  record(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000, 132));
  expectTranslatedToStack(fromPodB(in), in, "recorded SCTP flow");
}

// --- the conntrack kfunc, against real conntrack entries -----------------------------------

// The test process's network namespace is its own (main.cpp): an nftables DNAT rule in its
// output hook and a real datagram through it make a real conntrack entry with DST_NAT.
class ConntrackNatTest : public NatTest {
 protected:
  void SetUp() override {
    NatTest::SetUp();
    ASSERT_TRUE(bpf::conntrackKfuncAvailable()) << "this kernel has bpf_skb_ct_lookup (CONFIG_NF_CONNTRACK=y)";
    for (const char* cmd : {"ip addr add 10.244.1.2/24 dev sltnata", "ip link set sltnata up",
                            "ip link set sltnatb up", "ip route add 10.96.0.0/12 dev sltnata",
                            "ip neigh replace 10.244.1.3 lladdr 02:aa:00:00:00:13 dev sltnata nud permanent"})
      ASSERT_EQ(std::system(cmd), 0) << cmd;
    const char* rules =
        "nft -f - <<'EOF'\n"
        "table ip slt_nat {\n"
        "  chain out {\n"
        "    type nat hook output priority -100; policy accept;\n"
        "    ip daddr 10.96.0.10 udp dport 53 dnat to 10.244.1.3:5000\n"
        "    ip daddr 10.96.0.10 tcp dport 80 dnat to 10.244.1.3:5000\n"
        "  }\n"
        "}\n"
        "EOF";
    ASSERT_EQ(std::system(rules), 0) << "nft DNAT rule";
  }
  void TearDown() override {
    int rc = std::system("nft delete table ip slt_nat 2>/dev/null");
    (void)rc;  // the netns goes with the process anyway
  }

  // B's reply (B:6000 -> A:40002) of the tracked but untranslated flow that
  // sendFrom(40002, "10.244.1.3", 6000, SOCK_DGRAM) made takes the fast way.
  void expectUntranslatedReplyRedirected() {
    Ip4Spec s = reply();
    s.sport = 6000;
    s.dport = 40002;
    EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, s)).retval, TC_ACT_REDIRECT);
    expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  }

  // Sends one datagram (UDP) or a SYN (TCP) from 10.244.1.2:sport to dst:dport.
  static void sendFrom(uint16_t sport, const char* dst, uint16_t dport, int type) {
    Fd s(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    ASSERT_GE(s.get(), 0) << std::strerror(errno);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_port = htons(sport);
    ASSERT_EQ(inet_pton(AF_INET, "10.244.1.2", &src.sin_addr), 1);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)), 0) << std::strerror(errno);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(dport);
    ASSERT_EQ(inet_pton(AF_INET, dst, &to.sin_addr), 1);
    if (type == SOCK_DGRAM) {
      ASSERT_EQ(::sendto(s.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1) << std::strerror(errno);
    } else {
      // The SYN leaves (and its conntrack entry is confirmed) within connect(); the entry
      // outlives the socket.
      int rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
      ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
    }
  }
};

TEST_F(ConntrackNatTest, ReplyOfADnatedUdpFlowGoesToTheStack) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);  // conntrack: A:40000 -> svc:53, reply B:5000 -> A:40000
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply());
  expectTranslatedToStack(fromPodB(in), in, "reply of a DNATed flow, conntrack path");

  Ip4Spec other = reply();
  other.dport = 40009;  // no such connection
  EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, other)).retval, TC_ACT_REDIRECT);
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
}

TEST_F(ConntrackNatTest, ReplyOfADnatedTcpConnectionGoesToTheStack) {
  sendFrom(40000, "10.96.0.10", 80, SOCK_STREAM);
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply(6));  // the SYN-ACK
  expectTranslatedToStack(fromPodB(in), in, "SYN-ACK of a DNATed connection");
}

TEST_F(ConntrackNatTest, ConnectionsWithoutNatKeepTheFastPath) {
  sendFrom(40002, "10.244.1.3", 6000, SOCK_DGRAM);  // tracked, but not translated
  expectUntranslatedReplyRedirected();
}

TEST_F(ConntrackNatTest, DecapsulatedReplyOfADnatedFlowGoesToTheStack) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);
  Bytes in = ip4Frame(kOuterMac, kOuterMac, reply());
  expectTranslatedToStack(fromOverlay(in), in, "from_overlay, conntrack path");
}

TEST_F(ConntrackNatTest, RecordsModeAndOffModeDoNotAskConntrack) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply());
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  EXPECT_EQ(fromPodB(in).retval, TC_ACT_REDIRECT) << "records mode with no record";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  setNatFlags(SL_CFG_F_NAT_OFF);
  EXPECT_EQ(fromPodB(in).retval, TC_ACT_REDIRECT) << "detection off: the bug this all fixes";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  setNatFlags(0);
  expectTranslatedToStack(fromPodB(in), in, "back to auto: conntrack");
}

// --- the untranslated promise (SL_IFACE_F_UNTRANSLATED) ------------------------------------

// What the stack delivers to B after the DNAT of A:40000 -> svc: A:40000 -> B:5000.
Ip4Spec deliveredToB(uint8_t proto = 17, uint16_t sport = 40000, uint16_t dport = 5000) {
  Ip4Spec s;
  s.src = "10.244.1.2";
  s.dst = "10.244.1.3";
  s.sport = sport;
  s.dport = dport;
  s.proto = proto;
  return s;
}

TEST_F(ConntrackNatTest, APromisedPodsPacketsSkipTheConntrackLookup) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);  // a translated connection B's reply belongs to
  promiseUntranslated(veth_->b());                 // which, says the flag, never reached B
  EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, reply())).retval, TC_ACT_REDIRECT)
      << "the promise stands in for the lookup (which would find the translation)";
  expectOnlyCounter(SL_CNT_REDIRECT_LOCAL);
  EXPECT_EQ(fromPodB(ip4Frame(kHostBMac, kPodBMac, reply(132))).retval, TC_ACT_OK)
      << "SCTP, which conntrack cannot be asked about, still goes to the stack";
  expectOnlyCounter(SL_CNT_TO_STACK);
}

TEST_F(ConntrackNatTest, TheStackDeliveringATranslatedFlowEndsThePromiseBeforeTheReply) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);
  promiseUntranslated(veth_->b());
  Bytes d = ip4Frame(kPodBMac, kHostBMac, deliveredToB());
  auto r = toPodB(d);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, d) << "to_pod never changes what the stack delivers";
  EXPECT_EQ(ifaceFlags(veth_->b()), SL_IFACE_F_HAS_V4) << "the promise ends; the identity stays";
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply());
  expectTranslatedToStack(fromPodB(in), in, "the reply, once the promise ended");

  sendFrom(40001, "10.96.0.10", 80, SOCK_STREAM);  // the same through a TCP connection
  promiseUntranslated(veth_->b());
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, deliveredToB(6, 40001))).retval, TC_ACT_OK);
  EXPECT_FALSE(promised(veth_->b())) << "the SYN the stack delivered after DNAT";
}

TEST_F(ConntrackNatTest, DeliveriesOfUntranslatedFlowsKeepThePromise) {
  sendFrom(40002, "10.244.1.3", 6000, SOCK_DGRAM);  // tracked, not translated
  promiseUntranslated(veth_->b());
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, deliveredToB(17, 40002, 6000))).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->b())) << "a tracked flow without NAT (host to pod)";
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, deliveredToB(17, 40003, 6000))).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->b())) << "a flow conntrack does not know";
  Ip4Spec echo = deliveredToB(1);
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, echo)).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->b())) << "ICMP echo: no ports, which the NAT check does not key on either";
  Ip4Spec later = deliveredToB();
  later.fragOff = 8;  // a later fragment: its first carried the ports
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, later)).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->b()));
  EXPECT_EQ(toPodB(arpRequest(kHostBMac, "169.254.1.1", "10.244.1.3")).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->b())) << "ARP";
  expectUntranslatedReplyRedirected();
}

TEST_F(ConntrackNatTest, TranslatedDeliveriesFromOutsideThePodNetworkKeepThePromise) {
  // A is the client here: the Service's reply reaches it through the stack, from the Service
  // address, which A's own packets of the connection go to (the stack, never the fast way).
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);
  promiseUntranslated(veth_->a());
  Ip4Spec svcReply;
  svcReply.src = "10.96.0.10";
  svcReply.dst = "10.244.1.2";
  svcReply.sport = 53;
  svcReply.dport = 40000;
  EXPECT_EQ(runProg(dp_->toPodFd(), ip4Frame(kPodAMac, kHostAMac, svcReply), veth_->a()).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->a())) << "a Service's reply to its client";
  Ip4Spec probe = svcReply;
  probe.src = "198.18.0.1";  // the host, e.g. the kubelet's probe
  EXPECT_EQ(runProg(dp_->toPodFd(), ip4Frame(kPodAMac, kHostAMac, probe), veth_->a()).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->a())) << "the host";
  Ip4Spec sctp = svcReply;
  sctp.proto = 132;
  EXPECT_EQ(runProg(dp_->toPodFd(), ip4Frame(kPodAMac, kHostAMac, sctp), veth_->a()).retval, TC_ACT_OK);
  EXPECT_TRUE(promised(veth_->a())) << "not even asked about, from outside the pod network";
}

TEST_F(ConntrackNatTest, WhatConntrackCannotBeAskedAboutEndsThePromise) {
  Ip4Spec cut = deliveredToB();
  cut.payload = 2;  // not even both ports
  addEndpoint("fd00:10:244:1::2", veth_->a(), kPodAMac, kHostAMac);  // A, dual stack
  Ip6Spec ext;
  ext.nextHeader = 0;  // from A, a hop-by-hop options header first
  Bytes cutIp = ethHeader(kPodBMac, kHostBMac, 0x0800);
  cutIp.resize(cutIp.size() + 20, 0);
  cutIp[14] = 0x42;  // IPv4 with a header length of 8 bytes
  for (const auto& [what, frame] :
       std::vector<std::pair<std::string, Bytes>>{{"SCTP", ip4Frame(kPodBMac, kHostBMac, deliveredToB(132))},
                                                 {"a transport header cut short", ip4Frame(kPodBMac, kHostBMac, cut)},
                                                 {"IPv6 behind an extension header", ip6Frame(kPodBMac, kHostBMac, ext)},
                                                 {"a frame that does not parse", cutIp}}) {
    promiseUntranslated(veth_->b());
    EXPECT_EQ(toPodB(frame).retval, TC_ACT_OK) << what;
    EXPECT_FALSE(promised(veth_->b())) << what;
  }
}

TEST_F(ConntrackNatTest, ThePromiseIsKeptTrueWhateverDetectionIsInUse) {
  sendFrom(40000, "10.96.0.10", 53, SOCK_DGRAM);
  setNatFlags(SL_CFG_F_NAT_RECORDS);
  promiseUntranslated(veth_->b());
  record(flowKey("10.244.1.3", 5000, "10.244.1.2", 40000));
  Bytes in = ip4Frame(kHostBMac, kPodBMac, reply());
  expectTranslatedToStack(fromPodB(in), in, "records decide in records mode, promise or not");
  EXPECT_EQ(toPodB(ip4Frame(kPodBMac, kHostBMac, deliveredToB())).retval, TC_ACT_OK);
  EXPECT_FALSE(promised(veth_->b())) << "ended under records too, for a switch back to conntrack";
}

// --- a kernel without the kfunc ----------------------------------------------------------------

// pod.bpf.c built with SL_TEST_NO_CT_KFUNC asks for kfuncs no kernel has, as a kernel without
// nf_conntrack's would: it must load all the same, and the default (auto) NAT detection must be
// flow records.
TEST(NoConntrackKfuncTest, TheObjectLoadsAndFallsBackToFlowRecords) {
  VethPair veth("sltnoca", "sltnocb");
  struct Destroy {
    void operator()(pod_noct* s) const { pod_noct::destroy(s); }
  };
  std::unique_ptr<pod_noct, Destroy> skel(pod_noct::open());
  ASSERT_TRUE(skel) << std::strerror(errno);
  bpf_map* m = nullptr;
  bpf_object__for_each_map(m, skel->obj) ASSERT_EQ(bpf_map__set_pin_path(m, nullptr), 0);
  ASSERT_EQ(pod_noct::load(skel.get()), 0) << "an absent weak kfunc behind bpf_ksym_exists() must not stop the load";

  auto ifaces = bpf::IfaceMap::fromFd(bpf_map__fd(skel->maps.sl_ifaces));
  auto endpoints = bpf::EndpointMap::fromFd(bpf_map__fd(skel->maps.sl_endpoints));
  auto config = bpf::ConfigMap::fromFd(bpf_map__fd(skel->maps.sl_config));
  auto flows = bpf::StackFlowMap::fromFd(bpf_map__fd(skel->maps.sl_stack_flows));
  auto metrics = bpf::MetricsMap::fromFd(bpf_map__fd(skel->maps.sl_metrics));
  ASSERT_TRUE(ifaces.ok() && endpoints.ok() && config.ok() && flows.ok() && metrics.ok());
  sl_iface b{};
  b.flags = SL_IFACE_F_HAS_V4;
  b.ip4 = ip4Net("10.244.1.3");
  ASSERT_TRUE(ifaces->update(static_cast<uint32_t>(veth.b()), b).ok());
  sl_endpoint a{};
  a.ifindex = static_cast<uint32_t>(veth.a());
  std::memcpy(a.pod_mac, kPodAMac.data(), 6);
  std::memcpy(a.host_mac, kHostAMac.data(), 6);
  ASSERT_TRUE(endpoints->update(epKey("10.244.1.2"), a).ok());
  sl_config c{};
  c.layout_version = SL_LAYOUT_VERSION;  // flags 0: auto
  ASSERT_TRUE(config->update(0, c).ok());

  const int fromPod = bpf_program__fd(skel->progs.sl_from_pod);
  const int toPod = bpf_program__fd(skel->progs.sl_to_pod);
  Ip4Spec toB;  // the stack delivers A:40000 -> B:5000 through B's veth
  toB.src = "10.244.1.2";
  toB.dst = "10.244.1.3";
  EXPECT_EQ(runProg(toPod, ip4Frame(kPodBMac, kHostBMac, toB), veth.b()).retval, TC_ACT_OK);
  auto rec = flows->entries();
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->size(), 1u) << "auto without the kfunc records flows";

  Ip4Spec rep;
  rep.src = "10.244.1.3";
  rep.dst = "10.244.1.2";
  rep.sport = 5000;
  rep.dport = 40000;
  auto before = metrics->read();
  ASSERT_TRUE(before.ok());
  auto r = runProg(fromPod, ip4Frame(kHostBMac, kPodBMac, rep), veth.b());
  EXPECT_EQ(r.retval, TC_ACT_OK) << "the reply of the recorded flow goes to the stack";
  rep.dport = 40001;
  EXPECT_EQ(runProg(fromPod, ip4Frame(kHostBMac, kPodBMac, rep), veth.b()).retval, TC_ACT_REDIRECT);
  auto after = metrics->read();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)[SL_CNT_TO_STACK_NAT].packets - (*before)[SL_CNT_TO_STACK_NAT].packets, 1u);
  EXPECT_EQ((*after)[SL_CNT_REDIRECT_LOCAL].packets - (*before)[SL_CNT_REDIRECT_LOCAL].packets, 1u);

  // Without conntrack to ask, any delivery with ports ends a pod's untranslated promise.
  b.flags |= SL_IFACE_F_UNTRANSLATED;
  ASSERT_TRUE(ifaces->update(static_cast<uint32_t>(veth.b()), b).ok());
  EXPECT_EQ(runProg(toPod, ip4Frame(kPodBMac, kHostBMac, toB), veth.b()).retval, TC_ACT_OK);
  auto id = ifaces->lookup(static_cast<uint32_t>(veth.b()));
  ASSERT_TRUE(id.ok() && *id);
  EXPECT_EQ((*id)->flags, SL_IFACE_F_HAS_V4);
}

}  // namespace
}  // namespace sluice::test::nat
