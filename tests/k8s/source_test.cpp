// SPDX-License-Identifier: Apache-2.0
// The node source against a local HTTPS API server replaying recorded responses: list,
// watch, expiry, dropped and stalled streams, bad credentials and a wrong CA.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "k8s_source.h"
#include "k8s_test_util.h"

namespace sluice::k8stest {
namespace {

using agent::K8sSourceOptions;

class SourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = makeTestPki("kubernetes-ca");
    ASSERT_FALSE(pki_.caCertPem.empty()) << "OpenSSL could not make the test PKI";
    script_.expectToken("kind-admin-token");
  }

  void startServer(FakeApiServer::Options opts = {}) {
    server_ = std::make_unique<FakeApiServer>(pki_, script_.handler(), opts);
    ASSERT_TRUE(server_->started());
  }

  // A kubeconfig in kubectl's layout pointing at the fake server.
  std::string writeKubeconfig(KubeconfigSpec spec) {
    if (spec.server.empty()) spec.server = server_->url();
    if (spec.caPem.empty() && spec.caFile.empty()) spec.caPem = pki_.caCertPem;
    if (spec.token.empty() && spec.tokenFile.empty() && spec.clientCertPem.empty() && spec.clientCertFile.empty())
      spec.token = "kind-admin-token";
    dir_.write("kubeconfig", kubeconfigYaml(spec));
    return dir_.file("kubeconfig");
  }

  K8sSourceOptions options(const std::string& kubeconfig) {
    K8sSourceOptions o;
    o.kubeconfigPath = kubeconfig;
    o.nodeName = "kind-worker";
    o.watchTimeout = 60s;
    o.backoffInitial = 10ms;
    o.backoffMax = 200ms;
    return o;
  }

  std::unique_ptr<SourceRunner> start(const K8sSourceOptions& o) {
    auto src = agent::makeK8sNodeSource(o);
    EXPECT_TRUE(src.ok()) << (src.ok() ? "" : src.error().describe());
    if (!src.ok()) return nullptr;
    return std::make_unique<SourceRunner>(std::move(src).value(), collector_);
  }

  void TearDown() override {
    runner_.reset();
    if (server_) server_->stop();
    // Only the wrong-CA test may see TLS fail; anywhere else it points at the fake server's
    // TLS setup. (What the client reports, not the server's handshake count: a client that
    // is stopped while it connects leaves an aborted handshake behind, and that is fine.)
    if (!expectTlsErrors_) {
      for (const auto& e : collector_.errors()) EXPECT_EQ(e.find("TLS"), std::string::npos) << e;
    }
    EXPECT_TRUE(script_.violations().empty()) << "requests the API server would not accept:\n"
                                              << ::testing::PrintToString(script_.violations());
  }

  // Each published snapshot differs from the one before (no redundant deliveries).
  void expectNoRepeatedSnapshots() {
    auto snaps = collector_.snapshots();
    for (size_t i = 1; i < snaps.size(); ++i) EXPECT_NE(snaps[i], snaps[i - 1]) << "snapshot " << i << " repeated";
  }

  TestPki pki_;
  TempDir dir_;
  ApiScript script_;
  std::unique_ptr<FakeApiServer> server_;
  Collector collector_;
  std::unique_ptr<SourceRunner> runner_;
  bool expectTlsErrors_ = false;
};

TEST_F(SourceTest, InitialListDeliversSnapshotAndWatchesFromItsResourceVersion) {
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", stallWatch(), "60");
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindInitialNodes())) << describe(collector_.snapshots().empty() ? std::vector<NodeInfo>{} : collector_.snapshots().back());
  ASSERT_TRUE(server_->waitForRequests(2));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(collector_.snapshots().size(), 1u);
  EXPECT_TRUE(collector_.errors().empty()) << ::testing::PrintToString(collector_.errors());
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/api/v1/nodes?limit=500");
  EXPECT_EQ(reqs[1].param("resourceVersion"), "1523");
  EXPECT_EQ(reqs[1].header("Authorization"), "Bearer kind-admin-token");
  EXPECT_NE(reqs[1].header("User-Agent").find("sluice-agent/"), std::string::npos);
}

TEST_F(SourceTest, PaginatedListFollowsTheContinueToken) {
  script_.expectLimit(2);
  // The continue token of page 1, which the client must send back verbatim.
  const std::string token = nlohmann::json::parse(testdata("nodelist-page1.json"))["metadata"]["continue"];
  script_.addList(replyFile("nodelist-page1.json"));
  script_.addList(replyFile("nodelist-page2.json"), token);
  script_.addWatch("1523", stallWatch());
  startServer();
  auto o = options(writeKubeconfig({}));
  o.listPageSize = 2;
  runner_ = start(o);
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindInitialNodes()));
  ASSERT_TRUE(server_->waitForRequests(3));
  EXPECT_TRUE(runner_->stop().ok());
  // Only the complete list is published, never a page.
  EXPECT_EQ(collector_.snapshots().size(), 1u);
  EXPECT_EQ(script_.lists(), 2);
}

TEST_F(SourceTest, WatchEventsConvergeAndTheNextWatchResumesFromTheBookmark) {
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", streamLines("watch-events.jsonl", StreamEnd::kClose));
  script_.addWatch("1760", stallWatch());  // the BOOKMARK's resourceVersion
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterWatchNodes()))
      << describe(collector_.snapshots().empty() ? std::vector<NodeInfo>{} : collector_.snapshots().back());
  ASSERT_TRUE(server_->waitForRequests(3));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 1);
  EXPECT_EQ(script_.watches(), 2);
  // kind-worker3 appeared before its pod CIDR was assigned, then got it.
  auto snaps = collector_.snapshots();
  bool sawWithoutCidr = false;
  for (const auto& s : snaps)
    for (const auto& n : s)
      if (n.name == "kind-worker3" && n.podCIDRs.empty()) sawWithoutCidr = true;
  EXPECT_TRUE(sawWithoutCidr);
  expectNoRepeatedSnapshots();
  EXPECT_TRUE(collector_.errors().empty()) << ::testing::PrintToString(collector_.errors());
}

TEST_F(SourceTest, DeletedNodeIsRemovedEvenIfItsLastStateDoesNotParse) {
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", [](const HttpRequest&, ResponseWriter& w) {
    w.startStream(200);
    w.sendChunk(R"({"type":"DELETED","object":{"kind":"Node","apiVersion":"v1","metadata":{"name":"kind-worker2",)"
                R"("resourceVersion":"1702"},"spec":{"podCIDRs":["not-a-cidr"]}}})"
                "\n");
    w.stall();
  });
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  auto expected = kindInitialNodes();
  std::erase_if(expected, [](const NodeInfo& n) { return n.name == "kind-worker2"; });
  ASSERT_TRUE(collector_.waitForSnapshot(expected))
      << describe(collector_.snapshots().empty() ? std::vector<NodeInfo>{} : collector_.snapshots().back());
  EXPECT_TRUE(runner_->stop().ok());
}

TEST_F(SourceTest, ExpiredErrorEventTriggersRelist) {
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", streamLines("watch-expired.jsonl", StreamEnd::kClose));
  script_.addList(replyFile("nodelist-after-expiry.json"));
  script_.addWatch("2310", stallWatch());
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterExpiryNodes()));
  ASSERT_TRUE(server_->waitForRequests(4));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 2);
  EXPECT_EQ(collector_.snapshots().front(), kindInitialNodes());
}

TEST_F(SourceTest, HttpGoneOnWatchTriggersRelist) {
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", replyFile("status-410.json", 410));
  script_.addList(replyFile("nodelist-after-expiry.json"));
  script_.addWatch("2310", stallWatch());
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterExpiryNodes()));
  ASSERT_TRUE(server_->waitForRequests(4));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 2);
}

TEST_F(SourceTest, DroppedConnectionReconnectsFromTheLastEventWithoutRelisting) {
  script_.addList(replyFile("nodelist.json"));
  // ADDED kind-worker3 (1601) arrives whole; the connection dies in the middle of the next event.
  script_.addWatch("1523", streamLines("watch-events.jsonl", StreamEnd::kDrop, 1));
  script_.addWatch("1601", [](const HttpRequest& req, ResponseWriter& w) {
    // Replays the rest of the recorded stream, then idles.
    auto lines = testdataLines("watch-events.jsonl");
    (void)req;
    w.startStream(200);
    for (size_t i = 1; i < lines.size(); ++i) w.sendChunk(lines[i]);
    w.stall();
  });
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterWatchNodes()));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 1);
  EXPECT_EQ(script_.watches(), 2);
  EXPECT_FALSE(collector_.errors().empty()) << "a dropped watch is reported through onError";
  expectNoRepeatedSnapshots();
}

TEST_F(SourceTest, StalledWatchIsAbandonedAndReopened) {
  script_.addList(replyFile("nodelist.json"));
  // Two events, then silence on an open connection: no bytes for longer than 2x timeoutSeconds.
  script_.addWatch("1523", streamLines("watch-events.jsonl", StreamEnd::kStall, 2), "1");
  script_.addWatch("1604", [](const HttpRequest&, ResponseWriter& w) {
    auto lines = testdataLines("watch-events.jsonl");
    w.startStream(200);
    for (size_t i = 2; i < lines.size(); ++i) w.sendChunk(lines[i]);
    w.endStream();
  }, "1");
  startServer();
  auto o = options(writeKubeconfig({}));
  o.watchTimeout = 1s;
  runner_ = start(o);
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterWatchNodes()));
  ASSERT_TRUE(collector_.waitForError("stalled"));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 1);
  EXPECT_GE(script_.watches(), 2);
}

TEST_F(SourceTest, ServerErrorsAreRetriedWithBackoff) {
  script_.addList([](const HttpRequest&, ResponseWriter& w) {
    w.respond(503, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503})");
  });
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", [](const HttpRequest&, ResponseWriter& w) {
    w.respond(500, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500})");
  });
  script_.addWatch("1523", streamLines("watch-events.jsonl", StreamEnd::kStall));
  startServer();
  runner_ = start(options(writeKubeconfig({})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindAfterWatchNodes()));
  EXPECT_TRUE(collector_.waitForError("HTTP 503 ServiceUnavailable"));
  EXPECT_TRUE(collector_.waitForError("HTTP 500 InternalError: etcdserver: request timed out"));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_EQ(script_.lists(), 2);
}

TEST_F(SourceTest, BadTokenIsAClearErrorNotAHang) {
  startServer();
  runner_ = start(options(writeKubeconfig({.token = "expired-token"})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForError("HTTP 401 Unauthorized"));
  // Still retrying (the token may be rotated), and stop ends it.
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_TRUE(collector_.snapshots().empty());
  EXPECT_GE(script_.unauthorized(), 1);
  for (const auto& r : server_->requests()) EXPECT_EQ(r.header("Authorization"), "Bearer expired-token");
  EXPECT_NE(collector_.errors().front().find("rejected the credentials"), std::string::npos) << collector_.errors().front();
}

TEST_F(SourceTest, WrongCaIsAClearTlsError) {
  expectTlsErrors_ = true;
  startServer();
  TestPki other = makeTestPki("some-other-ca");
  runner_ = start(options(writeKubeconfig({.caPem = other.caCertPem})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForError("TLS"));
  EXPECT_TRUE(runner_->stop().ok());
  EXPECT_NE(collector_.errors().front().find("not trusted"), std::string::npos) << collector_.errors().front();
  EXPECT_TRUE(server_->requests().empty()) << "no request may be sent over an unverified connection";
  // The client gives up as soon as it rejects the certificate; the server thread records the
  // aborted handshake a moment later. Wait for it (the bound is a hang guard, not a timing check).
  for (int i = 0; i < 500 && server_->handshakeFailures() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(server_->handshakeFailures(), 1);
  EXPECT_TRUE(collector_.snapshots().empty());
}

TEST_F(SourceTest, ClientCertificateFromKubeconfigData) {
  script_.expectClientCert(pki_.clientCommonName);
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", stallWatch());
  startServer({.requireClientCert = true});
  runner_ = start(options(writeKubeconfig({.clientCertPem = pki_.clientCertPem, .clientKeyPem = pki_.clientKeyPem})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindInitialNodes())) << ::testing::PrintToString(collector_.errors());
  EXPECT_TRUE(runner_->stop().ok());
  for (const auto& r : server_->requests()) EXPECT_EQ(r.clientCertCN, "system:node:kind-worker");
}

TEST_F(SourceTest, ClientCertificateAndCaFromRelativeKubeconfigPaths) {
  script_.expectClientCert(pki_.clientCommonName);
  script_.addList(replyFile("nodelist.json"));
  script_.addWatch("1523", stallWatch());
  startServer({.requireClientCert = true});
  dir_.write("ca.crt", pki_.caCertPem);
  dir_.write("client.crt", pki_.clientCertPem);
  dir_.write("client.key", pki_.clientKeyPem);
  runner_ = start(options(writeKubeconfig({.caFile = "ca.crt", .clientCertFile = "client.crt", .clientKeyFile = "client.key"})));
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForSnapshot(kindInitialNodes())) << ::testing::PrintToString(collector_.errors());
  EXPECT_TRUE(runner_->stop().ok());
}

TEST_F(SourceTest, CaThatBecomesUnreadableIsFatal) {
  startServer();
  dir_.write("ca.crt", pki_.caCertPem);
  auto src = agent::makeK8sNodeSource(options(writeKubeconfig({.caFile = "ca.crt"})));
  ASSERT_TRUE(src.ok()) << src.error().describe();
  ASSERT_EQ(std::remove(dir_.file("ca.crt").c_str()), 0);
  runner_ = std::make_unique<SourceRunner>(std::move(src).value(), collector_);
  ASSERT_TRUE(runner_->waitForExit());
  Status st = runner_->stop();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().describe().find("cannot load CA file"), std::string::npos) << st.error().describe();
}

TEST_F(SourceTest, StopDuringBackoffReturnsPromptly) {
  startServer();
  auto o = options(writeKubeconfig({.token = "expired-token"}));
  o.backoffInitial = 1h;  // the first failure parks run() in a long backoff
  o.backoffMax = 1h;
  runner_ = start(o);
  ASSERT_TRUE(runner_);
  ASSERT_TRUE(collector_.waitForError("HTTP 401"));
  EXPECT_TRUE(runner_->stop().ok());  // fails the test if run() stays asleep
  EXPECT_EQ(script_.unauthorized(), 1);
}

TEST(SourceConfigTest, MissingKubeconfigIsAnError) {
  K8sSourceOptions o;
  o.kubeconfigPath = "/nonexistent/sluice/kubeconfig";
  auto src = agent::makeK8sNodeSource(o);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.error().describe().find("/nonexistent/sluice/kubeconfig"), std::string::npos) << src.error().describe();
}

}  // namespace
}  // namespace sluice::k8stest
