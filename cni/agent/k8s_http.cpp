// SPDX-License-Identifier: Apache-2.0
#include "k8s_http.h"

#include <curl/curl.h>

#include <mutex>

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "dev"
#endif

namespace sluice::agent {
namespace {

constexpr size_t kMaxBody = 512u << 20;       // a NodeList page of 500 nodes is a few MiB
constexpr size_t kMaxErrorBody = 1u << 20;
constexpr long kConnectTimeoutSeconds = 15;

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void setBlob(CURL* c, CURLoption opt, const std::string& data) {
  curl_blob blob{const_cast<char*>(data.data()), data.size(), CURL_BLOB_COPY};
  curl_easy_setopt(c, opt, &blob);
}

}  // namespace

std::string urlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct KubeHttpClient::Transfer {
  CURL* curl = nullptr;
  std::stop_token stop;
  const std::function<bool(std::string_view)>* onData = nullptr;
  long status = 0;
  std::string body;
  bool aborted = false;   // onData returned false
  bool overflow = false;  // body larger than allowed

  static size_t write(char* p, size_t size, size_t n, void* ud) {
    auto* t = static_cast<Transfer*>(ud);
    const size_t len = size * n;
    if (t->status == 0) curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->onData && t->status >= 200 && t->status < 300) {
      if (!(*t->onData)(std::string_view(p, len))) {
        t->aborted = true;
        return 0;
      }
      return len;
    }
    const size_t limit = t->onData ? kMaxErrorBody : kMaxBody;
    if (t->body.size() + len > limit) {
      t->overflow = true;
      return 0;
    }
    t->body.append(p, len);
    return len;
  }

  static int progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Transfer*>(ud)->stop.stop_requested() ? 1 : 0;
  }
};

KubeHttpClient::KubeHttpClient(ClusterConfig cfg) : cfg_(std::move(cfg)) {
  globalInit();
  curl_ = curl_easy_init();
}

KubeHttpClient::~KubeHttpClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResponse KubeHttpClient::get(std::string_view pathAndQuery, std::stop_token stop,
                                 const HttpRequestLimits& limits) {
  return perform(pathAndQuery, std::move(stop), limits, nullptr);
}

HttpResponse KubeHttpClient::stream(std::string_view pathAndQuery, std::stop_token stop,
                                    const HttpRequestLimits& limits,
                                    const std::function<bool(std::string_view)>& onData) {
  return perform(pathAndQuery, std::move(stop), limits, &onData);
}

HttpResponse KubeHttpClient::perform(std::string_view pathAndQuery, std::stop_token stop,
                                     const HttpRequestLimits& limits,
                                     const std::function<bool(std::string_view)>* onData) {
  using Outcome = HttpResponse::Outcome;
  HttpResponse resp;
  const std::string target = url(pathAndQuery);
  if (stop.stop_requested()) {
    resp.outcome = Outcome::kStopped;
    return resp;
  }
  auto* c = static_cast<CURL*>(curl_);
  if (!c) {
    resp.outcome = Outcome::kConfig;
    resp.error = Error(CniCode::kInternal, "libcurl could not be initialised");
    return resp;
  }

  // The token rotates (projected service account tokens): read it for every request.
  auto token = currentBearerToken(cfg_);
  if (!token.ok()) {
    resp.outcome = Outcome::kCredentials;
    resp.error = std::move(token).error().context("GET " + target);
    return resp;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto addHeader = [&headers](const std::string& h) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  addHeader("Accept: application/json");
  if (!token->empty()) addHeader("Authorization: Bearer " + token.value());

  Transfer t;
  t.curl = c;
  t.stop = stop;
  t.onData = onData;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_reset(c);  // keeps the connection cache
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice-agent/" SLUICE_VERSION);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Transfer::progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(limits.total.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(limits.lowSpeedTime.count()));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 15L);

  // TLS: verified against the configured CA only (not the system store as well).
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, cfg_.insecureSkipTlsVerify ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, cfg_.insecureSkipTlsVerify ? 0L : 2L);
  if (!cfg_.caData.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    setBlob(c, CURLOPT_CAINFO_BLOB, cfg_.caData);
  } else if (!cfg_.caFile.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, cfg_.caFile.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
  }
  if (!cfg_.clientCertData.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    setBlob(c, CURLOPT_SSLCERT_BLOB, cfg_.clientCertData);
  } else if (!cfg_.clientCertFile.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLCERT, cfg_.clientCertFile.c_str());
  }
  if (!cfg_.clientKeyData.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    setBlob(c, CURLOPT_SSLKEY_BLOB, cfg_.clientKeyData);
  } else if (!cfg_.clientKeyFile.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY, cfg_.clientKeyFile.c_str());
  }

  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  resp.body = std::move(t.body);
  const std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  // No pointer into this frame (headers, errbuf, t) may outlive it inside the reused handle.
  curl_easy_reset(c);
  auto fail = [&](Outcome o, const std::string& msg) {
    resp.outcome = o;
    resp.error = Error(CniCode::kIoFailure, "GET " + target + ": " + msg);
    return resp;
  };
  switch (rc) {
    case CURLE_OK:
      resp.outcome = Outcome::kResponse;
      return resp;
    case CURLE_ABORTED_BY_CALLBACK:
      if (stop.stop_requested()) {
        resp.outcome = Outcome::kStopped;
        return resp;
      }
      return fail(Outcome::kTransport, detail);
    case CURLE_WRITE_ERROR:
      if (t.aborted) {
        resp.outcome = Outcome::kAborted;
        return resp;
      }
      return fail(Outcome::kTransport, t.overflow ? "response body too large" : detail);
    case CURLE_PEER_FAILED_VERIFICATION:
      return fail(Outcome::kTls, "TLS: the server certificate is not trusted by " + cfg_.caDescription() +
                                     " (" + detail + ")");
    case CURLE_SSL_CONNECT_ERROR:
      return fail(Outcome::kTls, "TLS handshake failed (" + detail + ")");
    case CURLE_SSL_CACERT_BADFILE:
      resp.outcome = Outcome::kConfig;
      resp.error = Error(CniCode::kInvalidConfig, "GET " + target + ": cannot load " + cfg_.caDescription() +
                                                      " (" + detail + ")");
      return resp;
    case CURLE_SSL_CERTPROBLEM:
      resp.outcome = Outcome::kConfig;
      resp.error = Error(CniCode::kInvalidConfig,
                         "GET " + target + ": the client certificate or key is unusable (" + detail + ")");
      return resp;
    case CURLE_OPERATION_TIMEDOUT:
      return fail(Outcome::kTransport, "timed out or stalled (" + detail + ")");
    default:
      return fail(Outcome::kTransport, detail);
  }
}

}  // namespace sluice::agent
