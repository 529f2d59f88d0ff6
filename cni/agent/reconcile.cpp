// SPDX-License-Identifier: Apache-2.0
#include "reconcile.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

namespace sluice::agent {

Plan planFor(const std::vector<NodeInfo>& nodes, const std::string& self, bool native) {
  Plan plan;
  std::vector<const NodeInfo*> sorted;
  for (const auto& n : nodes) sorted.push_back(&n);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* n : sorted)
    if (n->name == self) plan.self = *n;

  std::map<net::Cidr, std::string> owner;
  const bool selfIp6 = plan.self && plan.self->internalIP6.isV6();
  if (plan.self)
    for (const auto& c : plan.self->podCIDRs) owner[c.network()] = self;
  for (const auto* n : sorted) {
    if (n->name == self) continue;
    if (!n->internalIP.valid()) {
      plan.problems.push_back("node " + n->name + " has no InternalIP: no routes to it");
      continue;
    }
    for (const auto& raw : n->podCIDRs) {
      net::Cidr c = raw.network();
      if (auto it = owner.find(c); it != owner.end()) {
        plan.problems.push_back("pod CIDR " + c.str() + " of node " + n->name + " is already node " +
                                it->second + "'s");
        continue;
      }
      bool overlapsSelf = false;
      if (plan.self)
        for (const auto& own : plan.self->podCIDRs) overlapsSelf |= own.network().overlaps(c);
      if (overlapsSelf) {
        plan.problems.push_back("pod CIDR " + c.str() + " of node " + n->name +
                                " overlaps this node's own");
        continue;
      }
      owner[c] = n->name;
      RemoteRoute r{c, n->internalIP, n->name};
      if (native && c.addr().isV6()) {
        // Routed over the underlay's IPv6: both ends need an IPv6 address there. Without one
        // a route would lead nowhere (or the replies would), so there is none.
        const std::string missing = !n->internalIP6.isV6() ? n->name : !selfIp6 ? self : "";
        if (!missing.empty()) {
          plan.problems.push_back("IPv6 pod CIDR " + c.str() + " of node " + n->name +
                                  " is not routable in native mode: node " + missing +
                                  " has no IPv6 InternalIP");
          ++plan.unroutable;
          continue;
        }
        r.nodeIp6 = n->internalIP6;
      }
      plan.remote.push_back(r);
    }
  }
  // Node addresses: every node's (both families), for the masquerade exception; the other
  // nodes' IPv4 ones as /32 routes through the overlay.
  std::set<net::IpAddr> seen;
  for (const auto* n : sorted) {
    if (!n->internalIP.valid()) continue;
    plan.nodeIps.push_back(n->internalIP);
    if (n->internalIP6.valid()) plan.nodeIps.push_back(n->internalIP6);
    if (n->name == self || !n->internalIP.isV4() || !seen.insert(n->internalIP).second) continue;
    if (plan.self && n->internalIP == plan.self->internalIP) continue;
    bool inPodCidr = false;
    for (const auto& [c, who] : owner) inPodCidr |= c.contains(n->internalIP);
    if (inPodCidr) {
      plan.problems.push_back("node " + n->name + "'s address " + n->internalIP.str() +
                              " lies inside a pod CIDR: no overlay route to it");
      continue;
    }
    RemoteRoute r{net::Cidr(n->internalIP, 32), n->internalIP, n->name};
    r.nodeAddress = true;
    plan.remote.push_back(r);
  }
  return plan;
}

bool isNodeAddressRoute(const sl_route_key& key, const sl_route& value) {
  return key.family == SL_AF_INET && key.prefixlen == SL_ROUTE_KEY_FAMILY_BITS + 32 &&
         value.node_ip4 != 0 && key.addr[0] == value.node_ip4;
}

sl_route_key routeKey(const net::Cidr& cidr) {
  sl_route_key k{};
  net::Cidr c = cidr.network();
  k.prefixlen = SL_ROUTE_KEY_FAMILY_BITS + static_cast<uint32_t>(c.prefix());
  k.family = c.addr().isV4() ? SL_AF_INET : SL_AF_INET6;
  std::memcpy(k.addr, c.addr().bytes().data(), c.addr().isV4() ? 4 : 16);
  return k;
}

sl_route routeValue(const net::IpAddr& nodeIp, const net::IpAddr& nodeIp6) {
  sl_route v{};
  if (nodeIp.isV4()) v.node_ip4 = nodeIp.v4NetOrder();
  else std::memcpy(v.node_ip6, nodeIp.bytes().data(), 16);
  if (nodeIp6.isV6()) std::memcpy(v.node_ip6, nodeIp6.bytes().data(), 16);
  return v;
}

net::Cidr cidrOfKey(const sl_route_key& key) {
  int fam = key.family == SL_AF_INET6 ? 6 : 4;
  auto ip = net::IpAddr::fromBytes(fam, reinterpret_cast<const uint8_t*>(key.addr));
  int plen = static_cast<int>(key.prefixlen) - SL_ROUTE_KEY_FAMILY_BITS;
  return net::Cidr(ip, std::max(plen, 0));
}

namespace {

bool sameKey(const sl_route_key& a, const sl_route_key& b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool sameValue(const sl_route& a, const sl_route& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

Result<SyncCounts> syncRoutesMap(const bpf::RouteMap& routes, const std::vector<RemoteRoute>& remote) {
  SL_ASSIGN_OR_RETURN(auto current, routes.entries());
  std::vector<std::pair<sl_route_key, sl_route>> want;
  for (const auto& r : remote) want.emplace_back(routeKey(r.podCidr), routeValue(r.nodeIp, r.nodeIp6));

  SyncCounts counts;
  for (const auto& [k, v] : want) {
    auto it = std::find_if(current.begin(), current.end(), [&](auto& e) { return sameKey(e.first, k); });
    if (it != current.end() && sameValue(it->second, v)) {
      ++counts.unchanged;
      continue;
    }
    auto st = routes.update(k, v);
    if (!st.ok()) return std::move(st).error().context("sl_routes " + cidrOfKey(k).str());
    ++(it == current.end() ? counts.added : counts.updated);
    spdlog::info("sl_routes {} {}", it == current.end() ? "added" : "updated", cidrOfKey(k).str());
  }
  for (const auto& [k, v] : current) {
    bool wanted = std::any_of(want.begin(), want.end(), [&](auto& w) { return sameKey(w.first, k); });
    if (wanted) continue;
    auto r = routes.erase(k);
    if (!r.ok()) return std::move(r).error().context("sl_routes remove " + cidrOfKey(k).str());
    ++counts.removed;
    spdlog::info("sl_routes removed {}", cidrOfKey(k).str());
  }
  return counts;
}

std::vector<KernelRoute> kernelRoutesFor(const std::vector<RemoteRoute>& remote,
                                         const KernelRouteOptions& opts) {
  std::vector<KernelRoute> out;
  for (const auto& r : remote) {
    if (!r.nodeIp.isV4()) continue;  // the underlay is IPv4
    KernelRoute k;
    k.dst = r.podCidr.network();
    k.mtu = opts.mtu;
    if (r.nodeAddress) {
      // The node itself stays on the underlay for the stack, but for what it forwards from this
      // node's pods (vxlan mode: kPodSourceTable, see kernel_routes.h).
      if (opts.native) continue;
      k.table = kPodSourceTable;
      k.ifindex = opts.overlayIfindex;
      out.push_back(k);
      continue;
    }
    if (r.podCidr.addr().isV6() && opts.native) {
      // via the owner's IPv6 address on the underlay (the plan has only such IPv6 routes)
      if (!r.nodeIp6.isV6()) continue;
      k.ifindex = opts.underlayIfindex;
      k.gateway = r.nodeIp6;
    } else if (r.podCidr.addr().isV6()) {
      // IPv6 pods over the IPv4 underlay: through sluice_vxlan, from this node's IPv6 address
      // (which remote pods reach back through their own routes to our pod CIDR).
      if (!opts.nodeIp6.isV6()) continue;
      k.ifindex = opts.overlayIfindex;
      k.prefSrc = opts.nodeIp6;
    } else if (opts.native) {
      k.ifindex = opts.underlayIfindex;
      k.gateway = r.nodeIp;
    } else {
      k.ifindex = opts.overlayIfindex;
      if (opts.nodeIp.isV4()) k.prefSrc = opts.nodeIp;
    }
    out.push_back(k);
  }
  return out;
}

}  // namespace sluice::agent
