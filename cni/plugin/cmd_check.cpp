// SPDX-License-Identifier: Apache-2.0
// CHECK: every piece ADD created is still there and still agrees with the endpoint record and
// with prevResult: the host veth (up, from_pod and to_pod attached), the pod interface, its addresses,
// routes and gateway neighbour, the host route and neighbour, both map entries, the IPAM
// reservation.
#include <linux/neighbour.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "endpoint_ops.h"
#include "ipam_client.h"
#include "plugin.h"
#include "sluice/bpf/maps.h"
#include "sluice/bpf/tc.h"
#include "sluice/cni/endpoint.h"
#include "sluice/cni/hash.h"
#include "sluice/cni/netlink.h"
#include "sluice/cni/netns.h"
#include "sluice/cni/types.h"

namespace sluice::plugin {
namespace {

Error broken(const std::string& what) { return Error(CniCode::kInternal, "CHECK: " + what); }

bool hasRoute(const std::vector<cni::RouteInfo>& routes, const net::Cidr& dst,
              const std::optional<net::IpAddr>& gw, int ifindex) {
  return std::any_of(routes.begin(), routes.end(), [&](const cni::RouteInfo& r) {
    return r.dst == dst && r.gw == gw && r.ifindex == ifindex;
  });
}

bool hasPermanentNeighbour(const std::vector<cni::NeighInfo>& neigh, const net::IpAddr& ip,
                           const cni::Mac& mac) {
  return std::any_of(neigh.begin(), neigh.end(), [&](const cni::NeighInfo& n) {
    return n.dst == ip && n.mac == mac && (n.state & NUD_PERMANENT);
  });
}

// The program attached at `where` (id `attached`, 0 for none) is the one pinned as `pin`.
Status checkPinnedAttached(const std::string& bpfRoot, const char* pin, uint32_t attached,
                           const std::string& where) {
  SL_ASSIGN_OR_RETURN(Fd prog, bpf::openPinned(bpf::pinPath(bpfRoot, pin)));
  SL_ASSIGN_OR_RETURN(uint32_t want, bpf::progId(prog.get()));
  if (attached == 0) return broken("no program is attached to " + where);
  if (attached != want)
    return broken("program " + std::to_string(attached) + " is attached to " + where + ", the pinned " +
                  pin + " is " + std::to_string(want));
  return okStatus();
}

// prevResult must describe this attachment: its sandbox interface by name and MAC, and its
// addresses exactly.
Status checkPrevResult(const Invocation& inv, const cni::EndpointRecord& rec) {
  if (!inv.conf.prevResult)
    return Error(CniCode::kInvalidConfig, "CHECK: prevResult is required (CNI spec, CHECK)");
  SL_ASSIGN_OR_RETURN(cni::CniResult prev, cni::resultFromJson(*inv.conf.prevResult, "prevResult"));
  std::optional<int> ours;
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    const auto& itf = prev.interfaces[i];
    if (itf.name == inv.env.ifname && !itf.sandbox.empty()) {
      if (!itf.mac.empty() && itf.mac != rec.podMac)
        return broken("prevResult gives " + itf.name + " MAC " + itf.mac + ", the pod has " + rec.podMac);
      ours = static_cast<int>(i);
    }
  }
  if (!ours) return broken("prevResult has no sandbox interface " + inv.env.ifname);
  std::vector<net::Cidr> prevIps;
  for (const auto& ip : prev.ips)
    if (!ip.interface || *ip.interface == *ours) prevIps.push_back(ip.address);
  for (const auto& want : rec.ips)
    if (std::find(prevIps.begin(), prevIps.end(), want) == prevIps.end())
      return broken("prevResult lacks the pod address " + want.str());
  for (const auto& got : prevIps)
    if (std::find(rec.ips.begin(), rec.ips.end(), got) == rec.ips.end())
      return broken("prevResult names " + got.str() + ", which is not the pod's");
  return okStatus();
}

Status checkPodSide(const Invocation& inv, const cni::EndpointRecord& rec, const cni::Mac& hostMac) {
  SL_ASSIGN_OR_RETURN(Fd podNs, cni::openNetns(inv.env.netns));
  return cni::inNetns(podNs.get(), [&]() -> Status {
    SL_ASSIGN_OR_RETURN(cni::Netlink pod, cni::Netlink::open());
    SL_ASSIGN_OR_RETURN(auto link, pod.link(inv.env.ifname));
    if (!link) return broken("the pod has no interface " + inv.env.ifname);
    if (link->kind != "veth") return broken(inv.env.ifname + " is a " + link->kind + ", not a veth");
    if (!link->up) return broken(inv.env.ifname + " is down");
    if (net::formatMac(link->mac.data()) != rec.podMac)
      return broken(inv.env.ifname + " has MAC " + net::formatMac(link->mac.data()) + ", recorded " + rec.podMac);
    if (link->mtu != inv.conf.mtu)
      return broken(inv.env.ifname + " has MTU " + std::to_string(link->mtu) + ", configured " +
                    std::to_string(inv.conf.mtu));
    SL_ASSIGN_OR_RETURN(auto addrs, pod.addresses(link->ifindex));
    for (const auto& ip : rec.ips)
      if (std::find(addrs.begin(), addrs.end(), ip) == addrs.end())
        return broken(inv.env.ifname + " lacks its address " + ip.str());
    SL_ASSIGN_OR_RETURN(auto neigh, pod.neighbours(link->ifindex));
    const bool has4 = std::any_of(rec.ips.begin(), rec.ips.end(), [](const net::Cidr& c) { return c.addr().isV4(); });
    const bool has6 = std::any_of(rec.ips.begin(), rec.ips.end(), [](const net::Cidr& c) { return c.addr().isV6(); });
    if (has4) {
      const net::IpAddr gw = gatewayV4();
      SL_ASSIGN_OR_RETURN(auto routes, pod.routes(AF_INET));
      if (!hasRoute(routes, net::Cidr(gw, 32), std::nullopt, link->ifindex))
        return broken("the pod has no on-link route to the gateway " + gw.str());
      if (!hasRoute(routes, *net::Cidr::parse("0.0.0.0/0"), gw, link->ifindex))
        return broken("the pod has no default route via " + gw.str());
      if (!hasPermanentNeighbour(neigh, gw, hostMac))
        return broken("the pod's gateway neighbour entry " + gw.str() + " is missing or points elsewhere");
    }
    if (has6) {
      const net::IpAddr gw = gatewayV6();
      SL_ASSIGN_OR_RETURN(auto routes, pod.routes(AF_INET6));
      if (!hasRoute(routes, *net::Cidr::parse("::/0"), gw, link->ifindex))
        return broken("the pod has no IPv6 default route via " + gw.str());
      if (!hasPermanentNeighbour(neigh, gw, hostMac))
        return broken("the pod's gateway neighbour entry " + gw.str() + " is missing or points elsewhere");
    }
    return okStatus();
  });
}

}  // namespace

Status cmdCheck(const Invocation& inv) {
  const auto& conf = inv.conf;
  const auto& env = inv.env;
  if (!conf.ipam) return Error(CniCode::kInvalidConfig, "invalid network configuration: ipam: missing");
  const std::string hostVeth = cni::hostVethName(env.containerId, env.ifname);

  SL_ASSIGN_OR_RETURN(auto record, cni::readEndpointRecord(conf.stateDir, hostVeth));
  if (!record) return broken("no endpoint record for " + hostVeth + ": ADD never completed");
  const cni::EndpointRecord& rec = *record;
  SL_TRY(checkPrevResult(inv, rec));

  // Host side.
  SL_ASSIGN_OR_RETURN(cni::Netlink host, cni::Netlink::open());
  SL_ASSIGN_OR_RETURN(auto hostLink, host.link(hostVeth));
  if (!hostLink) return broken("host veth " + hostVeth + " is gone");
  if (!hostLink->up) return broken("host veth " + hostVeth + " is down");
  if (hostLink->ifindex != rec.hostIfindex)
    return broken("host veth " + hostVeth + " was recreated (ifindex " +
                  std::to_string(hostLink->ifindex) + ", recorded " + std::to_string(rec.hostIfindex) + ")");
  SL_ASSIGN_OR_RETURN(auto hostRoutes, host.routes(AF_INET));
  SL_ASSIGN_OR_RETURN(auto hostRoutes6, host.routes(AF_INET6));
  hostRoutes.insert(hostRoutes.end(), hostRoutes6.begin(), hostRoutes6.end());
  SL_ASSIGN_OR_RETURN(auto hostNeigh, host.neighbours(hostLink->ifindex));
  auto podMac = net::parseMac(rec.podMac);
  if (!podMac) return broken("endpoint record of " + hostVeth + " has a malformed MAC");
  for (const auto& ip : rec.ips) {
    if (!hasRoute(hostRoutes, ip, std::nullopt, hostLink->ifindex))
      return broken("the host route " + ip.str() + " dev " + hostVeth + " is missing");
    if (!hasPermanentNeighbour(hostNeigh, ip.addr(), *podMac))
      return broken("the host neighbour entry of " + ip.addr().str() + " is missing or stale");
  }

  // Datapath: the attached program is the pinned one, and both map entries are ours.
  SL_ASSIGN_OR_RETURN(bpf::PinnedMaps maps, bpf::PinnedMaps::open(conf.bpfRoot));
  SL_ASSIGN_OR_RETURN(uint32_t atIngress, bpf::tcIngressProgId(hostLink->ifindex));
  SL_TRY(checkPinnedAttached(conf.bpfRoot, SL_PROG_FROM_POD, atIngress, hostVeth + " ingress"));
  SL_ASSIGN_OR_RETURN(uint32_t atEgress, bpf::tcEgressProgId(hostLink->ifindex));
  SL_TRY(checkPinnedAttached(conf.bpfRoot, SL_PROG_TO_POD, atEgress, hostVeth + " egress"));
  SL_ASSIGN_OR_RETURN(auto iface, maps.ifaces.lookup(static_cast<uint32_t>(hostLink->ifindex)));
  for (const auto& ip : rec.ips) {
    const sl_endpoint_key key = bpf::endpointKey(ip.addr());
    SL_ASSIGN_OR_RETURN(auto ep, maps.endpoints.lookup(key));
    if (!ep) return broken("sl_endpoints has no entry for " + ip.addr().str());
    if (static_cast<int>(ep->ifindex) != hostLink->ifindex ||
        !std::equal(podMac->begin(), podMac->end(), ep->pod_mac) ||
        !std::equal(hostLink->mac.begin(), hostLink->mac.end(), ep->host_mac))
      return broken("sl_endpoints[" + ip.addr().str() + "] does not describe " + hostVeth);
    const bool allowed =
        iface && (ip.addr().isV4()
                      ? (iface->flags & SL_IFACE_F_HAS_V4) && iface->ip4 == ip.addr().v4NetOrder()
                      : (iface->flags & SL_IFACE_F_HAS_V6) &&
                            std::memcmp(iface->ip6, ip.addr().bytes().data(), sizeof(iface->ip6)) == 0);
    if (!allowed)
      return broken("sl_ifaces[" + std::to_string(hostLink->ifindex) + "] does not allow " + ip.addr().str());
  }

  SL_TRY(checkPodSide(inv, rec, hostLink->mac));

  IpamClient ipam(inv);
  std::vector<net::IpAddr> ips;
  for (const auto& c : rec.ips) ips.push_back(c.addr());
  SL_TRY(ipam.check(ips));
  spdlog::info("CHECK passed");
  return okStatus();
}

}  // namespace sluice::plugin
