// SPDX-License-Identifier: Apache-2.0
// The agent's private libnl-route helpers: RAII owners for libnl objects and a few lookups.
// Sockets are opened in the calling thread's network namespace.
#pragma once

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <memory>
#include <optional>
#include <string>

#include "sluice/cni/netlink.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent::nl {

// libsluice's RAII owners, under the agent's shorter names.
using Sock = cni::nl::SockPtr;
using Link = cni::nl::LinkPtr;
using Route = cni::nl::RoutePtr;
using Addr = cni::nl::NlAddrPtr;
using Cache = cni::nl::CachePtr;

// An Error from a negative libnl return code.
Error error(int nlerr, const std::string& what);

// A connected netlink socket of `protocol` (NETLINK_ROUTE, or NETLINK_NETFILTER for nftables).
Result<Sock> connect(int protocol = NETLINK_ROUTE);

// Cache dumps, retried while the kernel reports NLE_DUMP_INTR.
Result<Cache> linkCache(nl_sock* sock);
Result<Cache> addrCache(nl_sock* sock);
Result<Cache> routeCache(nl_sock* sock, int family);

// The link called `name`, or nullopt when there is none.
Result<std::optional<Link>> linkByName(nl_sock* sock, const std::string& name);

// libnl address from ours (prefix = -1: host prefix).
Addr toNl(const net::IpAddr& ip, int prefix = -1);
Addr toNl(const net::Cidr& cidr);
// Ours from libnl; invalid IpAddr when the family is neither v4 nor v6.
net::IpAddr fromNl(const nl_addr* a);

}  // namespace sluice::agent::nl
