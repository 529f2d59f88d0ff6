// SPDX-License-Identifier: Apache-2.0
// Node objects, Status objects and watch lines as the API server writes them.
#include <gtest/gtest.h>

#include "k8s_nodes.h"
#include "k8s_test_util.h"

namespace sluice::agent {
namespace {

using k8stest::makeNode;
using k8stest::testdata;
using k8stest::testdataLines;
using nlohmann::json;

TEST(NodesTest, RecordedNodeListParses) {
  json list = json::parse(testdata("nodelist.json"));
  EXPECT_EQ(resourceVersionOf(list), "1523");
  std::vector<NodeInfo> nodes;
  for (const auto& item : list["items"]) {
    auto n = nodeInfoFromJson(item);
    ASSERT_TRUE(n.ok()) << n.error().describe();
    nodes.push_back(n.value());
  }
  EXPECT_EQ(nodes, k8stest::kindInitialNodes());
}

TEST(NodesTest, PodCidrsFallBackToTheSingularField) {
  auto n = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"old"},"spec":{"podCIDR":"10.244.7.0/24"},
    "status":{"addresses":[{"type":"InternalIP","address":"198.18.0.7"}]}})"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), makeNode("old", "198.18.0.7", {"10.244.7.0/24"}));
}

TEST(NodesTest, DualStackPrefersIpv4AndKeepsBothCidrs) {
  auto n = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"ds"},
    "spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"]},
    "status":{"addresses":[{"type":"Hostname","address":"ds"},{"type":"ExternalIP","address":"203.0.113.9"},
                           {"type":"InternalIP","address":"fc00:f853:ccd:e793::3"},
                           {"type":"InternalIP","address":"172.18.0.3"}]}})"));
  ASSERT_TRUE(n.ok());
  NodeInfo want = makeNode("ds", "172.18.0.3", {"10.244.1.0/24", "fd00:10:244:1::/64"});
  want.internalIP6 = *net::IpAddr::parse("fc00:f853:ccd:e793::3");
  EXPECT_EQ(n.value(), want) << "one InternalIP of each family, whatever their order";
}

TEST(NodesTest, RecordedDualStackNodeTakesAnInternalIpOfEachFamily) {
  auto n = nodeInfoFromJson(json::parse(testdata("node-dualstack.json")));
  ASSERT_TRUE(n.ok()) << n.error().describe();
  NodeInfo want = makeNode("kind-worker", "172.18.0.2", {"10.244.1.0/24", "fd00:10:244:1::/64"});
  want.internalIP6 = *net::IpAddr::parse("fc00:f853:ccd:e793::2");
  EXPECT_EQ(n.value(), want);

  auto second6 = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"x"},
    "status":{"addresses":[{"type":"InternalIP","address":"fd00::1"},{"type":"ExternalIP","address":"2001:db8::1"},
                           {"type":"InternalIP","address":"fd00::2"},{"type":"InternalIP","address":"10.0.0.1"}]}})"));
  ASSERT_TRUE(second6.ok());
  EXPECT_EQ(second6->internalIP, *net::IpAddr::parse("10.0.0.1"));
  EXPECT_EQ(second6->internalIP6, *net::IpAddr::parse("fd00::1")) << "the first IPv6 InternalIP, never an ExternalIP";
}

TEST(NodesTest, Ipv6OnlyNode) {
  auto n = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"v6"},"spec":{"podCIDRs":["fd00:10:244:2::/64"]},
    "status":{"addresses":[{"type":"InternalIP","address":"fc00:f853:ccd:e793::4"}]}})"));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), makeNode("v6", "fc00:f853:ccd:e793::4", {"fd00:10:244:2::/64"}))
      << "its only address is internalIP; internalIP6 is for a second, IPv6 one";
}

TEST(NodesTest, NodeWithoutInternalIpIsKeptButNotPublished) {
  auto n = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"new"},"spec":{},"status":{}})"));
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->internalIP.valid());
  EXPECT_TRUE(n->podCIDRs.empty());
  NodeCache cache;
  cache.upsert(n.value());
  cache.upsert(makeNode("a", "198.18.0.1", {}));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.snapshot(), std::vector<NodeInfo>{makeNode("a", "198.18.0.1", {})});
}

TEST(NodesTest, MalformedNodesAreErrors) {
  EXPECT_FALSE(nodeInfoFromJson(json::parse(R"({"metadata":{}})")).ok());
  EXPECT_FALSE(nodeInfoFromJson(json::parse(R"([])")).ok());
  auto bad = nodeInfoFromJson(json::parse(R"({"metadata":{"name":"x"},"spec":{"podCIDRs":["10.244.300.0/24"]}})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().describe().find("node x"), std::string::npos);
  EXPECT_FALSE(nodeInfoFromJson(json::parse(R"({"metadata":{"name":"x"},"spec":{"podCIDRs":"10.0.0.0/8"}})")).ok());
}

TEST(NodesTest, RecordedWatchEvents) {
  auto lines = testdataLines("watch-events.jsonl");
  ASSERT_EQ(lines.size(), 5u);
  std::vector<WatchEvent::Type> types;
  std::vector<std::string> rvs;
  for (const auto& l : lines) {
    auto ev = parseWatchEvent(l);
    ASSERT_TRUE(ev.ok()) << ev.error().describe();
    types.push_back(ev->type);
    rvs.push_back(resourceVersionOf(ev->object));
  }
  using T = WatchEvent::Type;
  EXPECT_EQ(types, (std::vector<T>{T::kAdded, T::kModified, T::kModified, T::kDeleted, T::kBookmark}));
  EXPECT_EQ(rvs, (std::vector<std::string>{"1601", "1604", "1650", "1702", "1760"}));
}

TEST(NodesTest, ExpiredStatus) {
  auto ev = parseWatchEvent(testdataLines("watch-expired.jsonl").at(0));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->type, WatchEvent::Type::kError);
  auto st = parseApiStatus(ev->object);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->gone());
  EXPECT_EQ(st->describe(), "410 Expired: too old resource version: 1523 (1890)");

  ApiStatus fromBody = apiStatusFromBody(410, testdata("status-410.json"));
  EXPECT_TRUE(fromBody.gone());
  ApiStatus plain = apiStatusFromBody(502, "<html>Bad Gateway</html>\n");
  EXPECT_EQ(plain.code, 502);
  EXPECT_EQ(plain.message, "<html>Bad Gateway</html>");
  EXPECT_FALSE(plain.gone());
  EXPECT_FALSE(parseApiStatus(json::parse(R"({"kind":"Node"})")));
}

TEST(NodesTest, BadWatchLines) {
  EXPECT_FALSE(parseWatchEvent("not json").ok());
  EXPECT_FALSE(parseWatchEvent(R"({"type":"SYNC","object":{}})").ok());
  EXPECT_FALSE(parseWatchEvent(R"({"type":"ADDED"})").ok());
}

TEST(NodesTest, LineSplitterAcrossChunks) {
  LineSplitter s(16);
  std::vector<std::string> got;
  auto collect = [&](std::string_view l) {
    got.emplace_back(l);
    return okStatus();
  };
  ASSERT_TRUE(s.feed("ab", collect).ok());
  EXPECT_TRUE(s.hasPartialLine());
  ASSERT_TRUE(s.feed("c\r\nde\n\nf", collect).ok());
  ASSERT_TRUE(s.feed("g\n", collect).ok());
  EXPECT_FALSE(s.hasPartialLine());
  EXPECT_EQ(got, (std::vector<std::string>{"abc", "de", "fg"}));
  EXPECT_FALSE(s.feed("0123456789abcdefXYZ", collect).ok());  // longer than the limit
  LineSplitter t;
  auto failing = [](std::string_view) { return Status(Error(CniCode::kDecodeFailure, "bad")); };
  EXPECT_FALSE(t.feed("x\ny\n", failing).ok());
}

}  // namespace
}  // namespace sluice::agent
