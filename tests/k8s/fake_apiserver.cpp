// SPDX-License-Identifier: Apache-2.0
#include "fake_apiserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace sluice::k8stest {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes like Go's url.QueryUnescape (what the API server applies).
std::string queryUnescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() + 0 && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 410: return "Gone";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

bool parseHead(const std::string& head, HttpRequest& req) {
  size_t lineEnd = head.find("\r\n");
  std::string first = head.substr(0, lineEnd);
  size_t sp1 = first.find(' ');
  size_t sp2 = first.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  req.method = first.substr(0, sp1);
  req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) {
    std::string_view qs = std::string_view(req.target).substr(q + 1);
    while (!qs.empty()) {
      size_t amp = qs.find('&');
      std::string_view kv = qs.substr(0, amp);
      size_t eq = kv.find('=');
      req.query[queryUnescape(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : queryUnescape(kv.substr(eq + 1));
      if (amp == std::string_view::npos) break;
      qs.remove_prefix(amp + 1);
    }
  }
  size_t pos = lineEnd + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    req.headers[lower(line.substr(0, colon))] = value;
  }
  return true;
}

}  // namespace

std::string HttpRequest::param(const std::string& key) const {
  auto it = query.find(key);
  return it == query.end() ? std::string() : it->second;
}

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

bool ResponseWriter::writeAll(std::string_view data) {
  if (dropped_) return false;
  while (!data.empty()) {
    int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void ResponseWriter::respond(int status, std::string_view body) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) +
                     "\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\n"
                     "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  if (writeAll(head)) writeAll(body);
}

void ResponseWriter::startStream(int status) {
  writeAll("HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) +
           "\r\nContent-Type: application/json\r\nCache-Control: no-cache, private\r\n"
           "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
}

bool ResponseWriter::sendChunk(std::string_view data) {
  if (data.empty()) return true;
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return writeAll(size) && writeAll(data) && writeAll("\r\n");
}

void ResponseWriter::endStream() { writeAll("0\r\n\r\n"); }

void ResponseWriter::drop() {
  // RST without TLS close_notify and without the final chunk: a connection lost mid-stream.
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  shutdown(fd_, SHUT_RDWR);
  dropped_ = true;
}

void ResponseWriter::stall() {
  std::unique_lock lk(server_.mu_);
  server_.cv_.wait(lk, [this] { return server_.stopping(); });
}

FakeApiServer::FakeApiServer(const TestPki& pki, Handler handler, Options opts) : handler_(std::move(handler)) {
  signal(SIGPIPE, SIG_IGN);  // a client going away must not kill the test binary
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx_) return;
  auto loadCert = [](const std::string& pem) {
    BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* c = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    return c;
  };
  X509* cert = loadCert(pki.serverCertPem);
  X509* ca = loadCert(pki.caCertPem);
  BIO* kb = BIO_new_mem_buf(pki.serverKeyPem.data(), static_cast<int>(pki.serverKeyPem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  bool ok = cert && ca && key && SSL_CTX_use_certificate(ctx_, cert) == 1 && SSL_CTX_use_PrivateKey(ctx_, key) == 1 &&
            X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca) == 1;
  X509_free(cert);
  X509_free(ca);
  EVP_PKEY_free(key);
  if (!ok) return;
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | (opts.requireClientCert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
  // Clients resume TLS sessions (libcurl offers the ticket of the previous connection, as
  // kube-apiserver allows). With peer verification on, OpenSSL refuses to resume a session
  // that has no session id context and aborts the handshake with an internal_error alert.
  static constexpr unsigned char kSessionContext[] = "sluice-fake-apiserver";
  SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof kSessionContext - 1);

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return;
  }
  port_ = ntohs(addr.sin_port);
  listenFd_ = fd;
  acceptThread_ = std::thread([this] { acceptLoop(); });
}

FakeApiServer::~FakeApiServer() {
  stop();
  if (ctx_) SSL_CTX_free(ctx_);
}

void FakeApiServer::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
  if (listenFd_ >= 0) shutdown(listenFd_, SHUT_RDWR);  // wakes accept()
  if (acceptThread_.joinable()) acceptThread_.join();
  if (listenFd_ >= 0) close(listenFd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lk(mu_);
    for (int fd : openFds_) shutdown(fd, SHUT_RDWR);  // wakes blocked reads and writes
    threads.swap(connThreads_);
  }
  for (auto& t : threads) t.join();
}

void FakeApiServer::acceptLoop() {
  for (;;) {
    int fd = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR && !stopping()) continue;
      return;
    }
    std::lock_guard lk(mu_);
    if (stopping()) {
      close(fd);
      return;
    }
    openFds_.insert(fd);
    connThreads_.emplace_back([this, fd] { serve(fd); });
  }
}

void FakeApiServer::serve(int fd) {
  SSL* ssl = SSL_new(ctx_);
  SSL_set_fd(ssl, fd);
  bool cleanClose = false;
  if (SSL_accept(ssl) != 1) {
    ERR_clear_error();
    handshakeFailures_++;
    std::lock_guard lk(mu_);
    cv_.notify_all();
  } else {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    HttpRequest req;
    size_t end = head.find("\r\n\r\n");
    if (end != std::string::npos && parseHead(head.substr(0, end), req)) {
      if (X509* peer = SSL_get1_peer_certificate(ssl)) {
        if (SSL_get_verify_result(ssl) == X509_V_OK) {
          char cn[256] = {0};
          X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
          req.clientCertCN = cn;
        }
        X509_free(peer);
      }
      {
        std::lock_guard lk(mu_);
        requests_.push_back(req);
        cv_.notify_all();
      }
      ResponseWriter w(*this, ssl, fd);
      handler_(req, w);
      cleanClose = !w.dropped_;
    }
  }
  if (cleanClose) SSL_shutdown(ssl);
  SSL_free(ssl);
  std::lock_guard lk(mu_);
  openFds_.erase(fd);
  close(fd);
}

std::vector<HttpRequest> FakeApiServer::requests() const {
  std::lock_guard lk(mu_);
  return requests_;
}

bool FakeApiServer::waitForRequests(size_t n, std::chrono::seconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return requests_.size() >= n; });
}

bool FakeApiServer::waitForHandshakeFailures(int n, std::chrono::seconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return handshakeFailures_.load() >= n; });
}

}  // namespace sluice::k8stest
