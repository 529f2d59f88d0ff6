// SPDX-License-Identifier: Apache-2.0
#include "k8s_test_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace sluice::k8stest {

std::string testdata(const std::string& name) {
  std::ifstream in(std::string(SLUICE_K8S_TESTDATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing testdata " << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> testdataLines(const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream in(testdata(name));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l + "\n");
  return lines;
}

NodeInfo makeNode(const std::string& name, const std::string& ip, const std::vector<std::string>& cidrs) {
  NodeInfo n;
  n.name = name;
  n.internalIP = *net::IpAddr::parse(ip);
  for (const auto& c : cidrs) n.podCIDRs.push_back(*net::Cidr::parse(c));
  return n;
}

std::string describe(const std::vector<NodeInfo>& nodes) {
  std::string s = "[";
  for (const auto& n : nodes) {
    s += " " + n.name + "=" + (n.internalIP.valid() ? n.internalIP.str() : "?") + "{";
    for (const auto& c : n.podCIDRs) s += c.str() + ",";
    s += "}";
  }
  return s + " ]";
}

std::vector<NodeInfo> kindInitialNodes() {
  return {makeNode("kind-control-plane", "172.18.0.3", {"10.244.0.0/24"}),
          makeNode("kind-worker", "172.18.0.2", {"10.244.1.0/24"}),
          makeNode("kind-worker2", "172.18.0.4", {"10.244.2.0/24"})};
}

std::vector<NodeInfo> kindAfterWatchNodes() {
  return {makeNode("kind-control-plane", "172.18.0.3", {"10.244.0.0/24"}),
          makeNode("kind-worker", "172.18.0.2", {"10.244.1.0/24"}),
          makeNode("kind-worker3", "172.18.0.5", {"10.244.3.0/24"})};
}

std::vector<NodeInfo> kindAfterExpiryNodes() { return kindAfterWatchNodes(); }

TempDir::TempDir() {
  std::string tmpl = "/tmp/slt" + std::to_string(getpid()) + "-k8s-XXXXXX";
  char* p = mkdtemp(tmpl.data());
  EXPECT_NE(p, nullptr) << "mkdtemp";
  if (p) path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& content) const {
  const std::string tmp = file("." + name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "write " << tmp;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), file(name).c_str()), 0) << "rename " << tmp;
}

void ApiScript::expectToken(const std::string& token) {
  std::lock_guard lk(mu_);
  token_ = token;
}

void ApiScript::expectClientCert(const std::string& cn) {
  std::lock_guard lk(mu_);
  clientCN_ = cn;
}

void ApiScript::expectLimit(int limit) {
  std::lock_guard lk(mu_);
  limit_ = limit;
}

void ApiScript::addList(Responder r, const std::string& expectContinue) {
  std::lock_guard lk(mu_);
  listSteps_.push_back({expectContinue, std::move(r)});
}

void ApiScript::addWatch(const std::string& expectRv, Responder r, const std::string& expectTimeout) {
  std::lock_guard lk(mu_);
  watchSteps_.push_back({expectRv, expectTimeout, std::move(r)});
}

FakeApiServer::Handler ApiScript::handler() {
  return [this](const HttpRequest& req, ResponseWriter& w) { handle(req, w); };
}

std::vector<std::string> ApiScript::violations() const {
  std::lock_guard lk(mu_);
  return violations_;
}
int ApiScript::lists() const {
  std::lock_guard lk(mu_);
  return lists_;
}
int ApiScript::watches() const {
  std::lock_guard lk(mu_);
  return watches_;
}
int ApiScript::unauthorized() const {
  std::lock_guard lk(mu_);
  return unauthorized_;
}

void ApiScript::violation(ResponseWriter& w, const std::string& what) {
  {
    std::lock_guard lk(mu_);
    violations_.push_back(what);
  }
  w.respond(400, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" + what +
                     R"(","reason":"BadRequest","code":400})");
}

void ApiScript::handle(const HttpRequest& req, ResponseWriter& w) {
  std::unique_lock lk(mu_);
  // Authentication first, as the API server does.
  const std::string auth = req.header("Authorization");
  bool authenticated;
  if (!clientCN_.empty()) {
    authenticated = req.clientCertCN == clientCN_ && auth.empty();
  } else {
    authenticated = !token_.empty() && auth == "Bearer " + token_;
  }
  if (!authenticated) {
    ++unauthorized_;
    lk.unlock();
    w.respond(401, testdata("status-401.json"));
    return;
  }
  lk.unlock();
  if (req.method != "GET") return violation(w, "method " + req.method);
  if (req.path != "/api/v1/nodes") return violation(w, "path " + req.path);
  if (req.header("Accept").find("application/json") == std::string::npos)
    return violation(w, "Accept: " + req.header("Accept"));

  const std::string watch = req.param("watch");
  if (watch.empty()) {
    lk.lock();
    ++lists_;
    if (req.param("limit") != std::to_string(limit_)) {
      lk.unlock();
      return violation(w, "list limit=" + req.param("limit"));
    }
    if (listSteps_.empty()) {
      lk.unlock();
      return violation(w, "unexpected list #" + std::to_string(lists_));
    }
    ListStep step = std::move(listSteps_.front());
    listSteps_.pop_front();
    lk.unlock();
    if (req.param("continue") != step.expectContinue || req.has("continue") != !step.expectContinue.empty())
      return violation(w, "list continue='" + req.param("continue") + "'");
    if (req.has("resourceVersion") || req.has("watch"))
      return violation(w, "list with resourceVersion/watch");
    step.respond(req, w);
    return;
  }

  lk.lock();
  ++watches_;
  const int n = watches_;
  std::optional<WatchStep> step;
  if (!watchSteps_.empty()) {
    step = std::move(watchSteps_.front());
    watchSteps_.pop_front();
  }
  lk.unlock();
  if (watch != "1" && watch != "true") return violation(w, "watch=" + watch);
  if (req.param("allowWatchBookmarks") != "true") return violation(w, "allowWatchBookmarks=" + req.param("allowWatchBookmarks"));
  const std::string timeout = req.param("timeoutSeconds");
  if (timeout.empty() || timeout.find_first_not_of("0123456789") != std::string::npos || std::stol(timeout) <= 0)
    return violation(w, "timeoutSeconds=" + timeout);
  if (!step) {  // past the script: an idle watch
    stallWatch()(req, w);
    return;
  }
  if (req.param("resourceVersion") != step->expectRv)
    return violation(w, "watch #" + std::to_string(n) + " resourceVersion=" + req.param("resourceVersion") +
                            ", expected " + step->expectRv);
  if (!step->expectTimeout.empty() && timeout != step->expectTimeout)
    return violation(w, "watch #" + std::to_string(n) + " timeoutSeconds=" + timeout);
  step->respond(req, w);
}

ApiScript::Responder replyFile(const std::string& name, int status) {
  return [name, status](const HttpRequest&, ResponseWriter& w) { w.respond(status, testdata(name)); };
}

ApiScript::Responder streamLines(const std::string& name, StreamEnd end, size_t count) {
  return [name, end, count](const HttpRequest&, ResponseWriter& w) {
    std::vector<std::string> lines = testdataLines(name);
    w.startStream(200);
    size_t i = 0;
    for (; i < lines.size() && i < count; ++i)
      if (!w.sendChunk(lines[i])) return;
    switch (end) {
      case StreamEnd::kClose:
        w.endStream();
        break;
      case StreamEnd::kStall:
        w.stall();
        break;
      case StreamEnd::kDrop:
        if (i < lines.size()) w.sendChunk(lines[i].substr(0, lines[i].size() / 2));
        w.drop();
        break;
    }
  };
}

ApiScript::Responder stallWatch() {
  return [](const HttpRequest&, ResponseWriter& w) {
    w.startStream(200);
    w.stall();
  };
}

std::function<void(const std::vector<NodeInfo>&)> Collector::snapshotFn() {
  return [this](const std::vector<NodeInfo>& nodes) {
    std::lock_guard lk(mu_);
    snapshots_.push_back(nodes);
    cv_.notify_all();
  };
}

std::function<void(const Error&)> Collector::errorFn() {
  return [this](const Error& e) {
    std::lock_guard lk(mu_);
    errors_.push_back(e.describe());
    cv_.notify_all();
  };
}

bool Collector::waitForSnapshot(const std::vector<NodeInfo>& expected, std::chrono::seconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return !snapshots_.empty() && snapshots_.back() == expected; });
}

bool Collector::waitForError(const std::string& needle, std::chrono::seconds timeout) {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    for (const auto& e : errors_)
      if (e.find(needle) != std::string::npos) return true;
    return false;
  });
}

std::vector<std::vector<NodeInfo>> Collector::snapshots() const {
  std::lock_guard lk(mu_);
  return snapshots_;
}

std::vector<std::string> Collector::errors() const {
  std::lock_guard lk(mu_);
  return errors_;
}

SourceRunner::SourceRunner(std::unique_ptr<agent::NodeSource> source, Collector& collector)
    : source_(std::move(source)), result_(done_.get_future().share()) {
  thread_ = std::thread([this, &collector, token = stop_.get_token()] {
    done_.set_value(source_->run(token, collector.snapshotFn(), collector.errorFn()));
  });
}

SourceRunner::~SourceRunner() { (void)stop(); }

bool SourceRunner::waitForExit(std::chrono::seconds timeout) {
  return result_.wait_for(timeout) == std::future_status::ready;
}

Status SourceRunner::stop() {
  if (!thread_.joinable()) return result_.get();
  stop_.request_stop();
  if (result_.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "NodeSource::run did not return after stop was requested";
    std::fflush(nullptr);
    std::_Exit(1);  // a hang must fail, and the thread cannot be abandoned safely
  }
  thread_.join();
  return result_.get();
}

std::string kubeconfigYaml(const KubeconfigSpec& s) {
  std::string y;
  y += "apiVersion: v1\n";
  y += "clusters:\n";
  y += "- cluster:\n";
  if (!s.caPem.empty()) y += "    certificate-authority-data: " + base64Encode(s.caPem) + "\n";
  if (!s.caFile.empty()) y += "    certificate-authority: " + s.caFile + "\n";
  y += "    server: " + s.server + "\n";
  y += "  name: kind-kind\n";
  y += "contexts:\n";
  y += "- context:\n";
  y += "    cluster: kind-kind\n";
  y += "    user: kind-kind\n";
  y += "  name: kind-kind\n";
  y += "current-context: kind-kind\n";
  y += "kind: Config\n";
  y += "preferences: {}\n";
  y += "users:\n";
  y += "- name: kind-kind\n";
  y += "  user:\n";
  if (!s.token.empty()) y += "    token: " + s.token + "\n";
  if (!s.tokenFile.empty()) y += "    tokenFile: " + s.tokenFile + "\n";
  if (!s.clientCertPem.empty()) y += "    client-certificate-data: " + base64Encode(s.clientCertPem) + "\n";
  if (!s.clientKeyPem.empty()) y += "    client-key-data: " + base64Encode(s.clientKeyPem) + "\n";
  if (!s.clientCertFile.empty()) y += "    client-certificate: " + s.clientCertFile + "\n";
  if (!s.clientKeyFile.empty()) y += "    client-key: " + s.clientKeyFile + "\n";
  return y;
}

}  // namespace sluice::k8stest
