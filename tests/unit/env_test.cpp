// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/env.h"

#include <gtest/gtest.h>

#include <map>

namespace sluice::cni {
namespace {

Result<CniEnv> parseEnv(const std::map<std::string, std::string>& vars) {
  return parseCniEnv([&](const char* k) -> const char* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::map<std::string, std::string> addEnv() {
  return {{"CNI_COMMAND", "ADD"},   {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/run/netns/p"}, {"CNI_IFNAME", "eth0"},
          {"CNI_PATH", "/opt/cni/bin"},
          {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0"}};
}

TEST(CniArgs, KubernetesKeysInAnyOrder) {
  auto a = parseCniArgs(
      "K8S_POD_UID=u-1;K8S_POD_NAME=web-0;IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=abc;"
      "K8S_POD_NAMESPACE=default");
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_TRUE(a->ignoreUnknown);
  EXPECT_EQ(a->podNamespace, "default");
  EXPECT_EQ(a->podName, "web-0");
  EXPECT_EQ(a->podInfraContainerId, "abc");
  EXPECT_EQ(a->podUid, "u-1");
}

TEST(CniArgs, EmptyAndTrailingSeparators) {
  auto a = parseCniArgs("");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->podName.empty());
  auto b = parseCniArgs("K8S_POD_NAME=x;");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->podName, "x");
  auto c = parseCniArgs("K8S_POD_NAME=a=b");  // values may hold '='
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->podName, "a=b");
}

TEST(CniArgs, UnknownKeysNeedIgnoreUnknown) {
  auto a = parseCniArgs("K8S_POD_NAME=x;FOO=bar");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), CniCode::kInvalidEnv);
  EXPECT_NE(a.error().message().find("FOO"), std::string::npos);
  auto b = parseCniArgs("FOO=bar;IgnoreUnknown=true");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->unknown.at("FOO"), "bar");
  EXPECT_FALSE(parseCniArgs("FOO=bar;IgnoreUnknown=0").ok());
}

TEST(CniArgs, Malformed) {
  for (const char* s : {"novalue", "=x", "K8S_POD_NAME=x;junk", "IgnoreUnknown=maybe"}) {
    auto a = parseCniArgs(s);
    ASSERT_FALSE(a.ok()) << s;
    EXPECT_EQ(a.error().code(), CniCode::kInvalidEnv) << s;
  }
}

TEST(CniEnv, AddWithEverything) {
  auto e = parseEnv(addEnv());
  ASSERT_TRUE(e.ok()) << e.error().message();
  EXPECT_EQ(e->command, Command::kAdd);
  EXPECT_EQ(e->containerId, "abc123");
  EXPECT_EQ(e->netns, "/run/netns/p");
  EXPECT_EQ(e->ifname, "eth0");
  EXPECT_EQ(e->path, "/opt/cni/bin");
  EXPECT_EQ(e->args.podName, "web-0");
}

TEST(CniEnv, RequiredVariablesPerCommand) {
  struct Case {
    const char* command;
    const char* drop;
    bool ok;
  } cases[] = {
      {"ADD", "CNI_CONTAINERID", false}, {"ADD", "CNI_NETNS", false},
      {"ADD", "CNI_IFNAME", false},      {"CHECK", "CNI_NETNS", false},
      {"CHECK", "CNI_IFNAME", false},    {"DEL", "CNI_NETNS", true},
      {"DEL", "CNI_CONTAINERID", false}, {"DEL", "CNI_IFNAME", false},
      {"ADD", "CNI_ARGS", true},         {"VERSION", "CNI_CONTAINERID", true},
      {"GC", "CNI_CONTAINERID", true},   {"STATUS", "CNI_IFNAME", true},
  };
  for (const auto& c : cases) {
    auto vars = addEnv();
    vars["CNI_COMMAND"] = c.command;
    vars.erase(c.drop);
    auto e = parseEnv(vars);
    EXPECT_EQ(e.ok(), c.ok) << c.command << " without " << c.drop;
    if (!e.ok()) {
      EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
      EXPECT_NE(e.error().message().find(c.drop), std::string::npos) << e.error().message();
    }
  }
}

TEST(CniEnv, CommandIsRequiredAndKnown) {
  auto vars = addEnv();
  vars.erase("CNI_COMMAND");
  auto e = parseEnv(vars);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
  vars["CNI_COMMAND"] = "add";
  e = parseEnv(vars);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
}

TEST(CniEnv, InvalidContainerIdsAndIfnames) {
  for (const char* cid : {"-abc", "a/b", "a b", "a;b", "../x"}) {
    auto vars = addEnv();
    vars["CNI_CONTAINERID"] = cid;
    auto e = parseEnv(vars);
    ASSERT_FALSE(e.ok()) << cid;
    EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
  }
  for (const char* ifn : {"eth0/1", "eth:0", "a b", ".", "..", "sixteen-chars-xx"}) {
    auto vars = addEnv();
    vars["CNI_IFNAME"] = ifn;
    auto e = parseEnv(vars);
    ASSERT_FALSE(e.ok()) << ifn;
    EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
  }
  auto vars = addEnv();
  vars["CNI_IFNAME"] = "fifteen-chars-x";
  vars["CNI_CONTAINERID"] = "A0_b.c-d";
  EXPECT_TRUE(parseEnv(vars).ok());
}

TEST(CniEnv, BadCniArgsAreInvalidEnv) {
  auto vars = addEnv();
  vars["CNI_ARGS"] = "K8S_POD_NAME=x;Unknown=1";
  auto e = parseEnv(vars);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code(), CniCode::kInvalidEnv);
}

}  // namespace
}  // namespace sluice::cni
