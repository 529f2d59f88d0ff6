// SPDX-License-Identifier: Apache-2.0
#include "vxlan.h"

#include <net/if.h>
#include <netlink/route/link/vxlan.h>
#include <sys/socket.h>

#include <cstring>

#include <spdlog/spdlog.h>

#include "nl.h"
#include "sluice/cni/netlink.h"
#include "sluice/fd.h"

namespace sluice::agent {
namespace {

bool sameShape(rtnl_link* l, const VxlanSpec& spec) {
  const char* type = rtnl_link_get_type(l);
  if (type == nullptr || std::strcmp(type, "vxlan") != 0) return false;
  if (rtnl_link_vxlan_get_collect_metadata(l) != 1) return false;
  uint32_t port = 0;
  if (rtnl_link_vxlan_get_port(l, &port) < 0 || port != spec.port) return false;
  if (rtnl_link_vxlan_get_learning(l) != 0) return false;
  return true;
}

Status createVxlan(nl_sock* sock, const VxlanSpec& spec) {
  nl::Link link(rtnl_link_vxlan_alloc());
  if (!link) return Error(CniCode::kNetlink, "allocate vxlan link");
  rtnl_link_set_name(link.get(), kVxlanName);
  int err = 0;
  if ((err = rtnl_link_vxlan_set_collect_metadata(link.get(), 1)) < 0)
    return nl::error(err, "vxlan collect-metadata");
  if ((err = rtnl_link_vxlan_set_port(link.get(), spec.port)) < 0) return nl::error(err, "vxlan port");
  if ((err = rtnl_link_vxlan_disable_learning(link.get())) < 0) return nl::error(err, "vxlan learning");
  if (spec.underlayIfindex > 0) rtnl_link_set_link(link.get(), spec.underlayIfindex);
  if (spec.mtu > 0) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(spec.mtu));
  // Created down: ensureVxlan turns IPv6 address generation off before bringing it up.
  rtnl_link_set_flags(link.get(), IFF_NOARP);
  if ((err = rtnl_link_add(sock, link.get(), NLM_F_CREATE | NLM_F_EXCL)) < 0)
    return nl::error(err, std::string("create ") + kVxlanName);
  return okStatus();
}

// Fixes MTU and flags in place (no delete: traffic keeps flowing through a restart).
Status adjust(nl_sock* sock, rtnl_link* current, const VxlanSpec& spec) {
  nl::Link change(rtnl_link_alloc());
  if (!change) return Error(CniCode::kNetlink, "allocate link change");
  bool needed = false;
  if (spec.mtu > 0 && rtnl_link_get_mtu(current) != static_cast<unsigned>(spec.mtu)) {
    rtnl_link_set_mtu(change.get(), static_cast<unsigned>(spec.mtu));
    needed = true;
  }
  unsigned flags = rtnl_link_get_flags(current);
  if ((flags & (IFF_UP | IFF_NOARP)) != (IFF_UP | IFF_NOARP)) {
    rtnl_link_set_flags(change.get(), IFF_NOARP | IFF_UP);
    needed = true;
  }
  if (!needed) return okStatus();
  if (int err = rtnl_link_change(sock, current, change.get(), 0); err < 0)
    return nl::error(err, std::string("update ") + kVxlanName);
  return okStatus();
}

}  // namespace

int ifindexOf(const std::string& name) { return static_cast<int>(if_nametoindex(name.c_str())); }

Result<Underlay> findUnderlay(const net::IpAddr& nodeIp) {
  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  SL_ASSIGN_OR_RETURN(auto addrs, nl::addrCache(sock.get()));
  int ifindex = 0;
  for (nl_object* o = nl_cache_get_first(addrs.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (nl::fromNl(rtnl_addr_get_local(a)) == nodeIp) {
      ifindex = rtnl_addr_get_ifindex(a);
      break;
    }
  }
  if (ifindex == 0)
    return Error(CniCode::kInvalidConfig, "no local device holds the node address " + nodeIp.str());
  SL_ASSIGN_OR_RETURN(auto links, nl::linkCache(sock.get()));
  nl::Link link(rtnl_link_get(links.get(), ifindex));
  if (!link) return Error(CniCode::kNetlink, "underlay ifindex " + std::to_string(ifindex) + " vanished");
  Underlay u;
  u.ifindex = ifindex;
  u.name = rtnl_link_get_name(link.get());
  u.mtu = static_cast<int>(rtnl_link_get_mtu(link.get()));
  return u;
}

Result<VxlanState> ensureVxlan(const VxlanSpec& spec) {
  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  SL_ASSIGN_OR_RETURN(auto existing, nl::linkByName(sock.get(), kVxlanName));
  VxlanState st;
  if (existing && sameShape(existing->get(), spec)) {
    SL_TRY(adjust(sock.get(), existing->get(), spec));
  } else {
    if (existing) {
      spdlog::warn("{} exists with another configuration: replacing it", kVxlanName);
      if (int err = rtnl_link_delete(sock.get(), existing->get()); err < 0)
        return nl::error(err, std::string("delete stale ") + kVxlanName);
      st.recreated = true;
    }
    SL_TRY(createVxlan(sock.get(), spec));
    st.created = true;
    // No IPv6 link-local address: the device would send its own router solicitations and
    // MLD reports, which carry no tunnel key and have nowhere to go.
    Status gen = cni::writeSysctl(std::string("net/ipv6/conf/") + kVxlanName + "/addr_gen_mode", "1");
    if (!gen.ok()) spdlog::warn("{} keeps IPv6 address generation: {}", kVxlanName, gen.error().describe());
    SL_ASSIGN_OR_RETURN(auto created, nl::linkByName(sock.get(), kVxlanName));
    if (!created) return Error(CniCode::kNetlink, std::string(kVxlanName) + " vanished after its creation");
    SL_TRY(adjust(sock.get(), created->get(), spec));
  }
  st.ifindex = ifindexOf(kVxlanName);
  if (st.ifindex == 0) return Error(CniCode::kNetlink, std::string(kVxlanName) + " vanished after setup");
  return st;
}

Result<bool> removeVxlan() {
  SL_ASSIGN_OR_RETURN(auto sock, nl::connect());
  SL_ASSIGN_OR_RETURN(auto link, nl::linkByName(sock.get(), kVxlanName));
  if (!link) return false;
  const char* type = rtnl_link_get_type(link->get());
  if (type == nullptr || std::string(type) != "vxlan")
    return Error(CniCode::kInternal, std::string(kVxlanName) + " is not a VXLAN device: left alone");
  int err = rtnl_link_delete(sock.get(), link->get());
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NODEV)
    return nl::error(err, std::string("delete ") + kVxlanName);
  return err == 0;
}

}  // namespace sluice::agent
