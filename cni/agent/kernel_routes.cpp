// SPDX-License-Identifier: Apache-2.0
#include "kernel_routes.h"

#include <linux/rtnetlink.h>
#include <netlink/route/nexthop.h>
#include <sys/socket.h>

#include <map>

#include <spdlog/spdlog.h>

#include "nl.h"

namespace sluice::agent {
namespace {

std::string describe(const KernelRoute& r) {
  std::string s = r.dst.str();
  if (r.gateway.valid()) s += " via " + r.gateway.str();
  s += " ifindex " + std::to_string(r.ifindex);
  if (r.prefSrc.valid()) s += " src " + r.prefSrc.str();
  if (r.mtu > 0) s += " mtu " + std::to_string(r.mtu);
  return s;
}

Result<nl::Route> build(const KernelRoute& r) {
  nl::Route route(rtnl_route_alloc());
  if (!route) return Error(CniCode::kNetlink, "allocate route");
  const bool v6 = r.dst.addr().isV6();
  rtnl_route_set_family(route.get(), v6 ? AF_INET6 : AF_INET);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), kRouteProtocol);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  // IPv6 routes have no scope (the kernel reports universe for all of them).
  rtnl_route_set_scope(route.get(), r.gateway.valid() || v6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  auto dst = nl::toNl(r.dst);
  if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) return nl::error(err, "route dst");
  if (r.prefSrc.valid()) {
    auto src = nl::toNl(r.prefSrc);
    if (int err = rtnl_route_set_pref_src(route.get(), src.get()); err < 0)
      return nl::error(err, "route src");
  }
  if (r.mtu > 0) rtnl_route_set_metric(route.get(), RTAX_MTU, static_cast<unsigned>(r.mtu));
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) return Error(CniCode::kNetlink, "allocate nexthop");
  rtnl_route_nh_set_ifindex(nh, r.ifindex);
  if (r.gateway.valid()) {
    auto gw = nl::toNl(r.gateway);
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  return route;
}

}  // namespace

// Appends the owned routes of one family (AF_INET / AF_INET6) to `out`.
static Status appendOwnedRoutes(nl_sock* sock, int family, std::vector<KernelRoute>& out) {
  SL_ASSIGN_OR_RETURN(auto cache, nl::routeCache(sock, family));
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_protocol(r) != kRouteProtocol || rtnl_route_get_table(r) != RT_TABLE_MAIN ||
        rtnl_route_get_family(r) != family)
      continue;
    KernelRoute kr;
    nl_addr* dst = rtnl_route_get_dst(r);
    kr.dst = net::Cidr(nl::fromNl(dst), static_cast<int>(nl_addr_get_prefixlen(dst)));
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      kr.ifindex = rtnl_route_nh_get_ifindex(nh);
      kr.gateway = nl::fromNl(rtnl_route_nh_get_gateway(nh));
    }
    kr.prefSrc = nl::fromNl(rtnl_route_get_pref_src(r));
    uint32_t mtu = 0;
    if (rtnl_route_get_metric(r, RTAX_MTU, &mtu) == 0) kr.mtu = static_cast<int>(mtu);
    out.push_back(kr);
  }
  return okStatus();
}

Result<std::vector<KernelRoute>> listOwnedRoutes() {
  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  std::vector<KernelRoute> out;
  SL_TRY(appendOwnedRoutes(sock.get(), AF_INET, out));
  SL_TRY(appendOwnedRoutes(sock.get(), AF_INET6, out));
  return out;
}

Result<SyncCounts> syncKernelRoutes(const std::vector<KernelRoute>& desired) {
  SL_ASSIGN_OR_RETURN(auto current, listOwnedRoutes());
  std::map<net::Cidr, KernelRoute> have;
  for (const auto& r : current) have[r.dst] = r;
  std::map<net::Cidr, KernelRoute> want;
  for (const auto& r : desired) want[r.dst.network()] = r;

  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  SyncCounts counts;
  Status firstError;
  for (const auto& [dst, r] : want) {
    auto it = have.find(dst);
    KernelRoute norm = r;
    norm.dst = dst;
    if (it != have.end() && it->second == norm) {
      ++counts.unchanged;
      continue;
    }
    auto route = build(norm);
    if (!route.ok()) return std::move(route).error();
    int flags = NLM_F_CREATE | NLM_F_REPLACE;
    if (int err = rtnl_route_add(sock.get(), route->get(), flags); err < 0) {
      auto e = nl::error(err, "install route " + describe(norm));
      spdlog::warn("{}", e.describe());
      if (firstError.ok()) firstError = e;
      continue;
    }
    if (it == have.end()) {
      ++counts.added;
      spdlog::info("route added: {}", describe(norm));
    } else {
      ++counts.updated;
      spdlog::info("route updated: {}", describe(norm));
    }
  }
  for (const auto& [dst, r] : have) {
    if (want.count(dst)) continue;
    auto route = build(r);
    if (!route.ok()) return std::move(route).error();
    int err = rtnl_route_delete(sock.get(), route->get(), 0);
    if (err < 0 && err != -NLE_OBJ_NOTFOUND) {
      auto e = nl::error(err, "remove route " + describe(r));
      spdlog::warn("{}", e.describe());
      if (firstError.ok()) firstError = e;
      continue;
    }
    ++counts.removed;
    spdlog::info("route removed: {}", describe(r));
  }
  if (!firstError.ok()) return std::move(firstError).error();
  return counts;
}

}  // namespace sluice::agent
