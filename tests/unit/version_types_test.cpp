// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "sluice/cni/types.h"
#include "sluice/cni/version.h"

namespace sluice::cni {
namespace {

using nlohmann::json;

CniResult sampleResult() {
  CniResult r;
  r.interfaces.push_back({"sl538f587a236", "aa:bb:cc:dd:ee:01", "", 1450});
  r.interfaces.push_back({"eth0", "aa:bb:cc:dd:ee:02", "/var/run/netns/pod", 1450});
  r.ips.push_back({*net::Cidr::parse("10.244.1.5/32"), net::IpAddr::parse("169.254.1.1"), 1});
  r.routes.push_back({*net::Cidr::parse("0.0.0.0/0"), net::IpAddr::parse("169.254.1.1")});
  r.dns.nameservers = {"10.96.0.10"};
  r.dns.search = {"default.svc.cluster.local"};
  return r;
}

TEST(Version, SupportedList) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"})
    EXPECT_TRUE(versionSupported(v)) << v;
  for (const char* v : {"0.1.0", "0.2.0", "1.2.0", "2.0.0", "", "1", "1.0.0.0", "x.y.z", "1.0.0-rc1"})
    EXPECT_FALSE(versionSupported(v)) << v;
  EXPECT_TRUE(versionSupported("1.0"));  // the reference library accepts two components
}

TEST(Version, Compare) {
  EXPECT_TRUE(versionAtLeast("1.1.0", "1.0.0"));
  EXPECT_TRUE(versionAtLeast("0.4.0", "0.4.0"));
  EXPECT_FALSE(versionAtLeast("0.3.1", "0.4.0"));
  EXPECT_TRUE(versionAtLeast("0.10.0", "0.4.0"));  // numeric, not lexical
  EXPECT_FALSE(versionAtLeast("garbage", "0.1.0"));
  EXPECT_TRUE(usesLegacyResult("0.3.0"));
  EXPECT_TRUE(usesLegacyResult("0.4.0"));
  EXPECT_FALSE(usesLegacyResult("1.0.0"));
}

TEST(ResultJson, CurrentFormat) {
  json j = resultToJson(sampleResult(), "1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  ASSERT_EQ(j["interfaces"].size(), 2u);
  EXPECT_EQ(j["interfaces"][0], (json{{"name", "sl538f587a236"}, {"mac", "aa:bb:cc:dd:ee:01"}}));
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/var/run/netns/pod");
  EXPECT_FALSE(j["interfaces"][1].contains("mtu"));  // mtu is a 1.1.0 field
  ASSERT_EQ(j["ips"].size(), 1u);
  EXPECT_EQ(j["ips"][0],
            (json{{"address", "10.244.1.5/32"}, {"gateway", "169.254.1.1"}, {"interface", 1}}));
  EXPECT_EQ(j["routes"][0], (json{{"dst", "0.0.0.0/0"}, {"gw", "169.254.1.1"}}));
  EXPECT_EQ(j["dns"]["nameservers"][0], "10.96.0.10");
  EXPECT_FALSE(j["dns"].contains("domain"));
}

TEST(ResultJson, V110CarriesInterfaceMtu) {
  json j = resultToJson(sampleResult(), "1.1.0");
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["interfaces"][1]["mtu"], 1450);
  EXPECT_FALSE(j["ips"][0].contains("version"));
}

TEST(ResultJson, LegacyFormatsCarryIpVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0"}) {
    json j = resultToJson(sampleResult(), v);
    EXPECT_EQ(j["cniVersion"], v);
    EXPECT_EQ(j["ips"][0]["version"], "4") << v;
    EXPECT_EQ(j["ips"][0]["interface"], 1) << v;
    EXPECT_FALSE(j["interfaces"][1].contains("mtu")) << v;
  }
  CniResult r6;
  r6.ips.push_back({*net::Cidr::parse("fd00::5/128"), std::nullopt, std::nullopt});
  json j = resultToJson(r6, "0.4.0");
  EXPECT_EQ(j["ips"][0]["version"], "6");
  EXPECT_FALSE(j["ips"][0].contains("gateway"));
  EXPECT_FALSE(j["ips"][0].contains("interface"));
}

TEST(ResultJson, RoundTripsInEveryVersion) {
  CniResult want = sampleResult();
  for (auto v : kSupportedVersions) {
    auto got = resultFromJson(resultToJson(want, v));
    ASSERT_TRUE(got.ok()) << v << ": " << got.error().message();
    CniResult expect = want;
    if (v != "1.1.0")
      for (auto& i : expect.interfaces) i.mtu.reset();
    EXPECT_EQ(*got, expect) << v;
  }
}

TEST(ResultJson, ParsesAReferencePluginResult) {
  // host-local's answer in 0.4.0 format.
  auto r = resultFromJson(json::parse(R"({"cniVersion":"0.4.0","ips":[{"version":"4",
      "address":"10.244.1.2/24","gateway":"10.244.1.1"}],"dns":{}})"));
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_EQ(r->ips[0].address.str(), "10.244.1.2/24");
  EXPECT_EQ(r->ips[0].gateway->str(), "10.244.1.1");
  EXPECT_FALSE(r->ips[0].interface.has_value());
}

TEST(ResultJson, RejectsMalformedResults) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"({"ips":[{"address":"10.244.1.2"}]})", "prevResult.ips[0].address"},
      {R"({"ips":[{"address":"bogus/24"}]})", "prevResult.ips[0].address"},
      {R"({"ips":[{}]})", "prevResult.ips[0].address"},
      {R"({"ips":[{"address":"10.244.1.2/24","interface":0}]})", "prevResult.ips[0].interface"},
      {R"({"ips":[{"address":"10.244.1.2/24","version":"6"}]})", "prevResult.ips[0].version"},
      {R"({"ips":{}})", "prevResult.ips"},
      {R"({"interfaces":[{"mac":"x"}]})", "prevResult.interfaces[0].name"},
      {R"({"routes":[{"dst":"10.0.0.0/8","gw":7}]})", "prevResult.routes[0].gw"},
      {R"({"dns":{"nameservers":"10.96.0.10"}})", "prevResult.dns.nameservers"},
      {R"([])", "prevResult"},
  };
  for (const auto& c : cases) {
    auto r = resultFromJson(json::parse(c.json), "prevResult");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.error().code(), CniCode::kInvalidConfig) << c.json;
    EXPECT_NE(r.error().message().find(c.field), std::string::npos)
        << c.json << " -> " << r.error().message();
  }
}

TEST(ErrorJson, SpecShape) {
  Error e(CniCode::kIpamExhausted, "ipam: no free address", 0);
  e.details("range 10.244.1.0/30");
  json j = errorToJson(e, "1.0.0");
  EXPECT_EQ(j, (json{{"cniVersion", "1.0.0"},
                     {"code", 101},
                     {"msg", "ipam: no free address"},
                     {"details", "range 10.244.1.0/30"}}));
  json k = errorToJson(Error::fromErrno(ENOENT, "open netns"), "0.4.0");
  EXPECT_EQ(k["code"], 100);
  EXPECT_EQ(k["details"], "No such file or directory");
}

TEST(ErrorJson, ParsesADelegatedPluginsError) {
  auto e = errorFromJson(R"({"code":11,"msg":"busy","details":"try later"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code(), CniCode::kTryAgainLater);
  EXPECT_EQ(e->message(), "busy");
  EXPECT_EQ(e->detailText(), "try later");
  EXPECT_FALSE(errorFromJson("not json").has_value());
  EXPECT_FALSE(errorFromJson(R"({"msg":"no code"})").has_value());
}

TEST(VersionInfo, ListsEverySupportedVersion) {
  json j = versionInfoJson("1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["supportedVersions"], (json{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
}

}  // namespace
}  // namespace sluice::cni
