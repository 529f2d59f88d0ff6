// SPDX-License-Identifier: Apache-2.0
#include "nl.h"

#include <netlink/errno.h>
#include <sys/socket.h>

#include <functional>

namespace sluice::agent::nl {
namespace {

constexpr int kDumpRetries = 10;

Result<Cache> dumpWithRetry(const std::function<int(nl_cache**)>& alloc, const std::string& what) {
  int err = 0;
  for (int i = 0; i < kDumpRetries; ++i) {
    nl_cache* c = nullptr;
    err = alloc(&c);
    if (err == 0) return Cache(c);
    if (err != -NLE_DUMP_INTR) break;
  }
  return error(err, what);
}

}  // namespace

Error error(int nlerr, const std::string& what) {
  int e = nlerr < 0 ? -nlerr : nlerr;
  Error out(CniCode::kNetlink, what + ": " + nl_geterror(e));
  return out;
}

Result<Sock> connect(int protocol) {
  Sock s(nl_socket_alloc());
  if (!s) return Error(CniCode::kNetlink, "allocate netlink socket");
  if (int err = nl_connect(s.get(), protocol); err < 0) return error(err, "connect netlink");
  return s;
}

Result<Cache> linkCache(nl_sock* sock) {
  return dumpWithRetry([&](nl_cache** c) { return rtnl_link_alloc_cache(sock, AF_UNSPEC, c); },
                       "dump links");
}

Result<Cache> addrCache(nl_sock* sock) {
  return dumpWithRetry([&](nl_cache** c) { return rtnl_addr_alloc_cache(sock, c); }, "dump addresses");
}

Result<Cache> routeCache(nl_sock* sock, int family) {
  return dumpWithRetry(
      [&](nl_cache** c) {
        int err = rtnl_route_alloc_cache(sock, family, 0, c);
        return err;
      },
      "dump routes");
}

Result<std::optional<Link>> linkByName(nl_sock* sock, const std::string& name) {
  rtnl_link* l = nullptr;
  int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &l);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return std::optional<Link>{};
  if (err < 0) return error(err, "get link " + name);
  return std::optional<Link>{Link(l)};
}

Addr toNl(const net::IpAddr& ip, int prefix) {
  Addr a(nl_addr_build(ip.afFamily(), ip.bytes().data(), ip.isV4() ? 4 : 16));
  if (a) nl_addr_set_prefixlen(a.get(), prefix < 0 ? ip.bits() : prefix);
  return a;
}

Addr toNl(const net::Cidr& cidr) { return toNl(cidr.network().addr(), cidr.prefix()); }

net::IpAddr fromNl(const nl_addr* a) {
  if (a == nullptr) return {};
  auto* mut = const_cast<nl_addr*>(a);  // libnl's getters are not const-correct
  int fam = nl_addr_get_family(mut);
  unsigned len = nl_addr_get_len(mut);
  const auto* bytes = static_cast<const uint8_t*>(nl_addr_get_binary_addr(mut));
  if (fam == AF_INET && len == 4) return net::IpAddr::fromBytes(4, bytes);
  if (fam == AF_INET6 && len == 16) return net::IpAddr::fromBytes(6, bytes);
  return {};
}

}  // namespace sluice::agent::nl
