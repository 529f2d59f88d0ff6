// SPDX-License-Identifier: Apache-2.0
// Dual stack as a runtime sees it: with an IPv4 and an IPv6 range set the plugin gives a pod one
// address of each family (the result carries both in every spec version), plumbs IPv6 like IPv4
// (/128, default via fe80::1 on-link with a permanent neighbour, a host /128 route and
// neighbour, both map entries), pods talk over IPv6 through the redirect, CHECK notices missing
// IPv6 pieces, DEL leaves nothing (a failure after any step of ADD: fault_test.cpp, dual stack).
// Also IPv6-only pods, and a pod's router advertisements never configuring the node.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "harness.h"

namespace sluice::itest::dualstack {
namespace {

constexpr const char* kSubnet4 = "10.244.1.0/24";
constexpr const char* kSubnet6 = "fd00:10:244:1::/64";
constexpr const char* kGateway6 = "fe80::1";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string macOf(const uint8_t* m) {
  char b[18];
  std::snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

std::array<uint8_t, 16> v6Bytes(const std::string& ip) {
  std::array<uint8_t, 16> b{};
  EXPECT_EQ(::inet_pton(AF_INET6, ip.c_str(), b.data()), 1) << ip;
  return b;
}

bool hasFlag(const json& obj, const char* key, const std::string& flag) {
  auto v = obj.value(key, json::array());
  return std::find(v.begin(), v.end(), flag) != v.end();
}

class DualStackTest : public NodeTest {
 protected:
  json conf(const std::string& version = "1.0.0") {
    return node_.pluginConf(version, kNet, node_.sluiceIpam(std::vector<std::string>{kSubnet4, kSubnet6}));
  }

  // Everything ADD must have set up for the IPv6 side of `pod`, looked at directly.
  void expectIpv6Plumbed(const Pod& pod, bool builtinIpam = true) {
    const std::string veth = hostVethName(pod.containerId, pod.ifname);
    SCOPED_TRACE("pod " + pod.netnsName + " ip6 " + pod.ip6 + " host veth " + veth);
    ASSERT_FALSE(pod.ip6.empty());
    auto hostLink = node_.link(node_.hostNs(), veth);
    auto podLink = node_.link(pod.netnsName, pod.ifname);
    ASSERT_TRUE(hostLink && podLink);
    const int hostIfindex = (*hostLink)["ifindex"];
    const std::string hostMac = lower((*hostLink)["address"]);
    const std::string podMac = lower((*podLink)["address"]);

    // Pod side: the /128 usable at once (no duplicate detection pending), the default route
    // via fe80::1 and its permanent neighbour entry.
    bool hasAddr = false;
    for (const json& a : node_.addrs(pod.netnsName, pod.ifname)) {
      if (a.value("family", "") != "inet6" || a.value("local", "") != pod.ip6) continue;
      hasAddr = true;
      EXPECT_EQ(a.value("prefixlen", 0), 128);
      EXPECT_FALSE(a.value("tentative", false)) << "the address must not wait for DAD: " << a.dump();
      EXPECT_FALSE(a.value("dadfailed", false)) << a.dump();
    }
    EXPECT_TRUE(hasAddr) << pod.ip6 << "/128 not on " << pod.ifname;
    bool hasDefault = false;
    for (const json& r : node_.routes6(pod.netnsName))
      if (r.value("dst", "") == "default" && r.value("gateway", "") == kGateway6 && r.value("dev", "") == pod.ifname)
        hasDefault = true;
    EXPECT_TRUE(hasDefault) << "no IPv6 default route via " << kGateway6;
    bool hasNeigh = false;
    for (const json& n : node_.neighbours(pod.netnsName, pod.ifname)) {
      if (n.value("dst", "") != kGateway6) continue;
      hasNeigh = true;
      EXPECT_EQ(lower(n.value("lladdr", "")), hostMac) << "the gateway neighbour must point at the host veth";
      EXPECT_TRUE(hasFlag(n, "state", "PERMANENT")) << n.dump();
    }
    EXPECT_TRUE(hasNeigh) << "no neighbour entry for " << kGateway6;

    // Host side: the /128 through the veth and the pod's MAC pinned.
    bool hasRoute = false;
    for (const json& r : node_.routes6(node_.hostNs()))
      if ((r.value("dst", "") == pod.ip6 || r.value("dst", "") == pod.ip6 + "/128") && r.value("dev", "") == veth)
        hasRoute = true;
    EXPECT_TRUE(hasRoute) << "no host route " << pod.ip6 << "/128 dev " << veth;
    bool hostNeigh = false;
    for (const json& n : node_.neighbours(node_.hostNs(), veth))
      if (n.value("dst", "") == pod.ip6) {
        hostNeigh = true;
        EXPECT_EQ(lower(n.value("lladdr", "")), podMac);
        EXPECT_TRUE(hasFlag(n, "state", "PERMANENT")) << n.dump();
      }
    EXPECT_TRUE(hostNeigh) << "no host neighbour entry for " << pod.ip6;

    // IPAM, endpoint record, maps.
    if (builtinIpam) {
      auto res = node_.ipamReservations(kNet);
      EXPECT_NE(std::find(res.begin(), res.end(), pod.ip6), res.end()) << ::testing::PrintToString(res);
    }
    auto rec = node_.endpointRecord(veth);
    ASSERT_TRUE(rec);
    auto ips = rec->value("ips", json::array());
    EXPECT_NE(std::find(ips.begin(), ips.end(), pod.ip6 + "/128"), ips.end()) << rec->dump();
    const auto want = v6Bytes(pod.ip6);
    bool epFound = false;
    for (const auto& [k, v] : node_.endpointEntries()) {
      if (k.ip.family != SL_AF_INET6 || std::memcmp(k.ip.addr, want.data(), 16) != 0) continue;
      epFound = true;
      EXPECT_EQ(static_cast<int>(v.ifindex), hostIfindex);
      EXPECT_EQ(macOf(v.pod_mac), podMac);
      EXPECT_EQ(macOf(v.host_mac), hostMac);
    }
    EXPECT_TRUE(epFound) << "no sl_endpoints entry for " << pod.ip6;
    bool ifFound = false;
    for (const auto& [k, v] : node_.ifaceEntries()) {
      if (static_cast<int>(k) != hostIfindex) continue;
      ifFound = true;
      EXPECT_TRUE(v.flags & SL_IFACE_F_HAS_V6);
      EXPECT_EQ(std::memcmp(v.ip6, want.data(), 16), 0) << "sl_ifaces holds the pod's IPv6 address";
      EXPECT_EQ(static_cast<bool>(v.flags & SL_IFACE_F_HAS_V4), pod.ip != pod.ip6);
    }
    EXPECT_TRUE(ifFound) << "no sl_ifaces entry for ifindex " << hostIfindex;
  }
};

using DualStackResultTest = NodeTestP<std::string>;

TEST_P(DualStackResultTest, OneAddressOfEachFamilyInEverySpecVersion) {
  const std::string version = GetParam();
  json conf = node_.pluginConf(version, kNet, node_.sluiceIpam(std::vector<std::string>{kSubnet4, kSubnet6}));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  const json& res = pod.result;
  SCOPED_TRACE("result: " + res.dump());
  ASSERT_TRUE(inSubnet(pod.ip, kSubnet4)) << pod.ip;
  ASSERT_EQ(pod.ip6.rfind("fd00:10:244:1::", 0), 0u) << pod.ip6;
  EXPECT_NE(pod.ip6, "fd00:10:244:1::") << "never the subnet-router anycast address";

  int eth0 = -1;
  for (size_t i = 0; i < res["interfaces"].size(); ++i)
    if (res["interfaces"][i].value("name", "") == pod.ifname && res["interfaces"][i].value("sandbox", "") == pod.netnsPath)
      eth0 = static_cast<int>(i);
  ASSERT_GE(eth0, 0);
  ASSERT_EQ(res["ips"].size(), 2u);
  const bool legacy = version == "0.3.1" || version == "0.4.0";
  for (const json& ip : res["ips"]) {
    const std::string addr = ip.value("address", "");
    const bool v6 = addr.find(':') != std::string::npos;
    EXPECT_EQ(addr, v6 ? pod.ip6 + "/128" : pod.ip + "/32");
    EXPECT_EQ(ip.value("gateway", ""), v6 ? kGateway6 : Node::kGateway);
    EXPECT_EQ(ip.value("interface", -1), eth0) << "ips[].interface must index the pod's interface";
    if (legacy) EXPECT_EQ(ip.value("version", ""), v6 ? "6" : "4");
    else EXPECT_FALSE(ip.contains("version"));
  }
  std::set<std::string> routes;
  for (const json& r : res.value("routes", json::array())) routes.insert(r.value("dst", "") + " via " + r.value("gw", ""));
  EXPECT_EQ(routes, (std::set<std::string>{"0.0.0.0/0 via 169.254.1.1", "::/0 via fe80::1"}));

  ProcResult del = node_.del(pod, conf);
  ASSERT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

INSTANTIATE_TEST_SUITE_P(Versions, DualStackResultTest, ::testing::Values("0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           return "v" + n;
                         });

TEST_F(DualStackTest, AddPlumbsIpv6AndDelRemovesIt) {
  json c = conf();
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, c));
  ASSERT_NO_FATAL_FAILURE(expectIpv6Plumbed(pod));
  EXPECT_EQ(node_.endpointEntries().size(), 2u) << "one sl_endpoints entry per address";
  EXPECT_EQ(node_.ipamReservations(kNet).size(), 2u);
  ProcResult del = node_.del(pod, c);
  ASSERT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

// nftables counter on the host's FORWARD hook for IPv6 from the pods.
void installForward6Counter(Node& node) {
  ProcOptions o;
  o.input = "table inet sltfwd6 {\n"
            "  chain sltcount {\n"
            "    type filter hook forward priority 0; policy accept;\n"
            "    ip6 saddr fd00:10:244::/48 counter\n"
            "  }\n"
            "}\n";
  ProcResult r = node.runIn(node.hostNs(), {"nft", "-f", "-"}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
}

uint64_t forwarded6(Node& node) {
  ProcResult r = node.runIn(node.hostNs(), {"nft", "-j", "list", "table", "inet", "sltfwd6"});
  EXPECT_TRUE(r.ok()) << r.describe();
  uint64_t total = 0;
  try {
    const json doc = json::parse(r.out);
    for (const json& item : doc.at("nftables")) {
      if (!item.contains("rule")) continue;
      for (const json& e : item["rule"].value("expr", json::array()))
        if (e.contains("counter")) total += e["counter"].value("packets", 0ull);
    }
  } catch (const json::exception& e) {
    ADD_FAILURE() << "nft -j output: " << e.what() << "\n" << r.out;
  }
  return total;
}

TEST_F(DualStackTest, PodsTalkOverIpv6ThroughTheRedirectAndTheHostReachesThem) {
  json c = conf();
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, c));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, c));
  ASSERT_NE(a.ip6, b.ip6);
  ASSERT_NO_FATAL_FAILURE(installForward6Counter(node_));

  const sl_counter before = node_.counter(SL_CNT_REDIRECT_LOCAL);
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip6)) << "ping " << a.ip6 << " -> " << b.ip6;
  EXPECT_TRUE(node_.ping(b.netnsName, a.ip6)) << "ping " << b.ip6 << " -> " << a.ip6;
  constexpr size_t kBytes = 4 << 20;
  EXPECT_TRUE(node_.tcpExchange(b.netnsName, b.ip6, a.netnsName, kBytes));
  EXPECT_TRUE(node_.tcpExchange(a.netnsName, a.ip6, b.netnsName, kBytes, 5202));
  const sl_counter after = node_.counter(SL_CNT_REDIRECT_LOCAL);
  EXPECT_GE(after.packets - before.packets, 12u);
  EXPECT_GE(after.bytes - before.bytes, 2 * kBytes);
  EXPECT_EQ(forwarded6(node_), 0u) << "pod-to-pod IPv6 went through the host's FORWARD path";
  // IPv4 still works side by side.
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip));

  // The host reaches a pod over IPv6 (its /128 route and pinned neighbour), from an address of
  // its own as the agent gives a node (here on lo).
  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"ip", "addr", "add", "fd00:10:244:ff::1/128", "dev", "lo"}).ok());
  EXPECT_TRUE(node_.ping(node_.hostNs(), a.ip6)) << "host -> pod over IPv6";

  // Control: with the programs detached the same IPv6 traffic is routed by the host (its IPv6
  // routes and neighbours are complete) and the FORWARD counter counts it.
  for (const Pod* p : {&a, &b}) {
    ProcResult r = node_.runIn(node_.hostNs(), {"tc", "qdisc", "del", "dev", hostVethName(p->containerId, p->ifname), "clsact"});
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip6)) << "control: host-routed ping6 failed";
  EXPECT_GT(forwarded6(node_), 0u) << "control: forwarded IPv6 was not counted";

  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"ip", "addr", "del", "fd00:10:244:ff::1/128", "dev", "lo"}).ok());
  ASSERT_TRUE(node_.del(a, c).ok());
  ASSERT_TRUE(node_.del(b, c).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

TEST_F(DualStackTest, CheckNoticesEveryMissingIpv6Piece) {
  json c = conf("1.1.0");
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, c));
  const std::string veth = hostVethName(pod.containerId, pod.ifname);
  auto hostLink = node_.link(node_.hostNs(), veth);
  ASSERT_TRUE(hostLink);
  const std::string hostMac = lower((*hostLink)["address"]);
  auto podLink = node_.link(pod.netnsName, pod.ifname);
  ASSERT_TRUE(podLink);
  const std::string podMac = lower((*podLink)["address"]);
  ProcResult ok = node_.check(pod, c);
  ASSERT_TRUE(ok.ok()) << ok.describe();

  struct Breakage {
    const char* what;
    std::string ns;
    std::vector<std::string> breakCmd, repairCmd;
  };
  const Breakage cases[] = {
      {"the pod's IPv6 default route", pod.netnsName,
       {"ip", "-6", "route", "del", "default", "dev", pod.ifname},
       {"ip", "-6", "route", "add", "default", "via", kGateway6, "dev", pod.ifname, "onlink"}},
      {"the pod's fe80::1 neighbour", pod.netnsName,
       {"ip", "-6", "neigh", "del", kGateway6, "dev", pod.ifname},
       {"ip", "-6", "neigh", "replace", kGateway6, "lladdr", hostMac, "dev", pod.ifname, "nud", "permanent"}},
      {"the pod's IPv6 address", pod.netnsName,
       {"ip", "-6", "addr", "del", pod.ip6 + "/128", "dev", pod.ifname},
       {"ip", "-6", "addr", "add", pod.ip6 + "/128", "dev", pod.ifname, "nodad"}},
      {"the host's /128 route", node_.hostNs(),
       {"ip", "-6", "route", "del", pod.ip6 + "/128", "dev", veth},
       {"ip", "-6", "route", "add", pod.ip6 + "/128", "dev", veth}},
      {"the host's neighbour entry", node_.hostNs(),
       {"ip", "-6", "neigh", "del", pod.ip6, "dev", veth},
       {"ip", "-6", "neigh", "replace", pod.ip6, "lladdr", podMac, "dev", veth, "nud", "permanent"}},
  };
  for (const auto& b : cases) {
    SCOPED_TRACE(b.what);
    ProcResult br = node_.runIn(b.ns, b.breakCmd);
    ASSERT_TRUE(br.ok()) << br.describe();
    EXPECT_TRUE(isCniError(node_.check(pod, c))) << "CHECK must notice " << b.what << " is gone";
    ProcResult rp = node_.runIn(b.ns, b.repairCmd);
    ASSERT_TRUE(rp.ok()) << rp.describe();
    ProcResult again = node_.check(pod, c);
    EXPECT_TRUE(again.ok()) << "CHECK after repairing " << b.what << "\n" << again.describe();
  }
  // A prevResult without the IPv6 address does not describe this attachment.
  Pod stale = pod;
  json ips = json::array();
  for (const json& ip : stale.result["ips"])
    if (ip.value("address", "").find(':') == std::string::npos) ips.push_back(ip);
  stale.result["ips"] = ips;
  EXPECT_TRUE(isCniError(node_.check(stale, c))) << "prevResult lacking the IPv6 address";

  ASSERT_TRUE(node_.del(pod, c).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

// A delegated IPAM plugin's IPv6 address is plumbed the same way: host-local with an IPv4 and
// an IPv6 range set, its leases released by DEL.
TEST_F(DualStackTest, DelegatedIpamGivesBothFamilies) {
  ASSERT_TRUE(std::filesystem::exists(node_.bins().refCniDir + "/host-local"))
      << "host-local not found in " << node_.bins().refCniDir << " (containernetworking-plugins)";
  const std::string dataDir = node_.tmpDir() + "/host-local";
  json ipam = {{"type", "host-local"},
               {"ranges", json::array({json::array({json{{"subnet", "10.244.9.0/24"}}}),
                                       json::array({json{{"subnet", "fd00:10:244:9::/64"}}})})},
               {"dataDir", dataDir}};
  json c = node_.pluginConf("1.0.0", kNet, ipam);
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, c));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, c));
  ASSERT_EQ(a.ip6.rfind("fd00:10:244:9::", 0), 0u) << a.result.dump();
  ASSERT_NO_FATAL_FAILURE(expectIpv6Plumbed(a, /*builtinIpam=*/false));
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dataDir) / kNet / a.ip6)) << "host-local's IPv6 lease";
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip6));
  EXPECT_TRUE(node_.tcpExchange(b.netnsName, b.ip6, a.netnsName, 1 << 20));
  EXPECT_TRUE(node_.check(a, c).ok());
  ASSERT_TRUE(node_.del(a, c).ok());
  ASSERT_TRUE(node_.del(b, c).ok());
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(dataDir) / kNet / a.ip6)) << "DEL released the IPv6 lease";
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

TEST_F(DualStackTest, Ipv6OnlyPods) {
  json c = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet6));
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, c));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, c));
  ASSERT_EQ(a.result["ips"].size(), 1u) << a.result.dump();
  ASSERT_EQ(a.ip, a.ip6) << "an IPv6 address only";
  ASSERT_NO_FATAL_FAILURE(expectIpv6Plumbed(a));
  for (const json& r : node_.routes(a.netnsName)) EXPECT_NE(r.value("dst", ""), "default") << "no IPv4 default route";
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip6));
  EXPECT_TRUE(node_.tcpExchange(b.netnsName, b.ip6, a.netnsName, 1 << 20));
  EXPECT_TRUE(node_.check(a, c).ok());
  ASSERT_TRUE(node_.del(a, c).ok());
  ASSERT_TRUE(node_.del(b, c).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

// Neighbour discovery from a pod reaches the host whatever its source, so a pod could play
// router: its router advertisement must give the node neither a default route nor an address.
// The node here does not forward IPv6 (the case where the kernel would act on RAs); the control
// turns accept_ra back on for the veth and sees the same RA take effect.
TEST_F(DualStackTest, APodsRouterAdvertisementNeverConfiguresTheNode) {
  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"}).ok());
  json c = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet4));  // IPv4-only pod: IPv6 is still on the veth
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, c));
  const std::string veth = hostVethName(pod.containerId, pod.ifname);

  // The pod's link-local address must be usable (DAD done) for a valid RA source.
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    for (const json& a : node_.addrs(pod.netnsName, pod.ifname))
      if (a.value("family", "") == "inet6" && a.value("scope", "") == "link" && !a.value("tentative", false))
        ready = true;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(ready) << "the pod's link-local address never left DAD";

  // RA: hop limit 255 to ff02::1, router lifetime 1800 s, prefix 2001:db8:77::/64 (on-link,
  // autonomous). The kernel fills the ICMPv6 checksum of a raw socket.
  const std::string ra = R"(
import socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
pi = struct.pack("!BBBBIII16s", 3, 4, 64, 0xc0, 86400, 14400, 0, socket.inet_pton(socket.AF_INET6, "2001:db8:77::"))
msg = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + pi
for _ in range(3):
    s.sendto(msg, ("ff02::1", 0, 0, socket.if_nametoindex(sys.argv[1])))
)";
  auto sendRa = [&] {
    ProcResult r = node_.runIn(pod.netnsName, {"python3", "-c", ra, pod.ifname});
    ASSERT_TRUE(r.ok()) << r.describe();
  };
  auto nodeTookIt = [&] {
    bool route = false, addr = false;
    for (const json& r : node_.routes6(node_.hostNs()))
      if (r.value("dst", "") == "default" || r.value("dst", "").rfind("2001:db8:77", 0) == 0) route = true;
    for (const json& a : node_.addrs(node_.hostNs(), veth))
      if (a.value("local", "").rfind("2001:db8:77", 0) == 0) addr = true;
    return route || addr;
  };
  ASSERT_NO_FATAL_FAILURE(sendRa());
  // The RA is processed synchronously on receipt; give the pod's send a moment to arrive.
  bool took = false;
  for (int i = 0; i < 10 && !took; ++i) {
    took = nodeTookIt();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(took) << "the node accepted a pod's router advertisement";

  // Control: the same RA with accept_ra back on is acted upon.
  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"sysctl", "-qw", "net.ipv6.conf." + veth + ".accept_ra=1"}).ok());
  ASSERT_NO_FATAL_FAILURE(sendRa());
  bool control = false;
  for (int i = 0; i < 100 && !control; ++i) {
    control = nodeTookIt();
    if (!control) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(control) << "control: the RA did not take effect with accept_ra=1, so the check proves nothing";

  ASSERT_TRUE(node_.del(pod, c).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

}  // namespace
}  // namespace sluice::itest::dualstack
