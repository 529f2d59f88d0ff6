// SPDX-License-Identifier: Apache-2.0
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "sluice/fd.h"

namespace sluice::agent {
namespace {

constexpr size_t kMaxRequest = 8192;
constexpr int kClientTimeoutMs = 2000;
constexpr int kStopCheckMs = 200;

Result<sockaddr_storage> parseAddr(const std::string& addr, socklen_t& len) {
  auto bad = [&] { return Error(CniCode::kInvalidConfig, "--metrics-addr: expected host:port, got '" + addr + "'"); };
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return bad();
  std::string host = addr.substr(0, colon), portStr = addr.substr(colon + 1);
  unsigned port = 0;
  auto [p, ec] = std::from_chars(portStr.data(), portStr.data() + portStr.size(), port);
  if (ec != std::errc() || p != portStr.data() + portStr.size() || port > 65535) return bad();
  sockaddr_storage ss{};
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &s6->sin6_addr) != 1) return bad();
    len = sizeof(sockaddr_in6);
    return ss;
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty()) s4->sin_addr.s_addr = htonl(INADDR_ANY);
  else if (inet_pton(AF_INET, host.c_str(), &s4->sin_addr) != 1) return bad();
  len = sizeof(sockaddr_in);
  return ss;
}

void sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, kClientTimeoutMs) <= 0) return;
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

// Reads the request head; false on timeout, overflow or a closed connection.
bool readHead(int fd, std::string& head) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kClientTimeoutMs);
  char buf[1024];
  while (head.find("\r\n\r\n") == std::string::npos && head.find("\n\n") == std::string::npos) {
    if (head.size() > kMaxRequest) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    head.append(buf, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

const char* httpReason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

struct HttpServer::Impl {
  Fd listenFd;
  Handler handler;
  uint16_t port = 0;

  void handle(int fd) {
    std::string head;
    if (!readHead(fd, head)) return;
    HttpResponse resp;
    std::string method, target;
    auto eol = head.find_first_of("\r\n");
    std::string line = head.substr(0, eol);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) {
      resp = {400, "text/plain; charset=utf-8", "bad request\n"};
    } else {
      method = line.substr(0, sp1);
      target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
      if (method != "GET" && method != "HEAD") {
        resp = {405, "text/plain; charset=utf-8", "method not allowed\n"};
      } else {
        try {
          resp = handler(method, target);
        } catch (const std::exception& e) {
          resp = {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n"};
        }
      }
    }
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + httpReason(resp.status) + "\r\n" +
                      "Content-Type: " + resp.contentType + "\r\n" +
                      "Content-Length: " + std::to_string(resp.body.size()) + "\r\n" +
                      "Connection: close\r\n\r\n";
    if (method != "HEAD") out += resp.body;
    sendAll(fd, out);
  }
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}
HttpServer::HttpServer(HttpServer&&) noexcept = default;
HttpServer& HttpServer::operator=(HttpServer&&) noexcept = default;
HttpServer::~HttpServer() = default;

Result<HttpServer> HttpServer::listen(const std::string& addr, Handler handler) {
  socklen_t len = 0;
  SL_ASSIGN_OR_RETURN(auto sa, parseAddr(addr, len));
  HttpServer srv;
  srv.impl_->handler = std::move(handler);
  srv.impl_->listenFd.reset(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int fd = srv.impl_->listenFd.get();
  if (fd < 0) return Error::fromErrno(errno, "socket for " + addr);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) return Error::fromErrno(errno, "bind " + addr);
  if (::listen(fd, 64) != 0) return Error::fromErrno(errno, "listen on " + addr);
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  srv.impl_->port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                      : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return srv;
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::serve(std::stop_token stop) {
  while (!stop.stop_requested()) {
    pollfd p{impl_->listenFd.get(), POLLIN, 0};
    int r = ::poll(&p, 1, kStopCheckMs);
    if (r <= 0) continue;
    Fd conn(::accept4(impl_->listenFd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("http accept: {}", std::strerror(errno));
      continue;
    }
    impl_->handle(conn.get());
  }
}

}  // namespace sluice::agent
