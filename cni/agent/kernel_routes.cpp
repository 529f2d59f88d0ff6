// SPDX-License-Identifier: Apache-2.0
#include "kernel_routes.h"

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/rule.h>
#include <sys/socket.h>

#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "nl.h"

namespace sluice::agent {
namespace {

std::string describe(const KernelRoute& r) {
  std::string s = r.dst.str();
  if (r.table != kMainTable) s += " table " + std::to_string(r.table);
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
  rtnl_route_set_table(route.get(), static_cast<uint32_t>(r.table));
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
    const auto table = static_cast<int>(rtnl_route_get_table(r));
    if (rtnl_route_get_protocol(r) != kRouteProtocol || (table != kMainTable && table != kPodSourceTable) ||
        rtnl_route_get_family(r) != family)
      continue;
    KernelRoute kr;
    kr.table = table;
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
  using Key = std::pair<int, net::Cidr>;  // table, destination
  std::map<Key, KernelRoute> have;
  for (const auto& r : current) have[{r.table, r.dst}] = r;
  std::map<Key, KernelRoute> want;
  for (const auto& r : desired) want[{r.table, r.dst.network()}] = r;

  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  SyncCounts counts;
  Status firstError;
  for (const auto& [key, r] : want) {
    auto it = have.find(key);
    KernelRoute norm = r;
    norm.dst = key.second;
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
  for (const auto& [key, r] : have) {
    if (want.count(key)) continue;
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

Result<bool> syncPodSourceRule(const std::optional<net::Cidr>& podCidr) {
  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  nl_cache* raw = nullptr;
  if (int err = rtnl_rule_alloc_cache(sock.get(), AF_INET, &raw); err < 0) return nl::error(err, "dump rules");
  nl::Cache cache(raw);
  const std::string want =
      podCidr ? fmt::format("from {} fwmark {:#x} lookup {}", podCidr->network().str(), kPodToNodeMark, kPodSourceTable)
              : std::string();
  bool have = false, changed = false;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* rule = reinterpret_cast<rtnl_rule*>(o);
    if (rtnl_rule_get_table(rule) != static_cast<uint32_t>(kPodSourceTable)) continue;
    const nl_addr* src = rtnl_rule_get_src(rule);
    const net::Cidr from(nl::fromNl(src), src ? static_cast<int>(nl_addr_get_prefixlen(src)) : 0);
    if (podCidr && !have && src && from == podCidr->network() &&
        rtnl_rule_get_prio(rule) == static_cast<uint32_t>(kPodSourceRulePriority) &&
        rtnl_rule_get_mark(rule) == kPodToNodeMark && rtnl_rule_get_mask(rule) == kPodToNodeMark) {
      have = true;
      continue;
    }
    if (int err = rtnl_rule_delete(sock.get(), rule, 0); err < 0 && err != -NLE_OBJ_NOTFOUND)
      return nl::error(err, "remove rule from " + (src ? from.str() : std::string("all")) + " lookup " +
                                std::to_string(kPodSourceTable));
    spdlog::info("rule removed: from {} lookup {}", src ? from.str() : "all", kPodSourceTable);
    changed = true;
  }
  if (podCidr && !have) {
    std::unique_ptr<rtnl_rule, decltype(&rtnl_rule_put)> rule(rtnl_rule_alloc(), &rtnl_rule_put);
    if (!rule) return Error(CniCode::kNetlink, "allocate rule");
    rtnl_rule_set_family(rule.get(), AF_INET);
    rtnl_rule_set_prio(rule.get(), static_cast<uint32_t>(kPodSourceRulePriority));
    rtnl_rule_set_table(rule.get(), static_cast<uint32_t>(kPodSourceTable));
    rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
    rtnl_rule_set_protocol(rule.get(), kRouteProtocol);
    rtnl_rule_set_mark(rule.get(), kPodToNodeMark);
    rtnl_rule_set_mask(rule.get(), kPodToNodeMark);
    auto src = nl::toNl(*podCidr);
    if (int err = rtnl_rule_set_src(rule.get(), src.get()); err < 0) return nl::error(err, "rule src");
    if (int err = rtnl_rule_add(sock.get(), rule.get(), NLM_F_CREATE); err < 0)
      return nl::error(err, "install rule " + want);
    spdlog::info("rule added: {} (priority {})", want, kPodSourceRulePriority);
    changed = true;
  }
  return changed;
}

}  // namespace sluice::agent
