// SPDX-License-Identifier: Apache-2.0
// ADD: all-or-nothing pod plumbing (DESIGN §4). Each step below pushes its undo action and is
// followed by its fault-injection point; the steps' names are docs/internals.md's.
#include <linux/if_addr.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <cstring>

#include "endpoint_ops.h"
#include "ipam_client.h"
#include "plugin.h"
#include "rollback.h"
#include "sluice/bpf/maps.h"
#include "sluice/bpf/tc.h"
#include "sluice/cni/endpoint.h"
#include "sluice/cni/hash.h"
#include "sluice/cni/netlink.h"
#include "sluice/cni/netns.h"
#include "sluice/cni/types.h"

namespace sluice::plugin {
namespace {

uint64_t boottimeNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// "sl_endpoints is full (65536 entries): no room for this pod" or just the map's name.
std::string mapFullHint(const char* map, const Error& e, int capacity) {
  if (e.code() != CniCode::kMapFull) return map;
  return std::string(map) + " is full (" + std::to_string(capacity) + " entries): no room for this pod";
}

// Host-side settings, set explicitly: systemd and distributions change the defaults of new
// links. IPv4's travel with the message that sets the link up (IFLA_INET_CONF: no trip through
// /proc/sys each, and none of the route cache flush a write of accept_local there causes).
const std::vector<std::pair<int, uint32_t>> kHostIpv4Conf = {
    {IPV4_DEVCONF_FORWARDING, 1},    // pods' traffic to the stack is routed on
    {IPV4_DEVCONF_RP_FILTER, 0},     // redirected/encapsulated traffic
    {IPV4_DEVCONF_ACCEPT_LOCAL, 0},
};

// IPv6 has no such attribute. A pod is no router of the node: its router advertisements and
// redirects (neighbour discovery reaches the host whatever the source) must not give the node
// routes or addresses. A kernel without IPv6 has nothing to protect, unless the pod is to get an
// IPv6 address.
Status hostIpv6Sysctls(const std::string& veth, bool ipv6) {
  const std::string base6 = "net/ipv6/conf/" + veth + "/";
  for (const char* key : {"accept_ra", "accept_redirects"}) {
    Status st = cni::writeSysctl(base6 + key, "0");
    if (!st.ok() && (ipv6 || st.error().errnum() != ENOENT)) return st;
  }
  if (ipv6) SL_TRY(cni::writeSysctl(base6 + "disable_ipv6", "0"));
  return okStatus();
}

// The pod interface must take IPv6 (a namespace may start with it disabled). In the pod netns.
Status podIpv6Sysctls(int podNs, const std::string& ifname) {
  return cni::inNetns(podNs, [&]() -> Status {
    return cni::writeSysctl("net/ipv6/conf/" + ifname + "/disable_ipv6", "0");
  });
}

}  // namespace

Result<std::string> cmdAdd(const Invocation& inv) {
  const auto& conf = inv.conf;
  const auto& env = inv.env;
  if (!conf.ipam) return Error(CniCode::kInvalidConfig, "invalid network configuration: ipam: missing");

  // Everything that can be checked before creating anything is checked first.
  std::optional<cni::CniResult> prevResult;
  if (conf.prevResult) {
    SL_ASSIGN_OR_RETURN(cni::CniResult prev, cni::resultFromJson(*conf.prevResult, "prevResult"));
    prevResult = std::move(prev);
  }
  SL_ASSIGN_OR_RETURN(Fd podNs, cni::openNetns(env.netns));
  SL_ASSIGN_OR_RETURN(bpf::PinnedMaps maps, bpf::PinnedMaps::open(conf.bpfRoot));
  SL_ASSIGN_OR_RETURN(Fd prog, bpf::openPinned(bpf::pinPath(conf.bpfRoot, SL_PROG_FROM_POD)));
  SL_ASSIGN_OR_RETURN(Fd egressProg, bpf::openPinned(bpf::pinPath(conf.bpfRoot, SL_PROG_TO_POD)));
  SL_ASSIGN_OR_RETURN(cni::Netlink host, cni::Netlink::open());
  SL_ASSIGN_OR_RETURN(Fd hostNs, cni::currentNetns());
  SL_ASSIGN_OR_RETURN(bool sameNs, cni::sameNetns(hostNs.get(), podNs.get()));
  if (sameNs) return Error(CniCode::kInvalidEnv, "CNI_NETNS " + env.netns + " is the host's own netns");
  if (env.path.empty() && !conf.ipam->builtin())
    return Error(CniCode::kInvalidEnv, "CNI_PATH is not set: cannot run ipam " + conf.ipam->type);

  const std::string hostVeth = cni::hostVethName(env.containerId, env.ifname);
  IpamClient ipam(inv);

  // One netlink socket in the pod netns for all of ADD (a socket stays in the netns it was
  // opened in). Declared before the rollback so that its undo actions can still use it.
  SL_ASSIGN_OR_RETURN(const cni::Netlink pod,
                      cni::inNetns(podNs.get(), [] { return cni::Netlink::open(); }));
  // An interface of that name in the container is an error (SPEC: ADD), ours included: ADD
  // repeated without DEL leaves a working pod alone, and the runtime's DEL clears it.
  {
    SL_ASSIGN_OR_RETURN(auto busy, pod.link(env.ifname));
    if (busy)
      return Error(CniCode::kInternal, "the pod netns already has an interface " + env.ifname,
                   EEXIST);
  }
  // Host-side leftovers of this very attachment whose pod interface is gone (an ADD that
  // crashed, a pod netns made anew) are cleared; the address reservation is kept and handed
  // out again.
  {
    SL_ASSIGN_OR_RETURN(auto stale, host.link(hostVeth));
    SL_ASSIGN_OR_RETURN(auto staleRecord, cni::readEndpointRecord(conf.stateDir, hostVeth));
    if (stale || staleRecord) {
      spdlog::warn("leftovers of this attachment (host veth {} {}): clearing them", hostVeth,
                   stale ? "exists" : "is gone but its record is left");
      SL_TRY(teardownAttachment(inv, {env.containerId, env.ifname, env.netns}, &maps, nullptr));
    }
  }

  Rollback undo;

  // ipam
  SL_ASSIGN_OR_RETURN(IpamLease lease, ipam.add());
  undo.push("ipam", [&ipam] { return ipam.del(); });
  SL_TRY(failPoint("ipam"));
  // One address per family: sl_ifaces holds one IPv4 and one IPv6 address per veth.
  std::optional<net::IpAddr> podIp4, podIp6;
  for (const auto& ip : lease.ips) {
    auto& slot = ip.address.addr().isV4() ? podIp4 : podIp6;
    if (!slot) slot = ip.address.addr();
    else spdlog::warn("ipam address {} not plumbed: one address per family per pod", ip.address.str());
  }
  if (!podIp4 && !podIp6)
    return Error(CniCode::kInvalidConfig, "ipam " + ipam.type() + " returned no address");
  // The pod's addresses as host prefixes (/32, /128), IPv4 first.
  std::vector<net::Cidr> podCidrs;
  if (podIp4) podCidrs.emplace_back(*podIp4, 32);
  if (podIp6) podCidrs.emplace_back(*podIp6, 128);

  // veth: the pod end is born in the pod netns under its final name (no move between
  // namespaces, no rename: each waits for an RCU grace period under the RTNL lock).
  SL_TRY(host.createVethPair(hostVeth, env.ifname, conf.mtu, podNs.get()));
  undo.push("veth", [&host, hostVeth]() -> Status {
    SL_TRY(host.deleteLink(hostVeth));  // the peer goes with it, wherever it is
    return okStatus();
  });
  SL_ASSIGN_OR_RETURN(auto hostLink, host.link(hostVeth));
  if (!hostLink) return Error(CniCode::kNetlink, "veth " + hostVeth + " vanished right after its creation");
  const int hostIfindex = hostLink->ifindex;
  // Its clsact qdisc now, its filters at "attach": a grace period often passes in between,
  // and then attaching waits for none (bpf/tc.h).
  const bool shapedIn = conf.bandwidth && conf.bandwidth->shapesIngress();
  const bool shapedOut = conf.bandwidth && conf.bandwidth->shapesEgress();
  if (!shapedIn && !shapedOut) SL_TRY(bpf::createClsact(hostIfindex));
  SL_TRY(failPoint("veth"));

  // pod-link: the pod end up. Undone by deleting the host end.
  undo.push("pod-link", [] { return okStatus(); });
  SL_ASSIGN_OR_RETURN(auto podLink, pod.link(env.ifname));
  if (!podLink) return Error(CniCode::kNetlink, env.ifname + " did not arrive in the pod netns");
  const int podIfindex = podLink->ifindex;
  SL_TRY(pod.setUp(podIfindex));
  SL_TRY(failPoint("pod-link"));

  // pod-addr: an IPv6 address without duplicate detection, usable at once (it is ours alone).
  if (podIp6) SL_TRY(podIpv6Sysctls(podNs.get(), env.ifname));
  undo.push("pod-addr", [&pod, podIfindex, podCidrs]() -> Status {
    for (const auto& c : podCidrs) SL_TRY(pod.deleteAddress(podIfindex, c));
    return okStatus();
  });
  for (const auto& c : podCidrs) SL_TRY(pod.addAddress(podIfindex, c, c.addr().isV6() ? IFA_F_NODAD : 0));
  SL_TRY(failPoint("pod-addr"));

  // pod-routes: gateway on-link, default via it, and its MAC pinned (no ARP or neighbour
  // discovery needed). IPv6's gateway is link-local: on-link by its nature.
  std::vector<cni::RouteSpec> podRoutes;  // in the order they are added
  std::vector<net::IpAddr> gateways;
  if (podIp4) {
    const net::IpAddr gw = gatewayV4();
    podRoutes.push_back({net::Cidr(gw, 32), std::nullopt, podIfindex, RT_SCOPE_LINK, false});
    podRoutes.push_back({*net::Cidr::parse("0.0.0.0/0"), gw, podIfindex, RT_SCOPE_UNIVERSE, true});
    gateways.push_back(gw);
  }
  if (podIp6) {
    const net::IpAddr gw = gatewayV6();
    podRoutes.push_back({*net::Cidr::parse("::/0"), gw, podIfindex, RT_SCOPE_UNIVERSE, true});
    gateways.push_back(gw);
  }
  undo.push("pod-routes", [&pod, podIfindex, gateways, podRoutes]() -> Status {
    for (const auto& gw : gateways) SL_TRY(pod.deleteNeighbour(podIfindex, gw));
    for (auto it = podRoutes.rbegin(); it != podRoutes.rend(); ++it) SL_TRY(pod.deleteRoute(*it));
    return okStatus();
  });
  for (const auto& r : podRoutes) SL_TRY(pod.addRoute(r));
  for (const auto& gw : gateways) SL_TRY(pod.addPermanentNeighbour(podIfindex, gw, hostLink->mac));
  SL_TRY(failPoint("pod-routes"));

  // attach: the pinned programs, by fd; nothing is loaded or verified per pod. from_pod at
  // ingress (what the pod sends), to_pod at egress (what the host stack delivers to it).
  // Before the host end is up: a clsact qdisc grafted on a running device deactivates it,
  // which waits for an RCU grace period.
  undo.push("attach", [hostIfindex]() -> Status {
    SL_TRY(bpf::detachTcEgress(hostIfindex));
    return bpf::detachTcIngress(hostIfindex);
  });
  // A pod the chained bandwidth plugin shapes gets its programs through TCX: bandwidth needs
  // the veth's ingress qdisc slot (clsact would hold it) and its root qdisc must see the
  // traffic (the map flags below).
  if (shapedIn || shapedOut) {
    SL_TRY(bpf::attachTcxIngress(hostIfindex, prog.get()));
    SL_TRY(bpf::attachTcxEgress(hostIfindex, egressProg.get()));
  } else {
    SL_TRY(bpf::attachTcPair(hostIfindex, prog.get(), egressProg.get()));
  }
  SL_TRY(failPoint("attach"));

  // ifaces-map: the anti-spoofing identity of the veth, and the promise that no flow the stack
  // translated has reached the pod yet (sl_to_pod ends it). Written before the host route
  // exists, so that nothing the stack delivers can arrive before the promise it must end.
  sl_iface iface{};
  iface.flags = SL_IFACE_F_UNTRANSLATED | (shapedOut ? SL_IFACE_F_QDISC_EGRESS : 0u);
  if (podIp4) {
    iface.flags |= SL_IFACE_F_HAS_V4;
    iface.ip4 = podIp4->v4NetOrder();
  }
  if (podIp6) {
    iface.flags |= SL_IFACE_F_HAS_V6;
    std::memcpy(iface.ip6, podIp6->bytes().data(), sizeof(iface.ip6));
  }
  if (Status st = maps.ifaces.update(static_cast<uint32_t>(hostIfindex), iface); !st.ok()) {
    const std::string hint = mapFullHint("sl_ifaces", st.error(), SL_MAX_IFACES);
    return std::move(st).error().context(hint);
  }
  undo.push("ifaces-map", [&maps, hostIfindex]() -> Status {
    SL_TRY(maps.ifaces.erase(static_cast<uint32_t>(hostIfindex)));
    return okStatus();
  });
  SL_TRY(failPoint("ifaces-map"));

  // host-route: sysctls, up, a host route to each pod address and its MAC.
  SL_TRY(hostIpv6Sysctls(hostVeth, podIp6.has_value()));
  SL_TRY(host.setUp(hostIfindex, kHostIpv4Conf));
  std::vector<cni::RouteSpec> hostRoutes;
  for (const auto& c : podCidrs) hostRoutes.push_back({c, std::nullopt, hostIfindex, RT_SCOPE_LINK, false});
  undo.push("host-route", [&host, hostIfindex, podCidrs, hostRoutes]() -> Status {
    for (const auto& c : podCidrs) SL_TRY(host.deleteNeighbour(hostIfindex, c.addr()));
    for (const auto& r : hostRoutes) SL_TRY(host.deleteRoute(r));
    return okStatus();
  });
  for (const auto& r : hostRoutes) SL_TRY(host.addRoute(r));
  for (const auto& c : podCidrs) SL_TRY(host.addPermanentNeighbour(hostIfindex, c.addr(), podLink->mac));
  SL_TRY(failPoint("host-route"));

  // endpoint-record
  cni::EndpointRecord rec;
  rec.containerId = env.containerId;
  rec.ifName = env.ifname;
  rec.netns = env.netns;
  rec.hostVeth = hostVeth;
  rec.hostIfindex = hostIfindex;
  rec.podMac = net::formatMac(podLink->mac.data());
  rec.hostMac = net::formatMac(hostLink->mac.data());
  rec.ips = podCidrs;
  rec.podNamespace = env.args.podNamespace;
  rec.podName = env.args.podName;
  rec.podUid = env.args.podUid;
  rec.network = conf.name;
  rec.ipamType = ipam.type();
  rec.created = cni::rfc3339Now();
  SL_TRY(cni::writeEndpointRecord(conf.stateDir, rec));
  undo.push("endpoint-record", [&conf, hostVeth]() -> Status {
    SL_TRY(cni::removeEndpointRecord(conf.stateDir, hostVeth));
    return okStatus();
  });
  SL_TRY(failPoint("endpoint-record"));

  // endpoints-map: from here on other pods' traffic is redirected straight to this one.
  sl_endpoint ep{};
  ep.ifindex = static_cast<uint32_t>(hostIfindex);
  ep.flags = shapedIn ? SL_EP_F_VIA_VETH : SL_EP_F_NONE;
  std::copy(podLink->mac.begin(), podLink->mac.end(), ep.pod_mac);
  std::copy(hostLink->mac.begin(), hostLink->mac.end(), ep.host_mac);
  ep.created_ns = boottimeNs();
  std::vector<sl_endpoint_key> keys;
  for (const auto& c : podCidrs) keys.push_back(bpf::endpointKey(c.addr()));
  undo.push("endpoints-map", [&maps, keys]() -> Status {
    for (const auto& key : keys) SL_TRY(maps.endpoints.erase(key));
    return okStatus();
  });
  for (const auto& key : keys) {
    if (Status st = maps.endpoints.update(key, ep); !st.ok()) {
      const std::string hint = mapFullHint("sl_endpoints", st.error(), SL_MAX_ENDPOINTS);
      return std::move(st).error().context(hint);
    }
  }
  SL_TRY(failPoint("endpoints-map"));

  undo.commit();
  std::string addrs;
  for (const auto& c : podCidrs) addrs += (addrs.empty() ? "" : ", ") + c.str();
  spdlog::info("ADD done: {} on {} (ifindex {}), pod mac {}{}", addrs, hostVeth, hostIfindex,
               rec.podMac, shapedIn || shapedOut ? ", shaped by a chained plugin (TCX)" : "");

  // A plugin earlier in the chain keeps what it reported; ours is appended.
  cni::CniResult result;
  if (prevResult) result = *prevResult;
  const int podIndex = static_cast<int>(result.interfaces.size()) + 1;
  result.interfaces.push_back({hostVeth, rec.hostMac, "", conf.mtu});
  result.interfaces.push_back({env.ifname, rec.podMac, env.netns, conf.mtu});
  for (const auto& c : podCidrs)
    result.ips.push_back({c, c.addr().isV4() ? gatewayV4() : gatewayV6(), podIndex});
  if (podIp4) result.routes.push_back({*net::Cidr::parse("0.0.0.0/0"), gatewayV4()});
  if (podIp6) result.routes.push_back({*net::Cidr::parse("::/0"), gatewayV6()});
  if (!conf.dns.empty()) result.dns = conf.dns;
  else if (!lease.dns.empty()) result.dns = lease.dns;
  return cni::resultToJson(result, conf.cniVersion).dump();
}

}  // namespace sluice::plugin
