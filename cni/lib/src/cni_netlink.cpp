// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/netlink.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/errno.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/nexthop.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sluice/fd.h"

namespace sluice::cni {
namespace {

constexpr int kDumpRetries = 10;

Error nlError(int err, const std::string& what) {
  return Error(CniCode::kNetlink, what + ": " + nl_geterror(err));
}

bool isAbsent(int err) {
  err = err < 0 ? -err : err;
  return err == NLE_OBJ_NOTFOUND || err == NLE_NODEV || err == NLE_NOADDR;
}

Result<nl::NlAddrPtr> toNlAddr(const net::IpAddr& ip, int prefix) {
  nl_addr* a = nl_addr_build(ip.afFamily(), ip.bytes().data(), ip.isV6() ? 16 : 4);
  if (!a) return Error(CniCode::kNetlink, "nl_addr_build: out of memory");
  nl_addr_set_prefixlen(a, prefix);
  return nl::NlAddrPtr(a);
}

std::optional<net::IpAddr> fromNlAddr(nl_addr* a) {
  if (!a) return std::nullopt;
  int fam = nl_addr_get_family(a);
  if (fam != AF_INET && fam != AF_INET6) return std::nullopt;
  uint8_t bytes[16] = {};
  unsigned len = nl_addr_get_len(a);
  if (len > 0) {
    if (len != (fam == AF_INET ? 4u : 16u)) return std::nullopt;
    std::memcpy(bytes, nl_addr_get_binary_addr(a), len);
  }
  return net::IpAddr::fromBytes(fam == AF_INET ? 4 : 6, bytes);
}

LinkInfo toLinkInfo(rtnl_link* l) {
  LinkInfo info;
  info.ifindex = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) info.name = n;
  if (const char* t = rtnl_link_get_type(l)) info.kind = t;
  if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6)
    std::memcpy(info.mac.data(), nl_addr_get_binary_addr(a), 6);
  info.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  info.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  info.peerIfindex = rtnl_link_get_link(l);
  return info;
}

// Runs a cache-filling dump, again while the kernel reports it was interrupted.
template <typename Fill>
Result<nl::CachePtr> dump(const char* what, Fill fill) {
  int err = 0;
  for (int attempt = 0; attempt < kDumpRetries; ++attempt) {
    nl_cache* c = nullptr;
    err = fill(&c);
    if (err == 0) return nl::CachePtr(c);
    if (c) nl_cache_free(c);
    if (err != -NLE_DUMP_INTR) break;
  }
  return nlError(err, std::string("dump ") + what);
}

nl::LinkPtr linkRef(int ifindex) {
  rtnl_link* l = rtnl_link_alloc();
  if (l) rtnl_link_set_ifindex(l, ifindex);
  return nl::LinkPtr(l);
}

}  // namespace

Result<Netlink> Netlink::open() {
  nl::SockPtr s(nl_socket_alloc());
  if (!s) return Error(CniCode::kNetlink, "nl_socket_alloc: out of memory");
  int err = nl_connect(s.get(), NETLINK_ROUTE);
  if (err < 0) return nlError(err, "connect rtnetlink");
  // Requests are answered synchronously with an ACK each (errors come back as values).
  nl_socket_enable_auto_ack(s.get());
  return Netlink(std::move(s));
}

Result<std::optional<LinkInfo>> Netlink::link(const std::string& name) const {
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &l);
  if (err < 0) {
    if (isAbsent(err)) return std::optional<LinkInfo>();
    return nlError(err, "get link " + name);
  }
  nl::LinkPtr owned(l);
  return std::optional<LinkInfo>(toLinkInfo(l));
}

Result<std::optional<LinkInfo>> Netlink::link(int ifindex) const {
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), ifindex, nullptr, &l);
  if (err < 0) {
    if (isAbsent(err)) return std::optional<LinkInfo>();
    return nlError(err, "get link #" + std::to_string(ifindex));
  }
  nl::LinkPtr owned(l);
  return std::optional<LinkInfo>(toLinkInfo(l));
}

Status Netlink::createVethPair(const std::string& name, const std::string& peerName, int mtu,
                               std::optional<int> peerNsFd) const {
  nl::LinkPtr link(rtnl_link_veth_alloc());
  if (!link) return Error(CniCode::kNetlink, "rtnl_link_veth_alloc: out of memory");
  // One queue each way, asked for up front: left out, the kernel gives a veth one per CPU
  // and then trims it to one, which waits for an RCU grace period under the RTNL lock on
  // each end (netif_set_real_num_tx_queues -> synchronize_net), the biggest share of an ADD.
  const auto shape = [&](rtnl_link* l, const std::string& n) {
    rtnl_link_set_name(l, n.c_str());
    rtnl_link_set_mtu(l, static_cast<unsigned>(mtu));
    rtnl_link_set_num_tx_queues(l, 1);
    rtnl_link_set_num_rx_queues(l, 1);
  };
  shape(link.get(), name);
  {
    nl::LinkPtr peer(rtnl_link_veth_get_peer(link.get()));  // a new reference
    shape(peer.get(), peerName);
    if (peerNsFd) rtnl_link_set_ns_fd(peer.get(), *peerNsFd);
  }
  int err = rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0) return nlError(err, "create veth " + name + " <-> " + peerName);
  return okStatus();
}

Status Netlink::setUp(int ifindex, const std::vector<std::pair<int, uint32_t>>& ipv4Conf) const {
  nl::LinkPtr orig = linkRef(ifindex);
  nl::LinkPtr change(rtnl_link_alloc());
  if (!orig || !change) return Error(CniCode::kNetlink, "rtnl_link_alloc: out of memory");
  rtnl_link_set_flags(change.get(), IFF_UP);
  for (const auto& [id, value] : ipv4Conf) {
    if (int err = rtnl_link_inet_set_conf(change.get(), static_cast<unsigned>(id), value); err < 0)
      return nlError(err, "IPv4 setting " + std::to_string(id) + " of link #" + std::to_string(ifindex));
  }
  int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0);
  if (err < 0) return nlError(err, "set link #" + std::to_string(ifindex) + " up");
  return okStatus();
}

Result<bool> Netlink::deleteLink(int ifindex) const {
  nl::LinkPtr l = linkRef(ifindex);
  if (!l) return Error(CniCode::kNetlink, "rtnl_link_alloc: out of memory");
  int err = rtnl_link_delete(sock_.get(), l.get());
  if (err < 0) {
    if (isAbsent(err)) return false;
    return nlError(err, "delete link #" + std::to_string(ifindex));
  }
  return true;
}

Result<bool> Netlink::deleteLink(const std::string& name) const {
  nl::LinkPtr l(rtnl_link_alloc());
  if (!l) return Error(CniCode::kNetlink, "rtnl_link_alloc: out of memory");
  rtnl_link_set_name(l.get(), name.c_str());
  int err = rtnl_link_delete(sock_.get(), l.get());
  if (err < 0) {
    if (isAbsent(err)) return false;
    return nlError(err, "delete link " + name);
  }
  return true;
}

Status Netlink::addAddress(int ifindex, const net::Cidr& addr, unsigned flags) const {
  nl::AddrPtr a(rtnl_addr_alloc());
  if (!a) return Error(CniCode::kNetlink, "rtnl_addr_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr local, toNlAddr(addr.addr(), addr.prefix()));
  rtnl_addr_set_ifindex(a.get(), ifindex);
  if (flags != 0) rtnl_addr_set_flags(a.get(), flags);
  int err = rtnl_addr_set_local(a.get(), local.get());
  if (err == 0) err = rtnl_addr_add(sock_.get(), a.get(), 0);
  if (err < 0) return nlError(err, "add address " + addr.str());
  return okStatus();
}

Result<bool> Netlink::deleteAddress(int ifindex, const net::Cidr& addr) const {
  nl::AddrPtr a(rtnl_addr_alloc());
  if (!a) return Error(CniCode::kNetlink, "rtnl_addr_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr local, toNlAddr(addr.addr(), addr.prefix()));
  rtnl_addr_set_ifindex(a.get(), ifindex);
  int err = rtnl_addr_set_local(a.get(), local.get());
  if (err == 0) err = rtnl_addr_delete(sock_.get(), a.get(), 0);
  if (err < 0) {
    if (isAbsent(err)) return false;
    return nlError(err, "delete address " + addr.str());
  }
  return true;
}

Result<std::vector<net::Cidr>> Netlink::addresses(int ifindex) const {
  SL_ASSIGN_OR_RETURN(nl::CachePtr cache,
                      dump("addresses", [&](nl_cache** c) { return rtnl_addr_alloc_cache(sock_.get(), c); }));
  std::vector<net::Cidr> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifindex) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (auto ip = fromNlAddr(local)) out.emplace_back(*ip, rtnl_addr_get_prefixlen(a));
  }
  return out;
}

Status Netlink::addRoute(const RouteSpec& r) const {
  nl::RoutePtr route(rtnl_route_alloc());
  nl::NexthopPtr nh(rtnl_route_nh_alloc());
  if (!route || !nh) return Error(CniCode::kNetlink, "rtnl_route_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr dst, toNlAddr(r.dst.addr(), r.dst.prefix()));
  const std::string desc = r.dst.str() + (r.gw ? " via " + r.gw->str() : "") + " dev #" +
                           std::to_string(r.ifindex);
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.dst.addr().afFamily()));
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_scope(route.get(), static_cast<uint8_t>(r.scope));
  int err = rtnl_route_set_dst(route.get(), dst.get());
  if (err < 0) return nlError(err, "route " + desc);
  rtnl_route_nh_set_ifindex(nh.get(), r.ifindex);
  if (r.gw) {
    SL_ASSIGN_OR_RETURN(nl::NlAddrPtr gw, toNlAddr(*r.gw, r.gw->bits()));
    rtnl_route_nh_set_gateway(nh.get(), gw.get());
  }
  if (r.onlink) {
    rtnl_route_nh_set_flags(nh.get(), RTNH_F_ONLINK);
    rtnl_route_set_flags(route.get(), RTNH_F_ONLINK);
  }
  rtnl_route_add_nexthop(route.get(), nh.release());  // the route owns it now
  err = rtnl_route_add(sock_.get(), route.get(), NLM_F_EXCL);
  if (err < 0) return nlError(err, "add route " + desc);
  return okStatus();
}

Result<bool> Netlink::deleteRoute(const RouteSpec& r) const {
  nl::RoutePtr route(rtnl_route_alloc());
  nl::NexthopPtr nh(rtnl_route_nh_alloc());
  if (!route || !nh) return Error(CniCode::kNetlink, "rtnl_route_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr dst, toNlAddr(r.dst.addr(), r.dst.prefix()));
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(r.dst.addr().afFamily()));
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_scope(route.get(), static_cast<uint8_t>(r.scope));
  int err = rtnl_route_set_dst(route.get(), dst.get());
  if (err < 0) return nlError(err, "route " + r.dst.str());
  rtnl_route_nh_set_ifindex(nh.get(), r.ifindex);
  rtnl_route_add_nexthop(route.get(), nh.release());
  err = rtnl_route_delete(sock_.get(), route.get(), 0);
  if (err < 0) {
    if (isAbsent(err)) return false;
    return nlError(err, "delete route " + r.dst.str());
  }
  return true;
}

Result<std::vector<RouteInfo>> Netlink::routes(int afFamily) const {
  SL_ASSIGN_OR_RETURN(nl::CachePtr cache, dump("routes", [&](nl_cache** c) {
                        return rtnl_route_alloc_cache(sock_.get(), afFamily, 0, c);
                      }));
  std::vector<RouteInfo> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* rt = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(rt) != RT_TABLE_MAIN) continue;
    if (rtnl_route_get_family(rt) != afFamily) continue;
    RouteInfo info;
    nl_addr* dst = rtnl_route_get_dst(rt);
    auto ip = fromNlAddr(dst);
    if (!ip) {
      // The default route may come without any destination attribute.
      ip = afFamily == AF_INET6 ? net::IpAddr::parse("::") : net::IpAddr::parse("0.0.0.0");
    }
    info.dst = net::Cidr(*ip, dst ? static_cast<int>(nl_addr_get_prefixlen(dst)) : 0);
    info.scope = rtnl_route_get_scope(rt);
    info.table = rtnl_route_get_table(rt);
    if (rtnl_route_get_nnexthops(rt) >= 1) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(rt, 0);
      info.ifindex = rtnl_route_nh_get_ifindex(nh);
      info.gw = fromNlAddr(rtnl_route_nh_get_gateway(nh));
    }
    out.push_back(info);
  }
  return out;
}

Status Netlink::addPermanentNeighbour(int ifindex, const net::IpAddr& dst, const Mac& mac) const {
  nl::NeighPtr n(rtnl_neigh_alloc());
  if (!n) return Error(CniCode::kNetlink, "rtnl_neigh_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr d, toNlAddr(dst, dst.bits()));
  nl::NlAddrPtr ll(nl_addr_build(AF_LLC, mac.data(), mac.size()));
  if (!ll) return Error(CniCode::kNetlink, "nl_addr_build: out of memory");
  rtnl_neigh_set_ifindex(n.get(), ifindex);
  int err = rtnl_neigh_set_dst(n.get(), d.get());
  if (err < 0) return nlError(err, "neighbour " + dst.str());
  rtnl_neigh_set_lladdr(n.get(), ll.get());
  rtnl_neigh_set_state(n.get(), NUD_PERMANENT);
  err = rtnl_neigh_add(sock_.get(), n.get(), NLM_F_CREATE | NLM_F_REPLACE);
  if (err < 0) return nlError(err, "add permanent neighbour " + dst.str());
  return okStatus();
}

Result<bool> Netlink::deleteNeighbour(int ifindex, const net::IpAddr& dst) const {
  nl::NeighPtr n(rtnl_neigh_alloc());
  if (!n) return Error(CniCode::kNetlink, "rtnl_neigh_alloc: out of memory");
  SL_ASSIGN_OR_RETURN(nl::NlAddrPtr d, toNlAddr(dst, dst.bits()));
  rtnl_neigh_set_ifindex(n.get(), ifindex);
  int err = rtnl_neigh_set_dst(n.get(), d.get());
  if (err == 0) err = rtnl_neigh_delete(sock_.get(), n.get(), 0);
  if (err < 0) {
    if (isAbsent(err)) return false;
    return nlError(err, "delete neighbour " + dst.str());
  }
  return true;
}

Result<std::vector<NeighInfo>> Netlink::neighbours(int ifindex) const {
  SL_ASSIGN_OR_RETURN(nl::CachePtr cache, dump("neighbours", [&](nl_cache** c) {
                        return rtnl_neigh_alloc_cache(sock_.get(), c);
                      }));
  std::vector<NeighInfo> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* n = reinterpret_cast<rtnl_neigh*>(o);
    if (rtnl_neigh_get_ifindex(n) != ifindex) continue;
    auto ip = fromNlAddr(rtnl_neigh_get_dst(n));
    if (!ip) continue;
    NeighInfo info;
    info.dst = *ip;
    info.ifindex = ifindex;
    info.state = rtnl_neigh_get_state(n);
    if (nl_addr* ll = rtnl_neigh_get_lladdr(n); ll && nl_addr_get_len(ll) == 6)
      std::memcpy(info.mac.data(), nl_addr_get_binary_addr(ll), 6);
    out.push_back(info);
  }
  return out;
}

Status writeSysctl(const std::string& key, const std::string& value) {
  const std::string path = "/proc/sys/" + key;
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::fromErrno(errno, "open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return Error::fromErrno(errno, "write " + value + " to " + path);
  return okStatus();
}

Result<std::string> readSysctl(const std::string& key) {
  const std::string path = "/proc/sys/" + key;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::fromErrno(errno, "open " + path);
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  if (n < 0) return Error::fromErrno(errno, "read " + path);
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace sluice::cni
