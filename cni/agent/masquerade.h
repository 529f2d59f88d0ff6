// SPDX-License-Identifier: Apache-2.0
// Masquerade for pod traffic leaving the cluster: one nftables table of our own
// ("ip sluice"), replaced atomically in one nft transaction, so an agent restart or a
// re-apply never leaves two rules (nor a moment with none).
//
// Masqueraded: a pod source (cluster CIDR) towards anything that is neither the cluster CIDR
// nor a node of the cluster. Pod <-> pod and pod <-> node traffic keeps the pod's address
// (the Kubernetes network model); remote pods and remote nodes are reached through the
// overlay anyway (sl_routes), and the exception here covers whatever the stack forwards.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

inline constexpr const char* kNftTable = "sluice";  // table ip sluice

// The nft script that (re)creates table ip sluice. `nodeIps` (IPv4 only are used) are the
// addresses of every node of the cluster, this one included.
std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev,
                              const std::vector<net::IpAddr>& nodeIps);

// Applies it with `nft -f -`. kPluginNotAvailable when nft is not installed.
Status applyMasquerade(const net::Cidr& clusterCidr, const std::string& overlayDev,
                       const std::vector<net::IpAddr>& nodeIps);

// Deletes table ip sluice; already gone is success (uninstall).
Status removeMasquerade();

// Keeps the ruleset applied: re-applies when what is wanted changed, and, checking read-only
// every `refresh`, when the table was flushed or altered (iptables-restore, an operator), so it
// heals without a restart. An unchanged, intact table is never rewritten.
class Masquerade {
 public:
  explicit Masquerade(std::chrono::seconds refresh = std::chrono::seconds(10))
      : refresh_(refresh) {}
  Status ensure(const net::Cidr& clusterCidr, const std::string& overlayDev,
                std::vector<net::IpAddr> nodeIps);

 private:
  std::chrono::seconds refresh_;
  std::string applied_;  // the ruleset last applied successfully
  std::chrono::steady_clock::time_point checkedAt_{};  // last applied or found intact
  bool warnedMissingNft_ = false;
};

}  // namespace sluice::agent
