// SPDX-License-Identifier: Apache-2.0
// Where the agent learns the cluster's nodes from: the Kubernetes API (k8s_client.h) or a
// nodes file (nodes_file.h). A source delivers full snapshots; the reconciler diffs them.
#pragma once

#include <functional>
#include <stop_token>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

struct NodeInfo {
  std::string name;
  net::IpAddr internalIP;            // underlay address (status.addresses InternalIP)
  std::vector<net::Cidr> podCIDRs;   // spec.podCIDRs (IPv4 and/or IPv6)
  // The node's IPv6 InternalIP where it has one next to internalIP (dual-stack nodes): native
  // routing's next hop for its IPv6 pod CIDR, and exempt from masquerade like internalIP.
  net::IpAddr internalIP6{};
  bool operator==(const NodeInfo&) const = default;
};

class NodeSource {
 public:
  virtual ~NodeSource() = default;
  // Runs until stop is requested, calling onSnapshot with the complete, current node set
  // each time it changes (and once after the initial list/read). Calls onError for every
  // failure it recovers from (bad event, dropped connection, unreadable file) so the agent
  // can count reconcile errors; retries with backoff itself. Returns an Error only for
  // unrecoverable configuration problems (no credentials, unreadable CA).
  virtual Status run(std::stop_token stop,
                     const std::function<void(const std::vector<NodeInfo>&)>& onSnapshot,
                     const std::function<void(const Error&)>& onError) = 0;
};

}  // namespace sluice::agent
