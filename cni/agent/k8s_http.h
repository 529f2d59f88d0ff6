// SPDX-License-Identifier: Apache-2.0
// HTTPS GETs against the API server with libcurl: TLS verified against the configured CA,
// bearer token re-read per request, client certificates, stop_token aborts promptly, and a
// low-speed limit so that a stalled stream is abandoned instead of hanging forever.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "k8s_config.h"
#include "sluice/result.h"

namespace sluice::agent {

struct HttpResponse {
  enum class Outcome {
    kResponse,     // an HTTP response arrived completely (any status)
    kStopped,      // stop was requested
    kAborted,      // the streaming callback asked to stop reading
    kTransport,    // connect/reset/timeout/stall/truncated body: retry with backoff
    kTls,          // the server's certificate was not trusted, or the handshake failed
    kCredentials,  // the token file could not be read
    kConfig,       // the CA or client certificate itself is unusable: not retryable
  };
  Outcome outcome = Outcome::kTransport;
  long status = 0;   // HTTP status (0 when none arrived)
  std::string body;  // get(): the body; stream(): the body of a non-2xx response only
  Error error;       // set for kTransport/kTls/kCredentials/kConfig
  bool ok() const { return outcome == Outcome::kResponse && status >= 200 && status < 300; }
};

struct HttpRequestLimits {
  std::chrono::seconds total{0};         // whole request, 0 = unlimited
  std::chrono::seconds lowSpeedTime{30};  // abandon after this long below 1 byte/s
};

class KubeHttpClient {
 public:
  explicit KubeHttpClient(ClusterConfig cfg);
  ~KubeHttpClient();
  KubeHttpClient(const KubeHttpClient&) = delete;
  KubeHttpClient& operator=(const KubeHttpClient&) = delete;

  const ClusterConfig& config() const { return cfg_; }
  std::string url(std::string_view pathAndQuery) const { return cfg_.server + std::string(pathAndQuery); }

  HttpResponse get(std::string_view pathAndQuery, std::stop_token stop, const HttpRequestLimits& limits);

  // Streams a 2xx body to onData chunk by chunk as it arrives; onData returning false ends
  // the request with Outcome::kAborted. Other statuses collect their body instead.
  HttpResponse stream(std::string_view pathAndQuery, std::stop_token stop, const HttpRequestLimits& limits,
                      const std::function<bool(std::string_view)>& onData);

 private:
  struct Transfer;
  HttpResponse perform(std::string_view pathAndQuery, std::stop_token stop, const HttpRequestLimits& limits,
                       const std::function<bool(std::string_view)>* onData);

  ClusterConfig cfg_;
  void* curl_ = nullptr;  // CURL*, reused so that connections are kept alive
};

// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view s);

}  // namespace sluice::agent
