// SPDX-License-Identifier: Apache-2.0
// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT plus a service account directory,
// with the token re-read on every request because kubelet rotates it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <optional>

#include "k8s_config.h"
#include "k8s_source.h"
#include "k8s_test_util.h"

namespace sluice::k8stest {
namespace {

// Sets (or unsets, for nullopt) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value->c_str(), 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(InClusterTest, ListsAndWatchesWithTheRotatedToken) {
  TestPki pki = makeTestPki("kubernetes-ca");
  ASSERT_FALSE(pki.caCertPem.empty());
  ApiScript script;
  script.expectToken("sa-token-1");
  // The script switches tokens only once the first watch has been accepted: the server
  // records a request before authenticating it, so waiting for the request alone would let
  // the switch reject the watch that still (rightly) carries the old token.
  auto watching = std::make_shared<std::promise<void>>();
  std::future<void> watchingFuture = watching->get_future();
  auto rotated = std::make_shared<std::promise<void>>();
  std::shared_future<void> rotatedFuture = rotated->get_future().share();
  script.addList(replyFile("nodelist.json"));
  // The first watch stays open until the token file has been rotated, then ends normally
  // (as the API server ends a watch at timeoutSeconds); the next request must carry the new token.
  script.addWatch("1523", [watching, rotatedFuture](const HttpRequest&, ResponseWriter& w) {
    w.startStream(200);
    watching->set_value();
    (void)rotatedFuture.wait_for(kWait);
    w.endStream();
  });
  script.addWatch("1523", stallWatch());
  FakeApiServer server(pki, script.handler());
  ASSERT_TRUE(server.started());

  TempDir sa;
  sa.write("token", "sa-token-1\n");
  sa.write("ca.crt", pki.caCertPem);
  sa.write("namespace", "kube-system");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", std::to_string(server.port()));

  agent::K8sSourceOptions o;
  o.nodeName = "kind-worker";
  o.serviceAccountDir = sa.path();
  o.backoffInitial = 10ms;
  o.backoffMax = 100ms;
  auto src = agent::makeK8sNodeSource(o);
  ASSERT_TRUE(src.ok()) << src.error().describe();
  Collector collector;
  {
    SourceRunner runner(std::move(src).value(), collector);
    ASSERT_TRUE(collector.waitForSnapshot(kindInitialNodes()));
    ASSERT_EQ(watchingFuture.wait_for(kWait), std::future_status::ready);
    sa.write("token", "sa-token-2\n");
    script.expectToken("sa-token-2");
    rotated->set_value();
    ASSERT_TRUE(server.waitForRequests(3));
    EXPECT_TRUE(runner.stop().ok());
  }
  server.stop();
  auto reqs = server.requests();
  ASSERT_GE(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer sa-token-1");
  EXPECT_EQ(reqs[1].header("Authorization"), "Bearer sa-token-1");
  EXPECT_EQ(reqs[2].header("Authorization"), "Bearer sa-token-2");
  EXPECT_EQ(reqs[2].param("watch"), "1");
  EXPECT_EQ(script.unauthorized(), 0);
  EXPECT_TRUE(script.violations().empty()) << ::testing::PrintToString(script.violations());
}

TEST(InClusterTest, ConfigFromEnvironment) {
  TestPki pki = makeTestPki("kubernetes-ca");
  TempDir sa;
  sa.write("token", "abc\n");
  sa.write("ca.crt", pki.caCertPem);
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto cfg = agent::loadInClusterConfig(sa.path());
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->caFile, sa.file("ca.crt"));
  EXPECT_EQ(cfg->tokenFile, sa.file("token"));
  EXPECT_TRUE(cfg->token.empty()) << "the token must be re-read, not cached";
  auto token = agent::currentBearerToken(cfg.value());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token.value(), "abc");
}

TEST(InClusterTest, Ipv6ServiceHostIsBracketed) {
  TestPki pki = makeTestPki("kubernetes-ca");
  TempDir sa;
  sa.write("token", "abc");
  sa.write("ca.crt", pki.caCertPem);
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  auto cfg = agent::loadInClusterConfig(sa.path());
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://[fd00:10:96::1]:443");
}

TEST(InClusterTest, MissingEnvironmentIsAClearError) {
  TempDir sa;
  ScopedEnv host("KUBERNETES_SERVICE_HOST", std::nullopt);
  ScopedEnv port("KUBERNETES_SERVICE_PORT", std::nullopt);
  agent::K8sSourceOptions o;
  o.serviceAccountDir = sa.path();
  auto src = agent::makeK8sNodeSource(o);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.error().describe().find("KUBERNETES_SERVICE_HOST"), std::string::npos) << src.error().describe();
  EXPECT_NE(src.error().describe().find("--kubeconfig"), std::string::npos) << src.error().describe();
}

TEST(InClusterTest, MissingTokenOrCaIsAClearError) {
  TestPki pki = makeTestPki("kubernetes-ca");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  {
    TempDir sa;
    sa.write("ca.crt", pki.caCertPem);
    auto cfg = agent::loadInClusterConfig(sa.path());
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().describe().find(sa.file("token")), std::string::npos) << cfg.error().describe();
  }
  {
    TempDir sa;
    sa.write("token", "abc");
    auto cfg = agent::loadInClusterConfig(sa.path());
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().describe().find(sa.file("ca.crt")), std::string::npos) << cfg.error().describe();
  }
  {
    TempDir sa;
    sa.write("token", "abc");
    sa.write("ca.crt", "not a certificate\n");
    auto cfg = agent::loadInClusterConfig(sa.path());
    ASSERT_FALSE(cfg.ok());
    EXPECT_NE(cfg.error().describe().find("not PEM"), std::string::npos) << cfg.error().describe();
  }
}

TEST(InClusterTest, BadPortIsRejected) {
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "https");
  auto cfg = agent::loadInClusterConfig("/nonexistent");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.error().describe().find("KUBERNETES_SERVICE_PORT"), std::string::npos);
}

}  // namespace
}  // namespace sluice::k8stest
