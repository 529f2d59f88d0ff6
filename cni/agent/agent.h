// SPDX-License-Identifier: Apache-2.0
// The DaemonSet agent (DESIGN §5): loads the datapath, sets up the node once its own entry
// is known, keeps sl_routes and the kernel routes in line with the node source, collects
// dead endpoints, serves /healthz and /metrics, and on SIGTERM/SIGINT leaves everything in
// place so traffic keeps flowing while it is down.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <vector>

#include "flags.h"
#include "http.h"
#include "conflist.h"
#include "masquerade.h"
#include "node_setup.h"
#include "node_source.h"
#include "reconcile.h"
#include "sluice/bpf/datapath.h"

namespace sluice::agent {

class Agent {
 public:
  explicit Agent(AgentOptions opts);
  ~Agent();

  // Runs until SIGTERM/SIGINT (exit code 0) or an unrecoverable error (non-zero).
  int run();

 private:
  Status start();
  void workLoop(std::stop_token stop);
  void applySnapshot(const std::vector<NodeInfo>& nodes);
  Status reconcile();
  void maintain();
  void countError(const Error& e);
  HttpResponse handleHttp(const std::string& method, const std::string& path);
  void writeState();

  AgentOptions opts_;
  std::optional<bpf::Datapath> dp_;
  std::unique_ptr<NodeSource> source_;
  std::optional<HttpServer> http_;

  // Handed from the source thread to the work loop.
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::optional<std::vector<NodeInfo>> pending_;
  bool fatal_ = false;

  // Work-loop state.
  std::vector<NodeInfo> nodes_;
  Plan plan_;
  std::optional<NodeNetwork> net_;
  Masquerade masquerade_;
  ChainVersions chainVersions_;  // whether the chained plugins let the conflist offer CNI 1.1
  bool needResync_ = false;
  bool upgraded_ = false;

  std::atomic<bool> datapathLoaded_{false};
  std::atomic<bool> conflistWritten_{false};
  std::atomic<uint64_t> reconcileErrors_{0};
  std::atomic<uint64_t> gcRemoved_{0};
  std::atomic<uint64_t> gcReleased_{0};
  std::atomic<int64_t> nodeCount_{0};
  std::atomic<int64_t> unroutable_{0};
};

}  // namespace sluice::agent
