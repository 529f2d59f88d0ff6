// SPDX-License-Identifier: Apache-2.0
// From a node snapshot to the datapath: sl_routes (LPM, remote pod CIDR -> node IP) and the
// kernel routes for stack-originated traffic. Diff-based: entries that already match are
// never rewritten, so a restart or a resync causes no blip.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernel_routes.h"
#include "node_source.h"
#include "sluice/bpf/maps.h"

namespace sluice::agent {

struct RemoteRoute {
  net::Cidr podCidr;   // network address
  net::IpAddr nodeIp;  // underlay address of the owner
  std::string node;
  // Native routing, an IPv6 pod CIDR: the owner's IPv6 address on the underlay, the next hop
  // (sl_routes node_ip6 and the kernel route's gateway). Invalid otherwise.
  net::IpAddr nodeIp6{};
  // The remote node's own address as a /32 (podCidr == nodeIp/32): pods reach other nodes
  // through the overlay with their own source address, so the remote node's reverse path
  // (strict rp_filter) agrees. No main-table route: the node itself is on the underlay (vxlan
  // mode: a kPodSourceTable route for what the stack forwards from local pods).
  bool nodeAddress = false;
};

struct Plan {
  std::optional<NodeInfo> self;     // this node's entry, if the snapshot has it
  std::vector<RemoteRoute> remote;  // every OTHER node's pod CIDRs and own address
  std::vector<net::IpAddr> nodeIps; // every node's InternalIP, this one's included
  std::vector<std::string> problems; // skipped entries (no address, clashing CIDRs)
  int unroutable = 0;                // remote pod CIDRs left without a route (native IPv6, no address)
};

// Computes what the snapshot asks for. Nodes without a usable InternalIP are skipped (a
// problem); a CIDR claimed by two nodes goes to the first by name (a problem); a remote CIDR
// overlapping this node's own pod CIDR is skipped (a problem). Each other node with an IPv4
// InternalIP also gets a /32 route to itself (nodeAddress), unless that address lies inside
// a pod CIDR. Native routing carries a remote IPv6 pod CIDR only between nodes that both have
// an IPv6 InternalIP: else it is a problem, counted in `unroutable`, and gets no route at all.
Plan planFor(const std::vector<NodeInfo>& nodes, const std::string& self, bool native = false);

// The sl_routes key/value for a route (nodeIp6: native routing's IPv6 next hop, if any).
sl_route_key routeKey(const net::Cidr& cidr);
sl_route routeValue(const net::IpAddr& nodeIp, const net::IpAddr& nodeIp6 = {});
// Whether an sl_routes entry is a node-address route (key == its node's address /32), not a
// pod CIDR.
bool isNodeAddressRoute(const sl_route_key& key, const sl_route& value);
net::Cidr cidrOfKey(const sl_route_key& key);

// Makes sl_routes hold exactly the remote routes of the plan.
Result<SyncCounts> syncRoutesMap(const bpf::RouteMap& routes, const std::vector<RemoteRoute>& remote);

struct KernelRouteOptions {
  bool native = false;
  int overlayIfindex = 0;   // vxlan mode
  int underlayIfindex = 0;  // native mode
  int mtu = 0;
  net::IpAddr nodeIp;       // preferred source
  // This node's IPv6 address (vxlan mode, dual stack): the preferred source of the IPv6 routes,
  // which exist only with it. (Native mode: the routes' gateways are the other nodes' IPv6
  // addresses, and the source the underlay's own.)
  net::IpAddr nodeIp6{};
};

std::vector<KernelRoute> kernelRoutesFor(const std::vector<RemoteRoute>& remote,
                                         const KernelRouteOptions& opts);

}  // namespace sluice::agent
