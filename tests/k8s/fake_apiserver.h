// SPDX-License-Identifier: Apache-2.0
// A minimal HTTPS/1.1 server on 127.0.0.1 (ephemeral port) standing in for kube-apiserver:
// every request is recorded (path, decoded query, headers, verified client certificate CN)
// and answered by a test-provided handler that can reply, stream chunks, drop the
// connection mid-response or stall until the server stops.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "test_pki.h"

namespace sluice::k8stest {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path?query
  std::string path;
  std::map<std::string, std::string> query;    // percent-decoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string clientCertCN;                    // verified client certificate, "" if none

  bool has(const std::string& key) const { return query.count(key) != 0; }
  std::string param(const std::string& key) const;
  std::string header(const std::string& name) const;
};

class FakeApiServer;

class ResponseWriter {
 public:
  // A complete response with Content-Length.
  void respond(int status, std::string_view body);
  // A chunked response (how the API server streams a watch).
  void startStream(int status = 200);
  bool sendChunk(std::string_view data);
  void endStream();
  // Closes the connection abruptly in the middle of the response.
  void drop();
  // Sends nothing more until the server stops or the client goes away.
  void stall();

 private:
  friend class FakeApiServer;
  ResponseWriter(FakeApiServer& server, SSL* ssl, int fd) : server_(server), ssl_(ssl), fd_(fd) {}
  bool writeAll(std::string_view data);

  FakeApiServer& server_;
  SSL* ssl_;
  int fd_;
  bool dropped_ = false;
};

class FakeApiServer {
 public:
  using Handler = std::function<void(const HttpRequest&, ResponseWriter&)>;
  struct Options {
    bool requireClientCert = false;  // otherwise a client certificate is optional (verified if sent)
  };

  FakeApiServer(const TestPki& pki, Handler handler, Options opts);
  FakeApiServer(const TestPki& pki, Handler handler) : FakeApiServer(pki, std::move(handler), Options{}) {}
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  bool started() const { return listenFd_ >= 0; }
  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::vector<HttpRequest> requests() const;
  int handshakeFailures() const { return handshakeFailures_.load(); }
  // Wait for a condition on the server's counters; false on timeout (a failure, not a hang).
  bool waitForRequests(size_t n, std::chrono::seconds timeout = std::chrono::seconds(30));
  bool waitForHandshakeFailures(int n, std::chrono::seconds timeout = std::chrono::seconds(30));

  void stop();

 private:
  friend class ResponseWriter;
  void acceptLoop();
  void serve(int fd);
  bool stopping() const { return stopping_.load(); }

  Handler handler_;
  SSL_CTX* ctx_ = nullptr;
  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshakeFailures_{0};
  std::thread acceptThread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<HttpRequest> requests_;
  std::set<int> openFds_;
  std::vector<std::thread> connThreads_;
};

}  // namespace sluice::k8stest
