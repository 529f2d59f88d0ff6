// SPDX-License-Identifier: Apache-2.0
// Links, addresses, routes and neighbours over rtnetlink (libnl-route-3), with RAII owners for
// every libnl object. A Netlink object talks to the namespace that was current when it was
// opened: open it *after* entering a pod's netns. Dumps are retried on NLE_DUMP_INTR.
// "Already gone" is reported as a value (false), never as an error, so that DEL stays
// idempotent.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::cni {

namespace nl {
struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct RouteDeleter {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct NexthopDeleter {
  void operator()(rtnl_nexthop* n) const { rtnl_route_nh_free(n); }
};
struct NeighDeleter {
  void operator()(rtnl_neigh* n) const { rtnl_neigh_put(n); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrDeleter>;
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using NexthopPtr = std::unique_ptr<rtnl_nexthop, NexthopDeleter>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighDeleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;
}  // namespace nl

using Mac = std::array<uint8_t, 6>;

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::string kind;   // "veth", "dummy", ... (empty for kinds without link info)
  Mac mac{};
  int mtu = 0;
  bool up = false;    // IFF_UP
  int peerIfindex = 0;  // IFLA_LINK: a veth's peer (its index in the peer's namespace)
};

struct RouteSpec {
  net::Cidr dst;                   // prefix, host bits clear
  std::optional<net::IpAddr> gw;
  int ifindex = 0;
  int scope = 0;                   // RT_SCOPE_UNIVERSE unless set (RT_SCOPE_LINK = 253)
  bool onlink = false;             // RTNH_F_ONLINK
};

struct RouteInfo {
  net::Cidr dst;
  std::optional<net::IpAddr> gw;
  int ifindex = 0;
  int scope = 0;
  uint32_t table = 0;
};

struct NeighInfo {
  net::IpAddr dst;
  Mac mac{};
  int ifindex = 0;
  int state = 0;  // NUD_*
};

class Netlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's current network namespace.
  static Result<Netlink> open();

  Result<std::optional<LinkInfo>> link(const std::string& name) const;
  Result<std::optional<LinkInfo>> link(int ifindex) const;

  // Creates a veth pair in this namespace, both ends down with the given MTU; the peer is
  // created directly in peerNsFd's namespace when given (moving a link later costs the kernel
  // a synchronize_net(): tens of milliseconds).
  Status createVethPair(const std::string& name, const std::string& peerName, int mtu,
                        std::optional<int> peerNsFd = std::nullopt) const;
  // Sets the link up; with `ipv4Conf` ({IPV4_DEVCONF_*, value}, linux/ip.h), in the same message,
  // the link's IPv4 settings (net.ipv4.conf.<link>.*) without a trip through /proc/sys each.
  Status setUp(int ifindex, const std::vector<std::pair<int, uint32_t>>& ipv4Conf = {}) const;
  // false when the link did not exist.
  Result<bool> deleteLink(int ifindex) const;
  Result<bool> deleteLink(const std::string& name) const;

  // `flags`: IFA_F_* (IFA_F_NODAD: an IPv6 address usable at once, no duplicate detection).
  Status addAddress(int ifindex, const net::Cidr& addr, unsigned flags = 0) const;
  Result<bool> deleteAddress(int ifindex, const net::Cidr& addr) const;
  // Addresses (with prefix) on ifindex, both families.
  Result<std::vector<net::Cidr>> addresses(int ifindex) const;

  // Adds to the main table; an identical route already present is an error (EEXIST).
  Status addRoute(const RouteSpec& r) const;
  Result<bool> deleteRoute(const RouteSpec& r) const;
  // Main-table routes of a family (AF_INET / AF_INET6).
  Result<std::vector<RouteInfo>> routes(int afFamily) const;

  Status addPermanentNeighbour(int ifindex, const net::IpAddr& dst, const Mac& mac) const;
  Result<bool> deleteNeighbour(int ifindex, const net::IpAddr& dst) const;
  Result<std::vector<NeighInfo>> neighbours(int ifindex) const;

 private:
  explicit Netlink(nl::SockPtr s) : sock_(std::move(s)) {}
  nl::SockPtr sock_;
};

// /proc/sys/<key>, slash separated ("net/ipv4/conf/slX/rp_filter": interface names may hold
// dots), in the current netns.
Status writeSysctl(const std::string& key, const std::string& value);
Result<std::string> readSysctl(const std::string& key);

}  // namespace sluice::cni
