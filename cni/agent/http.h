// SPDX-License-Identifier: Apache-2.0
// A small single-threaded HTTP/1.0-style server for /healthz and /metrics: one request per
// connection, bounded request size, read timeout, Connection: close. No new dependencies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "sluice/result.h"

namespace sluice::agent {

struct HttpResponse {
  int status = 200;
  std::string contentType = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const std::string& method, const std::string& path)>;

  // addr: "127.0.0.1:9962", "0.0.0.0:9962", "[::1]:9962" or ":9962" (all addresses).
  static Result<HttpServer> listen(const std::string& addr, Handler handler);

  HttpServer(HttpServer&&) noexcept;
  HttpServer& operator=(HttpServer&&) noexcept;
  ~HttpServer();

  uint16_t port() const;
  // Serves until stop is requested (checked at least every 200 ms).
  void serve(std::stop_token stop);

 private:
  HttpServer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

const char* httpReason(int status);

}  // namespace sluice::agent
