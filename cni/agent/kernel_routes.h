// SPDX-License-Identifier: Apache-2.0
// Kernel routes for stack-originated traffic to remote pod CIDRs: "<podCIDR> dev sluice_vxlan
// scope link mtu M src <node IP>" (vxlan mode; IPv6 pod CIDRs the same way, from this node's
// IPv6 address) or "<podCIDR> via <node IP> dev <underlay>" (native mode), all tagged with our
// routing protocol number so stale ones can be found. sluice_vxlan is NOARP: the kernel
// addresses every neighbour on it (ARP and IPv6 neighbour discovery alike) to the device's own
// MAC without asking, and to_overlay sets the tunnel key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

// rtm_protocol of every route the agent owns ("ip route ... proto 83").
inline constexpr int kRouteProtocol = 83;
inline constexpr int kMainTable = 254;  // RT_TABLE_MAIN

// VXLAN mode: what the stack forwards from this node's pods to other nodes (a pod whose egress
// a chained bandwidth plugin shapes) goes through sluice_vxlan as from_pod's own node-address
// routes send it, and not over the underlay: the replies come back through the tunnel (and
// what it answers came in that way), and strict rp_filter on either node wants both directions
// on one device. The routes ("<node IP>/32 dev sluice_vxlan") live in this table, looked up by
// one rule "from <IPv4 pod CIDR> fwmark kPodToNodeMark lookup 83" at this priority (before
// main's 32766). The agent's nft table (masquerade.h) sets the mark, but not on a pod's replies
// in flows this node DNATed (a node's client at a NodePort or hostPort, which came in on the
// underlay): those leave the way they came.
inline constexpr int kPodSourceTable = 83;
inline constexpr int kPodSourceRulePriority = 30083;
inline constexpr uint32_t kPodToNodeMark = 0x10000000;

struct KernelRoute {
  net::Cidr dst;       // network address
  int table = kMainTable;
  int ifindex = 0;
  net::IpAddr gateway; // invalid: scope link, no gateway
  net::IpAddr prefSrc; // invalid: none
  int mtu = 0;         // 0: none
  bool operator==(const KernelRoute&) const = default;
};

struct SyncCounts {
  int added = 0;
  int updated = 0;
  int removed = 0;
  int unchanged = 0;
};

// The IPv4 and IPv6 routes of protocol kRouteProtocol in the main table and kPodSourceTable.
Result<std::vector<KernelRoute>> listOwnedRoutes();

// Makes the owned routes exactly `desired` (both families, both tables): missing ones added,
// differing ones replaced in place (NLM_F_REPLACE: no window without a route), others removed.
// Routes that already match are not touched.
Result<SyncCounts> syncKernelRoutes(const std::vector<KernelRoute>& desired);

// Makes "from <podCidr> fwmark kPodToNodeMark lookup kPodSourceTable" the only rule for that
// table (IPv4), or removes every one when podCidr is nullopt. Returns whether anything changed.
Result<bool> syncPodSourceRule(const std::optional<net::Cidr>& podCidr);

}  // namespace sluice::agent
