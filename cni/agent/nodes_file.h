// SPDX-License-Identifier: Apache-2.0
// The nodes file source: {"nodes":[{"name","internalIP","podCIDRs"[,"internalIP6"]}]} read at
// start and again whenever it changes (inotify on the directory, so an atomic rename is seen,
// with a stat poll as the fallback). internalIP6 (optional): a dual-stack node's IPv6 address
// next to its internalIP, as a Kubernetes Node lists an InternalIP of each family.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "node_source.h"

namespace sluice::agent {

// Parses the nodes file's JSON text. Wrong types, bad addresses and duplicate names are
// errors (the previous snapshot stays in force).
Result<std::vector<NodeInfo>> parseNodes(const std::string& text);

// The inverse, for the agent's own state file and the CLI.
std::string nodesToJson(const std::vector<NodeInfo>& nodes);

class NodesFileSource : public NodeSource {
 public:
  explicit NodesFileSource(std::string path,
                           std::chrono::milliseconds poll = std::chrono::milliseconds(250));
  Status run(std::stop_token stop,
             const std::function<void(const std::vector<NodeInfo>&)>& onSnapshot,
             const std::function<void(const Error&)>& onError) override;

 private:
  std::string path_;
  std::chrono::milliseconds poll_;
};

}  // namespace sluice::agent
