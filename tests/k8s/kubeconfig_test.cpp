// SPDX-License-Identifier: Apache-2.0
// Kubeconfig: current-context -> context -> cluster + user, inline data, relative paths.
#include <gtest/gtest.h>

#include "k8s_config.h"
#include "k8s_test_util.h"

namespace sluice::agent {
namespace {

using k8stest::base64Encode;
using k8stest::makeTestPki;
using k8stest::TempDir;

const std::string kCaPem = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n";

// Two clusters, contexts and users; current-context picks the second of each.
std::string multiContextKubeconfig() {
  return R"(apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster:
    server: https://dev.example:6443
    insecure-skip-tls-verify: true
- name: prod
  cluster:
    server: "https://10.0.0.1:6443/"
    certificate-authority-data: )" + base64Encode(kCaPem) + R"(
contexts:
- name: dev
  context: {cluster: dev, user: dev-user}
- name: prod-admin
  context:
    cluster: prod
    user: prod-user
    namespace: kube-system
current-context: prod-admin
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    token: prod-token
)";
}

TEST(KubeconfigTest, CurrentContextSelectsClusterAndUser) {
  auto cfg = parseKubeconfig(multiContextKubeconfig(), "/etc/sluice");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");  // trailing '/' dropped
  EXPECT_EQ(cfg->caData, kCaPem);                   // base64 decoded
  EXPECT_TRUE(cfg->caFile.empty());
  EXPECT_FALSE(cfg->insecureSkipTlsVerify);
  EXPECT_EQ(cfg->token, "prod-token");
  EXPECT_FALSE(cfg->hasClientCert());
}

TEST(KubeconfigTest, ContextOverride) {
  auto cfg = parseKubeconfig(multiContextKubeconfig(), "/etc/sluice", "dev");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://dev.example:6443");
  EXPECT_TRUE(cfg->insecureSkipTlsVerify);
  EXPECT_EQ(cfg->token, "dev-token");
}

TEST(KubeconfigTest, RelativeAndAbsolutePathsAndTokenFile) {
  auto cfg = parseKubeconfig(R"(clusters:
- name: c
  cluster:
    server: https://api:443
    certificate-authority: pki/ca.crt
users:
- name: u
  user:
    tokenFile: /var/run/secrets/token
    client-certificate: pki/client.crt
    client-key: /abs/client.key
contexts:
- name: x
  context:
    cluster: c
    user: u
current-context: x
)",
                             "/home/me/.kube");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->caFile, "/home/me/.kube/pki/ca.crt");
  EXPECT_EQ(cfg->tokenFile, "/var/run/secrets/token");
  EXPECT_EQ(cfg->clientCertFile, "/home/me/.kube/pki/client.crt");
  EXPECT_EQ(cfg->clientKeyFile, "/abs/client.key");
}

TEST(KubeconfigTest, ClientCertificateDataIsDecoded) {
  const std::string cert = "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n";
  const std::string key = "-----BEGIN EC PRIVATE KEY-----\na2V5\n-----END EC PRIVATE KEY-----\n";
  auto cfg = parseKubeconfig(R"(clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user:
    client-certificate-data: )" + base64Encode(cert) + R"(
    client-key-data: )" + base64Encode(key) + R"(
contexts:
- {name: x, context: {cluster: c, user: u}}
current-context: x
)",
                             "/");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->clientCertData, cert);
  EXPECT_EQ(cfg->clientKeyData, key);
  EXPECT_TRUE(cfg->token.empty());
}

TEST(KubeconfigTest, JsonKubeconfig) {
  auto cfg = parseKubeconfig(R"({"kind":"Config","apiVersion":"v1","current-context":"x",
    "clusters":[{"name":"c","cluster":{"server":"https://h:1","certificate-authority-data":")" +
                                 base64Encode(kCaPem) + R"("}}],
    "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],
    "users":[{"name":"u","user":{"token":"t"}}]})",
                             "/");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://h:1");
  EXPECT_EQ(cfg->caData, kCaPem);
  EXPECT_EQ(cfg->token, "t");
}

std::string withUser(const std::string& userBody, const std::string& server = "https://h:1") {
  return "clusters:\n- name: c\n  cluster:\n    server: " + server +
         "\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n" +
         userBody;
}

std::string errorOf(const std::string& text) {
  auto cfg = parseKubeconfig(text, "/");
  EXPECT_FALSE(cfg.ok()) << text;
  return cfg.ok() ? std::string() : cfg.error().describe();
}

TEST(KubeconfigTest, ClearErrors) {
  EXPECT_NE(errorOf("kind: Config\n").find("current-context"), std::string::npos);
  EXPECT_NE(errorOf("current-context: nope\ncontexts: []\n").find("'nope' not found"), std::string::npos);
  EXPECT_NE(errorOf(withUser("    exec:\n      command: aws\n")).find("'exec' credentials are not supported"),
            std::string::npos);
  EXPECT_NE(errorOf(withUser("    token: t\n", "http://h:8080")).find("not an https:// URL"), std::string::npos);
  EXPECT_NE(errorOf(withUser("    client-certificate-data: '%%%'\n    client-key-data: a2V5\n")).find("base64"),
            std::string::npos);
  EXPECT_NE(errorOf(withUser("    client-certificate: c.crt\n")).find("both a certificate and a key"),
            std::string::npos);
  EXPECT_NE(errorOf(withUser("    {}\n")).find("no credentials"), std::string::npos);
  EXPECT_NE(errorOf("clusters:\n- name: c\n  cluster:\n    server: https://h\n    insecure-skip-tls-verify: true\n"
                    "    certificate-authority-data: " + base64Encode(kCaPem) +
                    "\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
                    "users:\n- name: u\n  user: {token: t}\n")
                .find("insecure-skip-tls-verify"),
            std::string::npos);
  EXPECT_NE(errorOf("a: [\n").find("kubeconfig"), std::string::npos);
}

TEST(KubeconfigTest, LoadResolvesPathsAgainstTheFileAndValidatesThem) {
  TempDir dir;
  auto pki = makeTestPki("kubernetes-ca");
  dir.write("ca.crt", pki.caCertPem);
  dir.write("token", "file-token\n");
  dir.write("config", "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n"
                      "    certificate-authority: ca.crt\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
                      "    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    tokenFile: token\n");
  auto cfg = loadKubeconfig(dir.file("config"));
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->caFile, dir.file("ca.crt"));
  EXPECT_EQ(cfg->tokenFile, dir.file("token"));
  auto token = currentBearerToken(cfg.value());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token.value(), "file-token");

  dir.write("ca.crt", "garbage");
  auto bad = loadKubeconfig(dir.file("config"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().describe().find("not PEM"), std::string::npos) << bad.error().describe();
}

TEST(KubeconfigTest, Base64) {
  EXPECT_EQ(decodeBase64("aGVsbG8=").value(), "hello");
  EXPECT_EQ(decodeBase64("aGVs\nbG8h").value(), "hello!");
  EXPECT_EQ(decodeBase64("").value(), "");
  EXPECT_EQ(decodeBase64("aGVsbG8").value(), "hello");  // padding is optional
  EXPECT_FALSE(decodeBase64("aGVsbG9").ok());  // leftover bits that are not padding
  EXPECT_FALSE(decodeBase64("aGVsb").ok());    // a lone 6-bit group
  EXPECT_FALSE(decodeBase64("aGV$bG8=").ok());
  EXPECT_FALSE(decodeBase64("aG=Vs").ok());
}

}  // namespace
}  // namespace sluice::agent
