// SPDX-License-Identifier: Apache-2.0
// Masquerade for pod traffic leaving the cluster: one nftables table of our own per address
// family of the cluster CIDRs ("ip sluice", "ip6 sluice"), replaced atomically in one nft
// transaction, so an agent restart or a re-apply never leaves two rules (nor a moment with
// none).
//
// Masqueraded: a pod source (cluster CIDR) towards anything that is neither the cluster CIDR
// nor a node of the cluster. Pod <-> pod and pod <-> node traffic keeps the pod's address
// (the Kubernetes network model); remote pods and remote nodes are reached through the
// overlay anyway (sl_routes), and the exception here covers whatever the stack forwards.
// In vxlan mode the IPv4 table also marks pod traffic towards nodes (kPodToNodeMark, for the
// pod-source rule of kernel_routes.h), but for replies in flows this node DNATed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

inline constexpr const char* kNftTable = "sluice";  // table ip sluice, table ip6 sluice

// The nft script that (re)creates the table of the CIDR's family (ip or ip6 sluice). `nodeIps`
// (those of the same family are used) are the addresses of every node of the cluster, this one
// included.
std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev,
                              const std::vector<net::IpAddr>& nodeIps);

// The rulesets of every cluster CIDR (at most one per family) in one script. (The table of a
// family that no longer has a cluster CIDR stays until uninstall: a rule for addresses no pod
// has any more.)
std::string masqueradeScript(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                             const std::vector<net::IpAddr>& nodeIps);

// Applies masqueradeScript with `nft -f -`. kPluginNotAvailable when nft is not installed.
Status applyMasquerade(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                       const std::vector<net::IpAddr>& nodeIps);

// Deletes tables ip sluice and ip6 sluice; already gone is success (uninstall).
Status removeMasquerade();

// The generation of the network namespace's nftables ruleset (NFT_MSG_GETGEN over nfnetlink):
// every committed change of any table, ours or not, makes a new one.
Result<uint32_t> nftRulesetGeneration();

// Keeps the ruleset applied: re-applies when what is wanted changed, and, checking read-only
// every `refresh`, when the table was flushed or altered (iptables-restore, an operator), so it
// heals without a restart. An unchanged, intact table is never rewritten, and while the
// ruleset's generation stays the one at which the table was last found intact, the check asks
// the kernel that number instead of running `nft` (a quiet node spawns nothing).
class Masquerade {
 public:
  explicit Masquerade(std::chrono::seconds refresh = std::chrono::seconds(10))
      : refresh_(refresh) {}
  Status ensure(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                std::vector<net::IpAddr> nodeIps);

 private:
  std::chrono::seconds refresh_;
  std::string applied_;  // the ruleset last applied successfully
  std::chrono::steady_clock::time_point checkedAt_{};  // last applied or found intact
  std::optional<uint32_t> intactAt_;  // the ruleset generation at which it was last found intact
  bool warnedMissingNft_ = false;
};

}  // namespace sluice::agent
