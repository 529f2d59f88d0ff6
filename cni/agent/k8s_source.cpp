// SPDX-License-Identifier: Apache-2.0
// List + watch of Nodes. One thread (the caller of run) does everything: list pages, open
// the watch, apply events as bytes arrive, publish snapshots, back off after failures.
#include "k8s_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <random>

#include "k8s_config.h"
#include "k8s_http.h"
#include "k8s_nodes.h"

namespace sluice::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Sleeps unless stop is requested first; false when stopped.
bool sleepFor(const std::stop_token& stop, milliseconds d) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lk(m);
  cv.wait_for(lk, stop, d, [] { return false; });
  return !stop.stop_requested();
}

// Exponential backoff with "equal jitter": a delay in [d/2, d], d doubling up to the cap.
class Backoff {
 public:
  Backoff(milliseconds initial, milliseconds max) : initial_(initial), max_(max), rng_(std::random_device{}()) {}
  milliseconds next() {
    milliseconds d = initial_;
    for (int i = 0; i < attempt_ && d < max_; ++i) d *= 2;
    d = std::min(d, max_);
    ++attempt_;
    std::uniform_int_distribution<int64_t> jitter(d.count() / 2, d.count());
    return milliseconds(jitter(rng_));
  }
  void reset() { attempt_ = 0; }

 private:
  milliseconds initial_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

class K8sNodeSource final : public NodeSource {
 public:
  K8sNodeSource(K8sSourceOptions opts, ClusterConfig cfg)
      : opts_(std::move(opts)), http_(std::move(cfg)), rng_(std::random_device{}()) {}

  Status run(std::stop_token stop, const std::function<void(const std::vector<NodeInfo>&)>& onSnapshot,
             const std::function<void(const Error&)>& onError) override;

 private:
  enum class Step { kDone, kGone, kFailed, kFatal, kStopped };

  Step listNodes(const std::stop_token& stop, Error& err);
  Step watchNodes(const std::stop_token& stop, seconds timeout, Error& err, int& events);
  Status handleEvent(std::string_view line, bool& changed, bool& gone);
  Error httpError(const HttpResponse& resp, const std::string& target) const;
  void publish();
  void report(const Error& err);
  seconds nextWatchTimeout();

  K8sSourceOptions opts_;
  KubeHttpClient http_;
  std::mt19937_64 rng_;

  // State of one run().
  const std::function<void(const std::vector<NodeInfo>&)>* onSnapshot_ = nullptr;
  const std::function<void(const Error&)>* onError_ = nullptr;
  NodeCache cache_;
  std::string resourceVersion_;
  std::vector<NodeInfo> published_;
  bool havePublished_ = false;
};

void K8sNodeSource::publish() {
  std::vector<NodeInfo> snap = cache_.snapshot();
  if (havePublished_ && snap == published_) return;
  published_ = std::move(snap);
  havePublished_ = true;
  (*onSnapshot_)(published_);
}

void K8sNodeSource::report(const Error& err) {
  spdlog::warn("k8s node source: {}", err.describe());
  (*onError_)(err);
}

seconds K8sNodeSource::nextWatchTimeout() {
  if (opts_.watchTimeout.count() > 0) return opts_.watchTimeout;
  // Spread reconnects of many agents, as client-go does: [5, 10) minutes.
  std::uniform_int_distribution<int> d(300, 599);
  return seconds(d(rng_));
}

Error K8sNodeSource::httpError(const HttpResponse& resp, const std::string& target) const {
  ApiStatus st = apiStatusFromBody(resp.status, resp.body);
  std::string msg = "GET " + target + ": HTTP " + st.describe();
  if (resp.status == 401)
    msg += " (the API server rejected the credentials from " + http_.config().origin + ")";
  else if (resp.status == 403)
    msg += " (the agent's identity is not allowed to list/watch nodes: check its RBAC)";
  return Error(CniCode::kIoFailure, msg);
}

K8sNodeSource::Step K8sNodeSource::listNodes(const std::stop_token& stop, Error& err) {
  using Outcome = HttpResponse::Outcome;
  const HttpRequestLimits limits{opts_.requestTimeout, opts_.requestTimeout};
  for (int attempt = 0;; ++attempt) {
    std::vector<NodeInfo> nodes;
    std::string cont, rv;
    bool expired = false;
    do {
      std::string path = "/api/v1/nodes?limit=" + std::to_string(opts_.listPageSize);
      if (!cont.empty()) path += "&continue=" + urlEncode(cont);
      HttpResponse resp = http_.get(path, stop, limits);
      switch (resp.outcome) {
        case Outcome::kStopped: return Step::kStopped;
        case Outcome::kConfig: err = std::move(resp.error); return Step::kFatal;
        case Outcome::kResponse: break;
        default: err = std::move(resp.error); return Step::kFailed;
      }
      if (resp.status == 410 && !cont.empty()) {
        expired = true;  // the continue token outlived its snapshot: start over
        break;
      }
      if (!resp.ok()) {
        err = httpError(resp, http_.url(path));
        return Step::kFailed;
      }
      nlohmann::json list = nlohmann::json::parse(resp.body, nullptr, false);
      if (list.is_discarded() || !list.is_object() || !list.contains("items")) {
        err = Error(CniCode::kDecodeFailure, "GET " + http_.url(path) + ": the response is not a NodeList");
        return Step::kFailed;
      }
      const nlohmann::json& items = list["items"];
      if (items.is_array()) {
        for (const nlohmann::json& item : items) {
          auto info = nodeInfoFromJson(item);
          if (info.ok()) nodes.push_back(std::move(info).value());
          else report(Error(info.error()).context("node list"));
        }
      } else if (!items.is_null()) {
        err = Error(CniCode::kDecodeFailure, "GET " + http_.url(path) + ": NodeList items is not a list");
        return Step::kFailed;
      }
      rv = resourceVersionOf(list);
      const nlohmann::json& meta = list.contains("metadata") ? list["metadata"] : nlohmann::json();
      cont = meta.is_object() && meta.contains("continue") && meta["continue"].is_string()
                 ? meta["continue"].get<std::string>()
                 : std::string();
    } while (!cont.empty());
    if (expired) {
      if (attempt >= 3) {
        err = Error(CniCode::kIoFailure, "node list: continue token expired repeatedly");
        return Step::kFailed;
      }
      spdlog::info("k8s node source: list continue token expired, listing again");
      continue;
    }
    if (rv.empty()) {
      err = Error(CniCode::kDecodeFailure, "node list without metadata.resourceVersion");
      return Step::kFailed;
    }
    cache_.replace(std::move(nodes));
    resourceVersion_ = rv;
    return Step::kDone;
  }
}

Status K8sNodeSource::handleEvent(std::string_view line, bool& changed, bool& gone) {
  if (gone) return okStatus();  // the server ends the stream after this anyway
  SL_ASSIGN_OR_RETURN(WatchEvent ev, parseWatchEvent(line));
  using Type = WatchEvent::Type;
  if (ev.type == Type::kError) {
    auto st = parseApiStatus(ev.object);
    if (st && st->gone()) {
      gone = true;
      spdlog::info("k8s node source: watch from resourceVersion {} expired ({})", resourceVersion_, st->describe());
      return okStatus();
    }
    return Error(CniCode::kIoFailure,
                 "watch ERROR event: " + (st ? st->describe() : std::string("(not a Status object)")));
  }
  switch (ev.type) {
    case Type::kAdded:
    case Type::kModified: {
      auto info = nodeInfoFromJson(ev.object);
      if (info.ok()) {
        cache_.upsert(std::move(info).value());
      } else {
        // Never route with half-understood data: forget the node until it parses again.
        report(Error(info.error()).context("watch event"));
        const auto& meta = ev.object.value("metadata", nlohmann::json::object());
        if (meta.is_object() && meta.contains("name") && meta["name"].is_string())
          cache_.erase(meta["name"].get<std::string>());
      }
      changed = true;
      break;
    }
    case Type::kDeleted: {
      // By name: the node is gone even if its last state does not parse.
      const auto& meta = ev.object.value("metadata", nlohmann::json::object());
      if (meta.is_object() && meta.contains("name") && meta["name"].is_string())
        cache_.erase(meta["name"].get<std::string>());
      changed = true;
      break;
    }
    default:
      break;
  }
  std::string rv = resourceVersionOf(ev.object);
  if (!rv.empty()) resourceVersion_ = std::move(rv);
  return okStatus();
}

K8sNodeSource::Step K8sNodeSource::watchNodes(const std::stop_token& stop, seconds timeout, Error& err,
                                              int& events) {
  using Outcome = HttpResponse::Outcome;
  const std::string path = "/api/v1/nodes?watch=1&resourceVersion=" + urlEncode(resourceVersion_) +
                           "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout.count());
  LineSplitter lines;
  bool gone = false;
  Status streamStatus;
  const std::function<bool(std::string_view)> onData = [&](std::string_view data) {
    bool changed = false;
    streamStatus = lines.feed(data, [&](std::string_view line) -> Status {
      Status st = handleEvent(line, changed, gone);
      // Only events that move the resourceVersion are progress; an ERROR event is not, or a
      // watch that keeps expiring would never back off.
      if (st.ok() && !gone) ++events;
      return st;
    });
    if (changed) publish();
    return streamStatus.ok() && !gone;
  };
  // A server that neither sends nor closes for twice its own timeout is stuck.
  const HttpRequestLimits limits{3 * timeout + seconds(60), 2 * timeout};
  HttpResponse resp = http_.stream(path, stop, limits, onData);
  switch (resp.outcome) {
    case Outcome::kStopped:
      return Step::kStopped;
    case Outcome::kConfig:
      err = std::move(resp.error);
      return Step::kFatal;
    case Outcome::kAborted:
      if (gone) return Step::kGone;
      err = Error(streamStatus.error()).context("watch " + http_.url(path));
      return Step::kFailed;
    case Outcome::kResponse:
      if (resp.status == 410) return Step::kGone;
      if (!resp.ok()) {
        err = httpError(resp, http_.url(path));
        return Step::kFailed;
      }
      if (lines.hasPartialLine()) {
        err = Error(CniCode::kIoFailure, "watch " + http_.url(path) + ": stream ended in the middle of an event");
        return Step::kFailed;
      }
      return Step::kDone;
    default:
      err = std::move(resp.error);
      return Step::kFailed;
  }
}

Status K8sNodeSource::run(std::stop_token stop, const std::function<void(const std::vector<NodeInfo>&)>& onSnapshot,
                          const std::function<void(const Error&)>& onError) {
  onSnapshot_ = &onSnapshot;
  onError_ = &onError;
  cache_ = NodeCache();
  resourceVersion_.clear();
  published_.clear();
  havePublished_ = false;

  spdlog::info("k8s node source: node {} watching nodes at {} ({})", opts_.nodeName, http_.config().server,
               http_.config().origin);
  Backoff backoff(opts_.backoffInitial, opts_.backoffMax);
  bool needList = true;
  int unproductiveGones = 0;
  Clock::time_point listedAt;
  while (!stop.stop_requested()) {
    Error err;
    if (needList) {
      Step s = listNodes(stop, err);
      if (s == Step::kStopped) break;
      if (s == Step::kFatal) return err;
      if (s != Step::kDone) {
        report(err);
        if (!sleepFor(stop, backoff.next())) break;
        continue;
      }
      spdlog::info("k8s node source: listed {} nodes at resourceVersion {}", cache_.size(), resourceVersion_);
      publish();
      backoff.reset();
      needList = false;
      listedAt = Clock::now();
    }

    seconds timeout = nextWatchTimeout();
    if (opts_.resyncPeriod.count() > 0) {
      auto left = std::chrono::ceil<seconds>(opts_.resyncPeriod - (Clock::now() - listedAt));
      if (left.count() <= 0) {
        spdlog::debug("k8s node source: resync period elapsed, listing again");
        needList = true;
        continue;
      }
      timeout = std::min(timeout, left);
    }

    const Clock::time_point started = Clock::now();
    int events = 0;
    Step s = watchNodes(stop, timeout, err, events);
    if (events > 0) {
      backoff.reset();
      unproductiveGones = 0;
    }
    switch (s) {
      case Step::kStopped:
        return okStatus();
      case Step::kFatal:
        return err;
      case Step::kGone:
        needList = true;
        // Relist at once the first time; a watch that keeps expiring without progress backs off.
        if (unproductiveGones++ > 0 && !sleepFor(stop, backoff.next())) return okStatus();
        break;
      case Step::kDone:
        // A server that ends watches at once without a word must not make us spin.
        if (events == 0 && Clock::now() - started < seconds(1) && !sleepFor(stop, backoff.next()))
          return okStatus();
        break;
      case Step::kFailed:
        report(err);
        if (!sleepFor(stop, backoff.next())) return okStatus();
        break;
      default:
        break;
    }
  }
  return okStatus();
}

}  // namespace

Result<std::unique_ptr<NodeSource>> makeK8sNodeSourceFromConfig(const K8sSourceOptions& opts, ClusterConfig cfg) {
  if (opts.listPageSize <= 0) return Error(CniCode::kInvalidConfig, "k8s node source: listPageSize must be > 0");
  if (opts.backoffInitial.count() <= 0 || opts.backoffMax < opts.backoffInitial)
    return Error(CniCode::kInvalidConfig, "k8s node source: need 0 < backoffInitial <= backoffMax");
  if (opts.requestTimeout.count() <= 0) return Error(CniCode::kInvalidConfig, "k8s node source: requestTimeout must be > 0");
  if (opts.watchTimeout.count() < 0 || opts.resyncPeriod.count() < 0)
    return Error(CniCode::kInvalidConfig, "k8s node source: negative watchTimeout or resyncPeriod");
  if (cfg.insecureSkipTlsVerify)
    spdlog::warn("k8s node source: TLS verification of {} is disabled by {}", cfg.server, cfg.origin);
  return std::unique_ptr<NodeSource>(std::make_unique<K8sNodeSource>(opts, std::move(cfg)));
}

Result<std::unique_ptr<NodeSource>> makeK8sNodeSource(const K8sSourceOptions& opts) {
  auto cfg = opts.kubeconfigPath.empty() ? loadInClusterConfig(opts.serviceAccountDir)
                                         : loadKubeconfig(opts.kubeconfigPath);
  if (!cfg.ok()) return std::move(cfg).error().context("kubernetes node source");
  return makeK8sNodeSourceFromConfig(opts, std::move(cfg).value());
}

}  // namespace sluice::agent
