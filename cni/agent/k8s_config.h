// SPDX-License-Identifier: Apache-2.0
// How to reach and authenticate to the Kubernetes API: from the in-cluster service account
// (KUBERNETES_SERVICE_HOST/PORT, <dir>/token, <dir>/ca.crt) or from a kubeconfig file
// (YAML or JSON; current-context -> context -> cluster + user).
#pragma once

#include <string>
#include <string_view>

#include "sluice/result.h"

namespace sluice::agent {

struct ClusterConfig {
  std::string server;       // "https://host:port[/prefix]", no trailing '/'
  std::string caFile;       // PEM bundle to verify the server against
  std::string caData;       // PEM bytes (certificate-authority-data, decoded)
  // Neither caFile nor caData: the system's CA store (still verified).
  bool insecureSkipTlsVerify = false;  // only from an explicit kubeconfig setting
  std::string token;        // static bearer token
  std::string tokenFile;    // bearer token re-read before every request (it rotates)
  std::string clientCertFile;
  std::string clientCertData;  // PEM
  std::string clientKeyFile;
  std::string clientKeyData;   // PEM
  std::string origin;       // "in-cluster" or "kubeconfig <path> context <name>", for messages

  bool hasClientCert() const { return !clientCertFile.empty() || !clientCertData.empty(); }
  bool hasToken() const { return !token.empty() || !tokenFile.empty(); }
  // A human description of the trust anchor ("CA file /x", "CA data", "system CAs").
  std::string caDescription() const;
};

// In-cluster configuration from the environment and the service account directory. The
// token and CA must exist now; the token is re-read on each request later.
Result<ClusterConfig> loadInClusterConfig(const std::string& serviceAccountDir);

// Kubeconfig text (YAML or JSON). Relative file paths are resolved against baseDir (the
// kubeconfig's own directory, as kubectl does). contextOverride picks a context other than
// current-context.
Result<ClusterConfig> parseKubeconfig(std::string_view text, const std::string& baseDir,
                                      const std::string& contextOverride = {});
Result<ClusterConfig> loadKubeconfig(const std::string& path, const std::string& contextOverride = {});

// Checks that every file the configuration names is readable and every PEM looks like one,
// so that a broken mount fails at start-up instead of at the first request.
Status validateClusterConfig(const ClusterConfig& cfg);

// The bearer token to send now: the static token, or the token file's current content
// (trimmed). Empty when the configuration uses no token.
Result<std::string> currentBearerToken(const ClusterConfig& cfg);

// Standard base64 (whitespace ignored), as kubeconfig *-data fields use.
Result<std::string> decodeBase64(std::string_view in);

Result<std::string> readFileToString(const std::string& path);

}  // namespace sluice::agent
