// SPDX-License-Identifier: Apache-2.0
// ADD / CHECK / DEL as a runtime drives them: the result per spec version, the plumbing ADD
// leaves behind (checked in the kernel, on disk and in the pinned maps), pod-to-pod traffic
// short-cut by bpf_redirect_peer, and DEL's idempotence.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace sluice::itest::lifecycle {
namespace {

constexpr const char* kSubnet = "10.244.1.0/24";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string macOf(const uint8_t* m) {
  char b[18];
  std::snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

uint32_t v4NetOrder(const std::string& ip) {
  unsigned a, b, c, d;
  if (std::sscanf(ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return 0;
  uint8_t bytes[4] = {static_cast<uint8_t>(a), static_cast<uint8_t>(b), static_cast<uint8_t>(c),
                      static_cast<uint8_t>(d)};
  uint32_t v;
  std::memcpy(&v, bytes, 4);
  return v;
}

// The result shape the spec prescribes for `version`.
void expectResultShape(const json& res, const std::string& version, const Pod& pod, const std::string& podMac) {
  SCOPED_TRACE("result: " + res.dump());
  EXPECT_EQ(res.value("cniVersion", ""), version);
  ASSERT_TRUE(res.contains("interfaces") && res["interfaces"].is_array());
  int eth0Index = -1;
  for (size_t i = 0; i < res["interfaces"].size(); ++i) {
    const json& itf = res["interfaces"][i];
    ASSERT_TRUE(itf.is_object() && itf.contains("name") && itf["name"].is_string());
    if (itf["name"] == pod.ifname && itf.value("sandbox", "") == pod.netnsPath) eth0Index = static_cast<int>(i);
  }
  ASSERT_GE(eth0Index, 0) << "no interface entry for " << pod.ifname << " with sandbox " << pod.netnsPath;
  EXPECT_EQ(lower(res["interfaces"][eth0Index].value("mac", "")), lower(podMac));

  ASSERT_TRUE(res.contains("ips") && res["ips"].is_array() && !res["ips"].empty());
  for (const json& ip : res["ips"]) {
    ASSERT_TRUE(ip.contains("address") && ip["address"].is_string());
    std::string addr = ip["address"];
    EXPECT_NE(addr.find('/'), std::string::npos) << "address must be in CIDR notation: " << addr;
    if (version == "0.3.1" || version == "0.4.0") {
      EXPECT_EQ(ip.value("version", ""), "4") << "0.3.x/0.4.0 results carry ips[].version";
    } else {
      EXPECT_FALSE(ip.contains("version")) << "ips[].version was removed in CNI 1.0.0";
    }
    if (ip.contains("interface")) {
      ASSERT_TRUE(ip["interface"].is_number_unsigned());
      EXPECT_EQ(ip["interface"].get<int>(), eth0Index) << "ips[].interface must index the pod's interface";
    }
    if (ip.contains("gateway")) {
      EXPECT_EQ(ip["gateway"], Node::kGateway);
    }
  }
  EXPECT_TRUE(inSubnet(stripPrefix(res["ips"][0]["address"]), kSubnet));
  if (res.contains("routes")) {
    ASSERT_TRUE(res["routes"].is_array());
    for (const json& r : res["routes"]) EXPECT_TRUE(r.is_object() && r.contains("dst") && r["dst"].is_string());
  }
  if (res.contains("dns")) {
    EXPECT_TRUE(res["dns"].is_object());
  }
}

// Everything ADD must have set up for `pod`, looked at directly.
void expectPlumbed(Node& node, const Pod& pod, int mtu, std::string* podMacOut = nullptr) {
  const std::string veth = hostVethName(pod.containerId, pod.ifname);
  SCOPED_TRACE("pod " + pod.netnsName + " ip " + pod.ip + " host veth " + veth);

  auto hostLink = node.link(node.hostNs(), veth);
  ASSERT_TRUE(hostLink) << "host veth " << veth << " missing; host links: " << ::testing::PrintToString(node.linkNames(node.hostNs()));
  auto podLink = node.link(pod.netnsName, pod.ifname);
  ASSERT_TRUE(podLink) << pod.ifname << " missing in the pod netns";
  const int hostIfindex = (*hostLink)["ifindex"];
  const std::string hostMac = lower((*hostLink)["address"]);
  const std::string podMac = lower((*podLink)["address"]);
  if (podMacOut) *podMacOut = podMac;
  EXPECT_EQ((*podLink).value("mtu", 0), mtu);
  EXPECT_NE(std::find((*podLink)["flags"].begin(), (*podLink)["flags"].end(), "UP"), (*podLink)["flags"].end());
  EXPECT_NE(std::find((*hostLink)["flags"].begin(), (*hostLink)["flags"].end(), "UP"), (*hostLink)["flags"].end());

  // Pod side: the /32, the default route via the link-local gateway, the permanent neighbour.
  bool hasAddr = false;
  for (const json& a : node.addrs(pod.netnsName, pod.ifname))
    if (a.value("family", "") == "inet" && a.value("local", "") == pod.ip && a.value("prefixlen", 0) == 32) hasAddr = true;
  EXPECT_TRUE(hasAddr) << pod.ip << "/32 not on " << pod.ifname;
  bool hasDefault = false;
  for (const json& r : node.routes(pod.netnsName))
    if (r.value("dst", "") == "default" && r.value("gateway", "") == Node::kGateway && r.value("dev", "") == pod.ifname)
      hasDefault = true;
  EXPECT_TRUE(hasDefault) << "no default route via " << Node::kGateway;
  bool hasNeigh = false;
  for (const json& n : node.neighbours(pod.netnsName, pod.ifname)) {
    if (n.value("dst", "") != Node::kGateway) continue;
    EXPECT_EQ(lower(n.value("lladdr", "")), hostMac) << "gateway neighbour must point at the host veth";
    auto st = n.value("state", json::array());
    EXPECT_NE(std::find(st.begin(), st.end(), "PERMANENT"), st.end()) << n.dump();
    hasNeigh = true;
  }
  EXPECT_TRUE(hasNeigh) << "no neighbour entry for " << Node::kGateway;

  // Host side: the /32 route through the veth, the program at Sluice's tc slot.
  bool hasRoute = false;
  for (const json& r : node.routes(node.hostNs()))
    if ((r.value("dst", "") == pod.ip || r.value("dst", "") == pod.ip + "/32") && r.value("dev", "") == veth) hasRoute = true;
  EXPECT_TRUE(hasRoute) << "no host route " << pod.ip << "/32 dev " << veth;
  ProcResult tc = node.runIn(node.hostNs(), {"tc", "filter", "show", "dev", veth, "ingress"});
  EXPECT_NE(tc.out.find("sl_from_pod"), std::string::npos) << "sl_from_pod not at the veth's tc ingress:\n" << tc.out;
  EXPECT_NE(tc.out.find("direct-action"), std::string::npos) << tc.out;
  EXPECT_NE(tc.out.find("handle 0x51"), std::string::npos) << tc.out;

  // IPAM reservation: ipam/<net>/<ip> holding "<containerID>\n<ifname>\n".
  auto res = node.ipamReservations(kNet);
  EXPECT_NE(std::find(res.begin(), res.end(), pod.ip), res.end()) << ::testing::PrintToString(res);
  {
    std::ifstream in(node.stateDir() + "/ipam/" + kNet + "/" + pod.ip);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str().rfind(pod.containerId + "\n" + pod.ifname + "\n", 0), 0u) << "reservation file: " << ss.str();
  }

  // Endpoint record.
  auto rec = node.endpointRecord(veth);
  ASSERT_TRUE(rec) << "no endpoints/" << veth << ".json";
  EXPECT_EQ(rec->value("containerID", ""), pod.containerId);
  EXPECT_EQ(rec->value("ifName", ""), pod.ifname);
  EXPECT_EQ(rec->value("netns", ""), pod.netnsPath);
  EXPECT_EQ(rec->value("hostVeth", ""), veth);
  EXPECT_EQ(rec->value("hostIfindex", -1), hostIfindex);
  EXPECT_EQ(lower(rec->value("podMac", "")), podMac);
  EXPECT_EQ(lower(rec->value("hostMac", "")), hostMac);
  EXPECT_EQ(rec->value("network", ""), kNet);
  EXPECT_EQ(rec->value("ipamType", ""), "sluice-ipam");
  auto ips = rec->value("ips", json::array());
  EXPECT_NE(std::find(ips.begin(), ips.end(), pod.ip + "/32"), ips.end()) << rec->dump();

  // Pinned maps.
  bool epFound = false;
  for (const auto& [k, v] : node.endpointEntries()) {
    if (k.ip.family != SL_AF_INET || k.ip.addr[0] != v4NetOrder(pod.ip)) continue;
    epFound = true;
    EXPECT_EQ(static_cast<int>(v.ifindex), hostIfindex);
    EXPECT_EQ(macOf(v.pod_mac), podMac);
    EXPECT_EQ(macOf(v.host_mac), hostMac);
  }
  EXPECT_TRUE(epFound) << "no sl_endpoints entry for " << pod.ip;
  bool ifFound = false;
  for (const auto& [k, v] : node.ifaceEntries()) {
    if (static_cast<int>(k) != hostIfindex) continue;
    ifFound = true;
    EXPECT_TRUE(v.flags & SL_IFACE_F_HAS_V4);
    EXPECT_EQ(v.ip4, v4NetOrder(pod.ip));
  }
  EXPECT_TRUE(ifFound) << "no sl_ifaces entry for ifindex " << hostIfindex;
}

// nftables counter on the host netns' FORWARD hook, for packets from or to pods.
void installForwardCounter(Node& node) {
  ProcOptions o;
  o.input = "table inet sltfwd {\n"
            "  chain sltcount {\n"
            "    type filter hook forward priority 0; policy accept;\n"
            "    ip saddr 10.244.0.0/16 counter\n"
            "  }\n"
            "}\n";
  ProcResult r = node.runIn(node.hostNs(), {"nft", "-f", "-"}, o);
  ASSERT_TRUE(r.ok()) << r.describe();
}

uint64_t forwardedPackets(Node& node) {
  ProcResult r = node.runIn(node.hostNs(), {"nft", "-j", "list", "table", "inet", "sltfwd"});
  EXPECT_TRUE(r.ok()) << r.describe();
  uint64_t total = 0;
  bool sawCounter = false;
  try {
    const json doc = json::parse(r.out);  // named: iterating a member of a temporary dangles
    for (const json& item : doc.at("nftables")) {
      if (!item.contains("rule")) continue;
      const json expr = item["rule"].value("expr", json::array());
      for (const json& e : expr)
        if (e.contains("counter")) {
          total += e["counter"].value("packets", 0ull);
          sawCounter = true;
        }
    }
  } catch (const json::exception& e) {
    ADD_FAILURE() << "nft -j output: " << e.what() << "\n" << r.out;
  }
  EXPECT_TRUE(sawCounter) << "the FORWARD counter rule is missing:\n" << r.out;
  return total;
}

using ResultShapeTest = NodeTestP<std::string>;

TEST_P(ResultShapeTest, AddReturnsSpecResultAndPlumbsThePod) {
  const std::string version = GetParam();
  const int mtu = 1400;
  json conf = node_.pluginConf(version, kNet, node_.sluiceIpam(kSubnet), mtu);
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  std::string podMac;
  ASSERT_NO_FATAL_FAILURE(expectPlumbed(node_, pod, mtu, &podMac));
  expectResultShape(pod.result, version, pod, podMac);

  ProcResult del = node_.del(pod, conf);
  ASSERT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

INSTANTIATE_TEST_SUITE_P(Versions, ResultShapeTest, ::testing::Values("0.3.1", "0.4.0", "1.0.0", "1.1.0"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '.', '_');
                           return "v" + n;
                         });

using LifecycleTest = NodeTest;

TEST_F(LifecycleTest, PodsTalkThroughRedirectPeerNotTheHostForwardPath) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, conf));
  ASSERT_NE(a.ip, b.ip);
  ASSERT_NO_FATAL_FAILURE(installForwardCounter(node_));

  const sl_counter before = node_.counter(SL_CNT_REDIRECT_LOCAL);
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip)) << "ping " << a.ip << " -> " << b.ip;
  EXPECT_TRUE(node_.ping(b.netnsName, a.ip)) << "ping " << b.ip << " -> " << a.ip;
  constexpr size_t kBytes = 4 << 20;
  EXPECT_TRUE(node_.tcpExchange(b.netnsName, b.ip, a.netnsName, kBytes));
  EXPECT_TRUE(node_.tcpExchange(a.netnsName, a.ip, b.netnsName, kBytes, 5202));
  const sl_counter after = node_.counter(SL_CNT_REDIRECT_LOCAL);

  // Both directions of 2 x 3 echoes plus the TCP segments went through from_pod's local
  // redirect; the payload alone is 2 x kBytes.
  EXPECT_GE(after.packets - before.packets, 12u);
  EXPECT_GE(after.bytes - before.bytes, 2 * kBytes);
  EXPECT_EQ(forwardedPackets(node_), 0u) << "pod-to-pod packets went through the host's FORWARD path";

  // Control: with Sluice's programs detached the same traffic is routed by the host stack
  // and the FORWARD counter sees it, so the zero above means something.
  for (const Pod* p : {&a, &b}) {
    ProcResult r = node_.runIn(node_.hostNs(), {"tc", "qdisc", "del", "dev", hostVethName(p->containerId, p->ifname), "clsact"});
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  const sl_counter ctlBefore = node_.counter(SL_CNT_REDIRECT_LOCAL);
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip)) << "control: host-routed ping failed";
  EXPECT_GT(forwardedPackets(node_), 0u) << "control: forwarded traffic was not counted";
  EXPECT_EQ(node_.counter(SL_CNT_REDIRECT_LOCAL).packets, ctlBefore.packets);

  ASSERT_TRUE(node_.del(a, conf).ok());
  ASSERT_TRUE(node_.del(b, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

// The host veth's settings are Sluice's, whatever the namespace gives new links: the defaults
// are turned against them first.
TEST_F(LifecycleTest, HostVethSettingsAreSetExplicitly) {
  for (const char* kv : {"net.ipv4.conf.default.forwarding=0", "net.ipv4.conf.default.rp_filter=1",
                         "net.ipv4.conf.default.accept_local=1", "net.ipv6.conf.default.accept_ra=2",
                         "net.ipv6.conf.default.accept_redirects=1"})
    ASSERT_TRUE(node_.runIn(node_.hostNs(), {"sysctl", "-qw", kv}).ok()) << kv;
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  const std::string veth = hostVethName(pod.containerId, pod.ifname);
  for (const auto& [key, want] : std::vector<std::pair<std::string, std::string>>{
           {"net.ipv4.conf." + veth + ".forwarding", "1"}, {"net.ipv4.conf." + veth + ".rp_filter", "0"},
           {"net.ipv4.conf." + veth + ".accept_local", "0"}, {"net.ipv6.conf." + veth + ".accept_ra", "0"},
           {"net.ipv6.conf." + veth + ".accept_redirects", "0"}}) {
    ProcResult r = node_.runIn(node_.hostNs(), {"sysctl", "-n", key});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out, want + "\n") << key;
  }
  ASSERT_TRUE(node_.del(pod, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

TEST_F(LifecycleTest, CheckPassesThenFailsOnceThePodVethIsGone) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));

  ProcResult ok = node_.check(pod, conf);
  EXPECT_TRUE(ok.ok()) << "CHECK on a healthy pod\n" << ok.describe();

  ASSERT_TRUE(node_.runIn(pod.netnsName, {"ip", "link", "del", pod.ifname}).ok());
  ProcResult bad = node_.check(pod, conf);
  EXPECT_TRUE(isCniError(bad)) << "CHECK must fail once the pod's veth is gone";

  ProcResult del = node_.del(pod, conf);
  EXPECT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

TEST_F(LifecycleTest, CheckFailsWhenTheHostRouteIsGone) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  ASSERT_TRUE(node_.check(pod, conf).ok());
  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"ip", "route", "del", pod.ip + "/32"}).ok());
  EXPECT_TRUE(isCniError(node_.check(pod, conf))) << "CHECK must notice the missing host route";
  EXPECT_TRUE(node_.del(pod, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

TEST_F(LifecycleTest, DelTwiceSucceeds) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  ProcResult d1 = node_.del(pod, conf);
  EXPECT_TRUE(d1.ok()) << d1.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  ProcResult d2 = node_.del(pod, conf);
  EXPECT_TRUE(d2.ok()) << "second DEL\n" << d2.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  // And a DEL for a container that never existed.
  Pod ghost = node_.makePod("ghost");
  ProcResult d3 = node_.del(ghost, conf);
  EXPECT_TRUE(d3.ok()) << "DEL of an unknown container\n" << d3.describe();
}

// SPEC (ADD): an interface of the requested name in the container is an error. A second ADD of
// a working attachment fails and leaves it as it was; after the runtime's DEL, ADD works again.
TEST_F(LifecycleTest, RepeatedAddIsAnErrorAndLeavesThePodAlone) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, conf));
  const std::string veth = hostVethName(a.containerId, a.ifname);
  const auto ifindex = node_.link(node_.hostNs(), veth).value_or(json::object()).value("ifindex", 0);
  const auto podMac = node_.link(a.netnsName, a.ifname).value_or(json::object()).value("address", "");

  ProcResult again = node_.add(a, conf);
  EXPECT_TRUE(isCniError(again)) << again.describe();
  auto err = parseCniError(again.out);
  ASSERT_TRUE(err);
  EXPECT_NE(err->msg.find("already has an interface " + a.ifname), std::string::npos) << err->msg;
  // The same veth pair (not one made anew), the same address, and it still talks.
  EXPECT_EQ(node_.link(node_.hostNs(), veth).value_or(json::object()).value("ifindex", -1), ifindex);
  EXPECT_EQ(node_.link(a.netnsName, a.ifname).value_or(json::object()).value("address", "?"), podMac);
  EXPECT_TRUE(node_.check(a, conf).ok());
  EXPECT_TRUE(node_.ping(b.netnsName, a.ip));

  ASSERT_TRUE(node_.del(a, conf).ok());
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  EXPECT_TRUE(node_.ping(b.netnsName, a.ip));
  EXPECT_TRUE(node_.del(a, conf).ok());
  EXPECT_TRUE(node_.del(b, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b}));
}

// What an attachment leaves on the host once its pod interface is gone (the veth pair deleted
// by hand: the endpoint record, the map entries, the address) is cleared by the next ADD of
// the same attachment, which gets the same address back.
TEST_F(LifecycleTest, AddClearsHostLeftoversOfTheSameAttachment) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  Pod a = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  const std::string firstIp = a.ip;
  const std::string veth = hostVethName(a.containerId, a.ifname);
  ASSERT_TRUE(node_.runIn(node_.hostNs(), {"ip", "link", "del", veth}).ok());
  ASSERT_TRUE(node_.endpointRecord(veth)) << "the record outlives the veth";

  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  EXPECT_EQ(a.ip, firstIp) << "the reservation is handed out again";
  EXPECT_TRUE(node_.check(a, conf).ok());
  EXPECT_EQ(node_.endpointEntries().size(), 1u);
  EXPECT_EQ(node_.ifaceEntries().size(), 1u);
  EXPECT_TRUE(node_.del(a, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a}));
}

TEST_F(LifecycleTest, DelWithEmptyNetnsAfterThePodNetnsIsGoneRemovesEverything) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  const std::string veth = hostVethName(pod.containerId, pod.ifname);
  // The state DEL has to clean up really exists before it runs.
  ASSERT_EQ(node_.ipamReservations(kNet).size(), 1u);
  ASSERT_TRUE(node_.endpointRecord(veth));
  ASSERT_EQ(node_.endpointEntries().size(), 1u);
  ASSERT_EQ(node_.ifaceEntries().size(), 1u);

  node_.deleteNetns(pod.netnsName);
  ProcResult del = node_.del(pod, conf, std::string(""));
  EXPECT_TRUE(del.ok()) << del.describe();
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
  EXPECT_FALSE(node_.link(node_.hostNs(), veth));
}

TEST_F(LifecycleTest, AddressIsReleasedAndReusableAfterDel) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam("10.244.3.0/30"));
  Pod a = node_.makePod("a"), b = node_.makePod("b");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, conf));
  ASSERT_TRUE(node_.del(a, conf).ok());
  Pod c = node_.makePod("c");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(c, conf));
  EXPECT_EQ(c.ip, a.ip) << "the only free address is the one DEL released";
  EXPECT_TRUE(node_.ping(c.netnsName, b.ip));
  ASSERT_TRUE(node_.del(b, conf).ok());
  ASSERT_TRUE(node_.del(c, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b, c}));
}

}  // namespace
}  // namespace sluice::itest::lifecycle
