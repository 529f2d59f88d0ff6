// SPDX-License-Identifier: Apache-2.0
// What the plugin is handed: VERSION and STATUS, CNI_ARGS exactly as kubelet/containerd send
// it, and every kind of bad input, each answered with the spec's error JSON and the right
// code, creating nothing.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "harness.h"

namespace sluice::itest::input {
namespace {

constexpr const char* kSubnet = "10.244.1.0/24";

using VersionTest = NodeTest;

TEST_F(VersionTest, ReportsEverySupportedSpecVersion) {
  CniRequest req;
  req.command = "VERSION";
  req.containerId.reset();
  req.ifname.reset();
  req.config = R"({"cniVersion": "1.0.0"})";
  ProcResult r = node_.cni(req);
  ASSERT_TRUE(r.ok()) << r.describe();
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_TRUE(j.contains("cniVersion")) << r.out;
  ASSERT_TRUE(j.contains("supportedVersions") && j["supportedVersions"].is_array()) << r.out;
  for (const char* v : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"})
    EXPECT_NE(std::find(j["supportedVersions"].begin(), j["supportedVersions"].end(), v), j["supportedVersions"].end())
        << v << " missing from " << r.out;
}

TEST_F(VersionTest, StatusIsReadyWithTheDatapathLoaded) {
  ProcResult r = node_.status(node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet)));
  EXPECT_TRUE(r.ok()) << r.describe();
}

class NoDatapathTest : public NodeTest {
 protected:
  bool wantDatapath() const override { return false; }
};

TEST_F(NoDatapathTest, StatusNotReadyAndAddFailsCleanlyUntilTheAgentHasLoadedIt) {
  json conf = node_.pluginConf("1.1.0", kNet, node_.sluiceIpam(kSubnet));
  ProcResult s1 = node_.status(conf);
  // SPEC 1.1 STATUS: 50 "the plugin is not available" (51 "limited connectivity" is not
  // this case: nothing can be added at all).
  EXPECT_TRUE(isCniError(s1, 50)) << "STATUS without a datapath";

  Pod pod = node_.makePod("a");
  ProcResult add = node_.add(pod, conf);
  EXPECT_TRUE(isCniError(add)) << "ADD without a datapath";
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));

  ProcResult load = node_.loadDatapath();
  ASSERT_TRUE(load.ok()) << load.describe();
  ProcResult s2 = node_.status(conf);
  EXPECT_TRUE(s2.ok()) << "STATUS after the agent loaded the datapath\n" << s2.describe();
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));
  EXPECT_TRUE(node_.del(pod, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

// --- CNI_ARGS

struct ArgsCase {
  std::string name;
  // %NS%, %NAME%, %CID%, %UID% are substituted.
  std::string pattern;
};

void PrintTo(const ArgsCase& c, std::ostream* os) { *os << c.name; }

std::string substitute(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars)
    for (size_t pos; (pos = s.find(k)) != std::string::npos;) s.replace(pos, k.size(), v);
  return s;
}

using CniArgsTest = NodeTestP<ArgsCase>;

TEST_P(CniArgsTest, KubernetesPodIdentityIsAcceptedAndRecorded) {
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet));
  Pod pod = node_.makePod("a");
  const std::string ns = "ns-" + pod.containerId.substr(0, 8);
  const std::string name = "web-" + pod.containerId.substr(8, 8);
  const std::string uid = "0b1c2d3e-" + pod.containerId.substr(16, 4) + "-4a5b-8c9d-" + pod.containerId.substr(20, 12);
  pod.args = substitute(GetParam().pattern, {{"%NS%", ns}, {"%NAME%", name}, {"%CID%", pod.containerId}, {"%UID%", uid}});
  SCOPED_TRACE("CNI_ARGS=" + pod.args);
  ASSERT_NO_FATAL_FAILURE(node_.addOk(pod, conf));

  auto rec = node_.endpointRecord(hostVethName(pod.containerId, pod.ifname));
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->value("podNamespace", ""), ns);
  EXPECT_EQ(rec->value("podName", ""), name);
  EXPECT_EQ(rec->value("podUid", ""), uid);

  std::ifstream in(node_.logFile());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string log = ss.str();
  EXPECT_NE(log.find(ns), std::string::npos) << "pod namespace not in the log file " << node_.logFile();
  EXPECT_NE(log.find(name), std::string::npos) << "pod name not in the log file " << node_.logFile();

  EXPECT_TRUE(node_.check(pod, conf).ok());
  EXPECT_TRUE(node_.del(pod, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {pod}));
}

INSTANTIATE_TEST_SUITE_P(
    Orders, CniArgsTest,
    ::testing::Values(
        // dockershim / kubelet order
        ArgsCase{"Kubelet", "IgnoreUnknown=1;K8S_POD_NAMESPACE=%NS%;K8S_POD_NAME=%NAME%;K8S_POD_INFRA_CONTAINER_ID=%CID%;K8S_POD_UID=%UID%"},
        // containerd builds it from a map: any order, IgnoreUnknown anywhere
        ArgsCase{"ContainerdUidFirst", "K8S_POD_UID=%UID%;K8S_POD_NAME=%NAME%;IgnoreUnknown=1;K8S_POD_INFRA_CONTAINER_ID=%CID%;K8S_POD_NAMESPACE=%NS%"},
        ArgsCase{"IgnoreUnknownLast", "K8S_POD_INFRA_CONTAINER_ID=%CID%;K8S_POD_NAMESPACE=%NS%;K8S_POD_UID=%UID%;K8S_POD_NAME=%NAME%;IgnoreUnknown=1"},
        // unknown keys are tolerated because IgnoreUnknown is set ("true" is accepted too)
        ArgsCase{"UnknownKeysIgnored", "IgnoreUnknown=true;K8S_POD_NAME=%NAME%;FOO=bar;K8S_POD_NAMESPACE=%NS%;K8S_POD_UID=%UID%;K8S_POD_INFRA_CONTAINER_ID=%CID%"}),
    [](const auto& info) { return info.param.name; });

// --- bad input: spec error JSON, non-zero exit, the right code, nothing created

class BadInputTest : public NodeTest {
 protected:
  CniRequest goodAdd(const Pod& pod) {
    CniRequest r;
    r.command = "ADD";
    r.containerId = pod.containerId;
    r.netns = pod.netnsPath;
    r.config = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam(kSubnet)).dump();
    return r;
  }
  void expectRejected(const CniRequest& req, uint32_t code, const std::vector<Pod>& pods) {
    ProcResult r = node_.cni(req);
    EXPECT_TRUE(isCniError(r, code));
    EXPECT_TRUE(node_.nothingLeft(kNet, pods));
  }
};

TEST_F(BadInputTest, MalformedJsonIsDecodeFailure) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.config = R"({"cniVersion": "1.0.0", "name": "sltnet", "type": "sluice", )";
  expectRejected(req, 6, {pod});
}

TEST_F(BadInputTest, MissingCommandIsInvalidEnv) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.command.reset();
  expectRejected(req, 4, {pod});
}

TEST_F(BadInputTest, MissingNetnsOnAddIsInvalidEnv) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.netns.reset();
  expectRejected(req, 4, {pod});
}

TEST_F(BadInputTest, MissingContainerIdIsInvalidEnv) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.containerId.reset();
  expectRejected(req, 4, {pod});
}

TEST_F(BadInputTest, MissingIfnameIsInvalidEnv) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.ifname.reset();
  expectRejected(req, 4, {pod});
}

TEST_F(BadInputTest, UnknownCniVersionIsIncompatible) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  json c = json::parse(req.config);
  c["cniVersion"] = "9.9.9";
  req.config = c.dump();
  expectRejected(req, 1, {pod});
}

TEST_F(BadInputTest, WrongFieldTypeIsInvalidConfig) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  json c = json::parse(req.config);
  c["mtu"] = "x";
  req.config = c.dump();
  expectRejected(req, 7, {pod});
}

TEST_F(BadInputTest, WrongIpamRangesTypeIsInvalidConfig) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  json c = json::parse(req.config);
  c["ipam"]["ranges"] = "10.244.1.0/24";
  req.config = c.dump();
  expectRejected(req, 7, {pod});
}

TEST_F(BadInputTest, NetnsPathThatDoesNotExist) {
  Pod pod = node_.makePod("a");
  CniRequest req = goodAdd(pod);
  req.netns = "/run/netns/" + node_.prefix() + "-does-not-exist";
  expectRejected(req, 0, {pod});
}

TEST_F(BadInputTest, NetnsPathThatIsNotANetns) {
  Pod pod = node_.makePod("a");
  const std::string notNs = node_.tmpDir() + "/not-a-netns";
  std::ofstream(notNs) << "x";
  CniRequest req = goodAdd(pod);
  req.netns = notNs;
  expectRejected(req, 0, {pod});
}

TEST_F(BadInputTest, ExhaustedRangeIsIpamExhausted) {
  // A /30 holds two usable addresses (the gateway is link-local, not taken from the range).
  json conf = node_.pluginConf("1.0.0", kNet, node_.sluiceIpam("10.244.5.0/30"));
  Pod a = node_.makePod("a"), b = node_.makePod("b"), c = node_.makePod("c");
  ASSERT_NO_FATAL_FAILURE(node_.addOk(a, conf));
  ASSERT_NO_FATAL_FAILURE(node_.addOk(b, conf));
  EXPECT_NE(a.ip, b.ip);
  for (const Pod* p : {&a, &b}) EXPECT_TRUE(p->ip == "10.244.5.1" || p->ip == "10.244.5.2") << p->ip;

  const auto linksBefore = node_.linkNames(node_.hostNs());
  ProcResult r = node_.add(c, conf);
  EXPECT_TRUE(isCniError(r, 101)) << "third ADD into a /30";
  // Nothing of the third pod exists; the first two are untouched.
  EXPECT_EQ(node_.linkNames(node_.hostNs()), linksBefore);
  EXPECT_EQ(node_.linkNames(c.netnsName), std::set<std::string>{"lo"});
  EXPECT_EQ(node_.ipamReservations(kNet).size(), 2u);
  EXPECT_EQ(node_.endpointEntries().size(), 2u);
  EXPECT_EQ(node_.endpointRecordFiles().size(), 2u);
  EXPECT_FALSE(node_.link(node_.hostNs(), hostVethName(c.containerId, c.ifname)));
  EXPECT_TRUE(node_.ping(a.netnsName, b.ip));

  EXPECT_TRUE(node_.del(c, conf).ok()) << "DEL after a failed ADD";
  EXPECT_TRUE(node_.del(a, conf).ok());
  EXPECT_TRUE(node_.del(b, conf).ok());
  EXPECT_TRUE(node_.nothingLeft(kNet, {a, b, c}));
}

}  // namespace
}  // namespace sluice::itest::input
