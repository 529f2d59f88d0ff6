// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the node source tests: testdata, temp dirs, a scripted API server
// handler that checks every request the way the API server would, and a runner that
// collects snapshots and errors and waits on conditions (never on the clock).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "fake_apiserver.h"
#include "node_source.h"

namespace sluice::k8stest {

using agent::NodeInfo;
using namespace std::chrono_literals;

// Generous bounds that only turn a hang into a failure.
inline constexpr std::chrono::seconds kWait{30};

std::string testdata(const std::string& name);
std::vector<std::string> testdataLines(const std::string& name);

NodeInfo makeNode(const std::string& name, const std::string& ip, const std::vector<std::string>& cidrs);
std::string describe(const std::vector<NodeInfo>& nodes);

// The kind cluster of testdata/nodelist.json and the states the scenarios converge to.
std::vector<NodeInfo> kindInitialNodes();
std::vector<NodeInfo> kindAfterWatchNodes();   // after watch-events.jsonl
std::vector<NodeInfo> kindAfterExpiryNodes();  // nodelist-after-expiry.json

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes atomically (temp + rename), as kubelet rotates projected tokens.
  void write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// Routes and validates API requests; unexpected requests become violations (checked by
// the test) and get an error answer, so a client sending the wrong thing cannot converge.
class ApiScript {
 public:
  using Responder = std::function<void(const HttpRequest&, ResponseWriter&)>;

  void expectToken(const std::string& token);        // "Authorization: Bearer <token>"
  void expectClientCert(const std::string& cn);      // and no Authorization header
  void expectLimit(int limit);
  void addList(Responder r, const std::string& expectContinue = "");
  // An empty expectTimeout accepts any positive timeoutSeconds.
  void addWatch(const std::string& expectRv, Responder r, const std::string& expectTimeout = "");

  FakeApiServer::Handler handler();
  std::vector<std::string> violations() const;
  int lists() const;
  int watches() const;
  int unauthorized() const;

 private:
  void handle(const HttpRequest& req, ResponseWriter& w);
  void violation(ResponseWriter& w, const std::string& what);

  struct ListStep {
    std::string expectContinue;
    Responder respond;
  };
  struct WatchStep {
    std::string expectRv;
    std::string expectTimeout;
    Responder respond;
  };
  mutable std::mutex mu_;
  std::string token_;
  std::string clientCN_;
  int limit_ = 500;
  std::deque<ListStep> listSteps_;
  std::deque<WatchStep> watchSteps_;
  std::vector<std::string> violations_;
  int lists_ = 0, watches_ = 0, unauthorized_ = 0;
};

// Responders.
ApiScript::Responder replyFile(const std::string& name, int status = 200);
enum class StreamEnd { kClose, kStall, kDrop };
// Streams testdata lines [0, count) one chunk each; kDrop first sends half of the next line.
ApiScript::Responder streamLines(const std::string& name, StreamEnd end, size_t count = SIZE_MAX);
ApiScript::Responder stallWatch();

class Collector {
 public:
  std::function<void(const std::vector<NodeInfo>&)> snapshotFn();
  std::function<void(const Error&)> errorFn();
  bool waitForSnapshot(const std::vector<NodeInfo>& expected, std::chrono::seconds timeout = kWait);
  bool waitForError(const std::string& needle, std::chrono::seconds timeout = kWait);
  std::vector<std::vector<NodeInfo>> snapshots() const;
  std::vector<std::string> errors() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<NodeInfo>> snapshots_;
  std::vector<std::string> errors_;
};

// Runs NodeSource::run on its own thread.
class SourceRunner {
 public:
  SourceRunner(std::unique_ptr<agent::NodeSource> source, Collector& collector);
  ~SourceRunner();
  // Requests stop and returns run()'s result; a run() that does not return fails the test.
  Status stop();
  // run() ended on its own (e.g. a fatal configuration error).
  bool waitForExit(std::chrono::seconds timeout = kWait);

 private:
  std::unique_ptr<agent::NodeSource> source_;
  std::stop_source stop_;
  std::promise<Status> done_;
  std::shared_future<Status> result_;
  std::thread thread_;
};

// A kubeconfig (YAML, kubectl's layout) for server with the given PEM CA and credentials.
struct KubeconfigSpec {
  std::string server;
  std::string caPem;           // certificate-authority-data
  std::string caFile;          // certificate-authority (instead of caPem)
  std::string token;
  std::string tokenFile;
  std::string clientCertPem;   // client-certificate-data
  std::string clientKeyPem;    // client-key-data
  std::string clientCertFile;  // client-certificate
  std::string clientKeyFile;   // client-key
};
std::string kubeconfigYaml(const KubeconfigSpec& spec);

}  // namespace sluice::k8stest
