// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/config.h"

#include <gtest/gtest.h>

namespace sluice::cni {
namespace {

using nlohmann::json;

json base() {
  return json::parse(R"({"cniVersion":"1.0.0","name":"sluice","type":"sluice",
    "ipam":{"type":"sluice-ipam","ranges":[[{"subnet":"10.244.1.0/24"}]]}})");
}

Result<NetConf> parse(const json& j) { return parseNetConf(j.dump()); }

void expectError(const json& j, CniCode code, const std::string& mention) {
  auto c = parse(j);
  ASSERT_FALSE(c.ok()) << j.dump();
  EXPECT_EQ(c.error().code(), code) << j.dump() << " -> " << c.error().message();
  EXPECT_NE(c.error().message().find(mention), std::string::npos)
      << j.dump() << " -> " << c.error().message();
}

TEST(NetConf, DefaultsFromAMinimalConfig) {
  auto c = parse(base());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->cniVersion, "1.0.0");
  EXPECT_EQ(c->name, "sluice");
  EXPECT_EQ(c->mtu, kDefaultMtu);
  EXPECT_EQ(c->bpfRoot, "/sys/fs/bpf/sluice");
  EXPECT_EQ(c->stateDir, "/var/lib/sluice");
  EXPECT_EQ(c->logLevel, "info");
  EXPECT_TRUE(c->logFile.empty());
  ASSERT_TRUE(c->ipam.has_value());
  EXPECT_TRUE(c->ipam->builtin());
  ASSERT_EQ(c->ipam->ranges.size(), 1u);
  const IpRange& r = c->ipam->ranges[0][0];
  EXPECT_EQ(r.subnet.str(), "10.244.1.0/24");
  EXPECT_EQ(r.start.str(), "10.244.1.1");
  EXPECT_EQ(r.end.str(), "10.244.1.254");
  EXPECT_FALSE(r.gateway.has_value());
  EXPECT_FALSE(c->prevResult.has_value());
  EXPECT_FALSE(c->validAttachments.has_value());
  EXPECT_EQ(c->raw, base().dump());
}

TEST(NetConf, EveryFieldOfTheAgentsConflistEntry) {
  json j = json::parse(R"({"cniVersion":"1.1.0","name":"sluice","type":"sluice","mtu":1400,
    "bpfRoot":"/run/sluice/bpf","stateDir":"/tmp/st","logFile":"/tmp/st/cni.log",
    "logLevel":"debug","dns":{"nameservers":["10.96.0.10"],"search":["svc.cluster.local"]},
    "ipam":{"type":"sluice-ipam","ranges":[[{"subnet":"10.244.1.7/24","rangeStart":"10.244.1.10",
      "rangeEnd":"10.244.1.20","gateway":"10.244.1.1"}]]},
    "runtimeConfig":{"portMappings":[]},"capabilities":{"portMappings":true},
    "prevResult":{"cniVersion":"1.1.0","ips":[]},
    "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]})");
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->mtu, 1400);
  EXPECT_EQ(c->bpfRoot, "/run/sluice/bpf");
  EXPECT_EQ(c->stateDir, "/tmp/st");
  EXPECT_EQ(c->logFile, "/tmp/st/cni.log");
  EXPECT_EQ(c->logLevel, "debug");
  EXPECT_EQ(c->dns.nameservers, std::vector<std::string>{"10.96.0.10"});
  const IpRange& r = c->ipam->ranges[0][0];
  EXPECT_EQ(r.subnet.str(), "10.244.1.0/24");  // host bits cleared
  EXPECT_EQ(r.start.str(), "10.244.1.10");
  EXPECT_EQ(r.end.str(), "10.244.1.20");
  EXPECT_EQ(r.gateway->str(), "10.244.1.1");
  ASSERT_TRUE(c->prevResult.has_value());
  EXPECT_TRUE(c->runtimeConfig.contains("portMappings"));
  ASSERT_TRUE(c->validAttachments.has_value());
  EXPECT_EQ(*c->validAttachments, (std::vector<Attachment>{{"c1", "eth0"}}));
}

TEST(NetConf, UnknownKeysAreIgnored) {
  json j = base();
  j["somethingNew"] = {{"nested", true}};
  j["ipam"]["dataDir"] = "/elsewhere";
  j["args"] = {{"cni", {{"labels", json::array()}}}};
  EXPECT_TRUE(parse(j).ok());
}

TEST(NetConf, EverySupportedVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    json j = base();
    j["cniVersion"] = v;
    auto c = parse(j);
    ASSERT_TRUE(c.ok()) << v;
    EXPECT_EQ(c->cniVersion, v);
  }
}

TEST(NetConf, UnsupportedOrMissingVersionIsIncompatible) {
  for (const char* v : {"0.1.0", "0.2.0", "1.2.0", "2.0.0", "banana", ""}) {
    json j = base();
    j["cniVersion"] = v;
    expectError(j, CniCode::kIncompatibleVersion, "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0");
  }
  json j = base();
  j.erase("cniVersion");
  expectError(j, CniCode::kIncompatibleVersion, "cniVersion");
}

TEST(NetConf, MalformedJsonIsADecodeFailure) {
  for (const char* text : {"", "{", "{\"cniVersion\":", "nope", "[1,2]", "\"str\""}) {
    auto c = parseNetConf(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code(), CniCode::kDecodeFailure) << text;
  }
}

TEST(NetConf, WrongTypesNameTheField) {
  struct Case {
    const char* key;
    json value;
  } cases[] = {
      {"cniVersion", 1},      {"name", 5},           {"type", json::array()},
      {"mtu", "1450"},        {"mtu", 1450.5},       {"mtu", 40},
      {"mtu", 70000},         {"bpfRoot", true},     {"bpfRoot", "relative/path"},
      {"stateDir", 3},        {"logFile", 1},        {"logLevel", "loud"},
      {"logLevel", 2},        {"ipam", "host-local"}, {"dns", "8.8.8.8"},
      {"prevResult", "x"},    {"runtimeConfig", 1},  {"capabilities", json::array()},
      {"cni.dev/valid-attachments", json::object()},
  };
  for (const auto& c : cases) {
    json j = base();
    j[c.key] = c.value;
    expectError(j, CniCode::kInvalidConfig, c.key);
  }
}

TEST(NetConf, InvalidNetworkNames) {
  for (const char* name : {"", "../etc", "a/b", ".hidden", "with space"}) {
    json j = base();
    j["name"] = name;
    expectError(j, CniCode::kInvalidConfig, "name");
  }
  json j = base();
  j.erase("name");
  expectError(j, CniCode::kInvalidConfig, "name: missing");
}

TEST(NetConf, IpamValidation) {
  struct Case {
    json ipam;
    const char* mention;
  } cases[] = {
      {json::object(), "ipam.type: missing"},
      {{{"type", 7}}, "ipam.type"},
      {{{"type", "../evil"}}, "ipam.type"},
      {{{"type", "sluice-ipam"}}, "ipam.ranges: missing"},
      {{{"type", "sluice-ipam"}, {"ranges", json::array()}}, "ipam.ranges"},
      {{{"type", "sluice-ipam"}, {"ranges", {json::array()}}}, "ipam.ranges[0]"},
      {{{"type", "sluice-ipam"}, {"ranges", {{{{"subnet", "10.244.1.0"}}}}}}, "ipam.ranges[0][0].subnet"},
      {{{"type", "sluice-ipam"}, {"ranges", {{{{"subnet", 5}}}}}}, "ipam.ranges[0][0].subnet"},
      {{{"type", "sluice-ipam"}, {"ranges", {{{{"subnet", "10.244.1.0/31"}}}}}}, "too small"},
      {{{"type", "sluice-ipam"},
        {"ranges", {{{{"subnet", "10.244.1.0/24"}, {"rangeStart", "10.244.2.1"}}}}}},
       "ipam.ranges[0][0].rangeStart"},
      {{{"type", "sluice-ipam"},
        {"ranges", {{{{"subnet", "10.244.1.0/24"}, {"rangeEnd", "nope"}}}}}},
       "ipam.ranges[0][0].rangeEnd"},
      {{{"type", "sluice-ipam"},
        {"ranges",
         {{{{"subnet", "10.244.1.0/24"}, {"rangeStart", "10.244.1.50"}, {"rangeEnd", "10.244.1.40"}}}}}},
       "before rangeStart"},
      {{{"type", "sluice-ipam"},
        {"ranges", {{{{"subnet", "10.244.1.0/24"}}, {{"subnet", "fd00::/64"}}}}}},
       "mixes address families"},
      {{{"type", "sluice-ipam"},
        {"ranges", {{{{"subnet", "10.244.1.0/24"}}}, {{{"subnet", "10.244.0.0/16"}}}}}},
       "overlaps"},
  };
  for (const auto& c : cases) {
    json j = base();
    j["ipam"] = c.ipam;
    expectError(j, CniCode::kInvalidConfig, c.mention);
  }
}

TEST(NetConf, DelegatedIpamKeepsNoRanges) {
  json j = base();
  j["ipam"] = {{"type", "host-local"}, {"subnet", "10.244.1.0/24"}};
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->ipam->type, "host-local");
  EXPECT_FALSE(c->ipam->builtin());
  EXPECT_TRUE(c->ipam->ranges.empty());
}

TEST(NetConf, IpamIsOptionalAtParseTime) {
  json j = base();
  j.erase("ipam");
  auto c = parse(j);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->ipam.has_value());
}

TEST(NetConf, RangeDefaultsPerFamily) {
  auto sets = parseRanges(json::parse(R"([[{"subnet":"10.244.1.0/30"},{"subnet":"10.244.2.0/24"}],
                                          [{"subnet":"fd00:10:244:1::/120"}]])"),
                          "ranges");
  ASSERT_TRUE(sets.ok()) << sets.error().message();
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0][0].start.str(), "10.244.1.1");
  EXPECT_EQ((*sets)[0][0].end.str(), "10.244.1.2");
  EXPECT_EQ((*sets)[0][1].start.str(), "10.244.2.1");
  EXPECT_EQ((*sets)[1][0].start.str(), "fd00:10:244:1::1");
  EXPECT_EQ((*sets)[1][0].end.str(), "fd00:10:244:1::ff");
}

TEST(NetConf, BandwidthFromRuntimeConfig) {
  json j = base();
  auto none = parse(j);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->bandwidth.has_value());

  j["runtimeConfig"] = json::parse(
      R"({"bandwidth":{"ingressRate":10000000,"ingressBurst":1000000,"egressRate":5000000}})");
  auto c = parse(j);
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(c->bandwidth.has_value());
  EXPECT_EQ(c->bandwidth->ingressRate, 10000000u);
  EXPECT_EQ(c->bandwidth->ingressBurst, 1000000u);
  EXPECT_TRUE(c->bandwidth->shapesIngress());
  // The bandwidth plugin shapes a direction only with both rate and burst.
  EXPECT_EQ(c->bandwidth->egressRate, 5000000u);
  EXPECT_FALSE(c->bandwidth->shapesEgress());

  j["runtimeConfig"] = json::parse(R"({"bandwidth":{"egressRate":"10M"}})");
  expectError(j, CniCode::kInvalidConfig, "runtimeConfig.bandwidth.egressRate");
  j["runtimeConfig"] = json::parse(R"({"bandwidth":{"ingressBurst":-1}})");
  expectError(j, CniCode::kInvalidConfig, "runtimeConfig.bandwidth.ingressBurst");
  j["runtimeConfig"] = json::parse(R"({"bandwidth":[]})");
  expectError(j, CniCode::kInvalidConfig, "runtimeConfig.bandwidth");
}

TEST(NetConf, PeekVersion) {
  EXPECT_EQ(peekVersion(R"({"cniVersion":"0.4.0"})"), "0.4.0");
  EXPECT_EQ(peekVersion("garbage"), "");
  EXPECT_EQ(peekVersion(R"({"cniVersion":4})"), "");
}

TEST(NetConf, ValidAttachmentsEntriesAreChecked) {
  json j = base();
  j["cniVersion"] = "1.1.0";
  j["cni.dev/valid-attachments"] = json::array({{{"containerID", "c1"}}});
  expectError(j, CniCode::kInvalidConfig, "cni.dev/valid-attachments[0].ifname");
  j["cni.dev/valid-attachments"] = json::array({"c1"});
  expectError(j, CniCode::kInvalidConfig, "cni.dev/valid-attachments[0]");
}

}  // namespace
}  // namespace sluice::cni
