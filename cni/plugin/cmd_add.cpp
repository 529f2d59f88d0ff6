// SPDX-License-Identifier: Apache-2.0
// ADD: all-or-nothing pod plumbing (DESIGN §4). Each step below pushes its undo action and is
// followed by its fault-injection point; the steps' names are docs/internals.md's.
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <time.h>

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

// Host-side sysctls, set explicitly: systemd and distributions change the defaults of new links.
Status hostSysctls(const std::string& veth) {
  const std::string base = "net/ipv4/conf/" + veth + "/";
  SL_TRY(cni::writeSysctl(base + "forwarding", "1"));  // pods' traffic to the stack is routed on
  SL_TRY(cni::writeSysctl(base + "rp_filter", "0"));   // redirected/encapsulated traffic
  SL_TRY(cni::writeSysctl(base + "accept_local", "0"));
  return okStatus();
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
  const std::string peerTmp = peerTempName(env.containerId, env.ifname);
  IpamClient ipam(inv);

  // Leftovers of this very attachment (an ADD that crashed, or ADD repeated without DEL) are
  // cleared first; its address reservation is kept and handed out again.
  {
    SL_ASSIGN_OR_RETURN(auto stale, host.link(hostVeth));
    SL_ASSIGN_OR_RETURN(auto staleRecord, cni::readEndpointRecord(conf.stateDir, hostVeth));
    if (stale || staleRecord) {
      spdlog::warn("attachment already plumbed (host veth {} {}): replacing it", hostVeth,
                   stale ? "exists" : "is gone but its record is left");
      SL_TRY(teardownAttachment(inv, {env.containerId, env.ifname, env.netns}, &maps, nullptr));
    }
  }
  {
    auto busy = cni::inNetns(podNs.get(), [&]() -> Result<bool> {
      SL_ASSIGN_OR_RETURN(cni::Netlink pod, cni::Netlink::open());
      SL_ASSIGN_OR_RETURN(auto l, pod.link(env.ifname));
      return l.has_value();
    });
    if (!busy.ok()) return std::move(busy).error();
    if (*busy)
      return Error(CniCode::kInternal, "the pod netns already has an interface " + env.ifname,
                   EEXIST);
  }

  // Declared before the rollback so that its undo actions can still use it.
  std::optional<cni::Netlink> podNl;
  Rollback undo;

  // ipam
  SL_ASSIGN_OR_RETURN(IpamLease lease, ipam.add());
  undo.push("ipam", [&ipam] { return ipam.del(); });
  SL_TRY(failPoint("ipam"));
  std::optional<net::IpAddr> podIp;
  for (const auto& ip : lease.ips) {
    if (ip.address.addr().isV4() && !podIp) podIp = ip.address.addr();
    else spdlog::warn("ipam address {} not plumbed: one IPv4 address per pod for now", ip.address.str());
  }
  if (!podIp)
    return Error(CniCode::kInvalidConfig, "ipam " + ipam.type() + " returned no IPv4 address");
  const net::Cidr podCidr(*podIp, 32);

  // veth: the pod end is born in the pod netns (no move between namespaces).
  SL_TRY(host.createVethPair(hostVeth, peerTmp, conf.mtu, podNs.get()));
  undo.push("veth", [&host, hostVeth]() -> Status {
    SL_TRY(host.deleteLink(hostVeth));  // the peer goes with it, wherever it is
    return okStatus();
  });
  SL_ASSIGN_OR_RETURN(auto hostLink, host.link(hostVeth));
  if (!hostLink) return Error(CniCode::kNetlink, "veth " + hostVeth + " vanished right after its creation");
  const int hostIfindex = hostLink->ifindex;
  SL_TRY(failPoint("veth"));

  // move: the pod end renamed to CNI_IFNAME and up. Undone by deleting the host end.
  undo.push("move", [] { return okStatus(); });
  {
    auto opened = cni::inNetns(podNs.get(), [] { return cni::Netlink::open(); });
    if (!opened.ok()) return std::move(opened).error();
    podNl.emplace(std::move(opened).value());
  }
  const cni::Netlink& pod = *podNl;
  SL_ASSIGN_OR_RETURN(auto moved, pod.link(peerTmp));
  if (!moved) return Error(CniCode::kNetlink, peerTmp + " did not arrive in the pod netns");
  const int podIfindex = moved->ifindex;
  SL_TRY(pod.rename(podIfindex, env.ifname));
  SL_TRY(pod.setUp(podIfindex));
  SL_ASSIGN_OR_RETURN(auto podLink, pod.link(podIfindex));
  if (!podLink) return Error(CniCode::kNetlink, env.ifname + " vanished from the pod netns");
  SL_TRY(failPoint("move"));

  // pod-addr
  SL_TRY(pod.addAddress(podIfindex, podCidr));
  undo.push("pod-addr", [&pod, podIfindex, podCidr]() -> Status {
    SL_TRY(pod.deleteAddress(podIfindex, podCidr));
    return okStatus();
  });
  SL_TRY(failPoint("pod-addr"));

  // pod-routes: gateway on-link, default via it, and its MAC pinned (no ARP needed).
  const net::IpAddr gw = gatewayV4();
  const cni::RouteSpec gwRoute{net::Cidr(gw, 32), std::nullopt, podIfindex, RT_SCOPE_LINK, false};
  const cni::RouteSpec defRoute{*net::Cidr::parse("0.0.0.0/0"), gw, podIfindex, RT_SCOPE_UNIVERSE, true};
  SL_TRY(pod.addRoute(gwRoute));
  SL_TRY(pod.addRoute(defRoute));
  SL_TRY(pod.addPermanentNeighbour(podIfindex, gw, hostLink->mac));
  undo.push("pod-routes", [&pod, podIfindex, gw, gwRoute, defRoute]() -> Status {
    SL_TRY(pod.deleteNeighbour(podIfindex, gw));
    SL_TRY(pod.deleteRoute(defRoute));
    SL_TRY(pod.deleteRoute(gwRoute));
    return okStatus();
  });
  SL_TRY(failPoint("pod-routes"));

  // host-route: sysctls, up, the /32 to the pod and its MAC.
  SL_TRY(hostSysctls(hostVeth));
  SL_TRY(host.setUp(hostIfindex));
  const cni::RouteSpec hostRoute{podCidr, std::nullopt, hostIfindex, RT_SCOPE_LINK, false};
  SL_TRY(host.addRoute(hostRoute));
  SL_TRY(host.addPermanentNeighbour(hostIfindex, *podIp, podLink->mac));
  undo.push("host-route", [&host, hostIfindex, ip = *podIp, hostRoute]() -> Status {
    SL_TRY(host.deleteNeighbour(hostIfindex, ip));
    SL_TRY(host.deleteRoute(hostRoute));
    return okStatus();
  });
  SL_TRY(failPoint("host-route"));

  // attach: the pinned programs, by fd; nothing is loaded or verified per pod. from_pod at
  // ingress (what the pod sends), to_pod at egress (what the host stack delivers to it).
  undo.push("attach", [hostIfindex]() -> Status {
    SL_TRY(bpf::detachTcEgress(hostIfindex));
    return bpf::detachTcIngress(hostIfindex);
  });
  // A pod the chained bandwidth plugin shapes gets its programs through TCX: bandwidth needs
  // the veth's ingress qdisc slot (clsact would hold it) and its root qdisc must see the
  // traffic (the map flags below).
  const bool shapedIn = conf.bandwidth && conf.bandwidth->shapesIngress();
  const bool shapedOut = conf.bandwidth && conf.bandwidth->shapesEgress();
  if (shapedIn || shapedOut) {
    SL_TRY(bpf::attachTcxIngress(hostIfindex, prog.get()));
    SL_TRY(bpf::attachTcxEgress(hostIfindex, egressProg.get()));
  } else {
    SL_TRY(bpf::attachTcIngress(hostIfindex, prog.get()));
    SL_TRY(bpf::attachTcEgress(hostIfindex, egressProg.get()));
  }
  SL_TRY(failPoint("attach"));

  // ifaces-map: the anti-spoofing identity of the veth.
  sl_iface iface{};
  iface.flags = SL_IFACE_F_HAS_V4 | (shapedOut ? SL_IFACE_F_QDISC_EGRESS : 0u);
  iface.ip4 = podIp->v4NetOrder();
  if (Status st = maps.ifaces.update(static_cast<uint32_t>(hostIfindex), iface); !st.ok()) {
    const std::string hint = mapFullHint("sl_ifaces", st.error(), SL_MAX_IFACES);
    return std::move(st).error().context(hint);
  }
  undo.push("ifaces-map", [&maps, hostIfindex]() -> Status {
    SL_TRY(maps.ifaces.erase(static_cast<uint32_t>(hostIfindex)));
    return okStatus();
  });
  SL_TRY(failPoint("ifaces-map"));

  // endpoint-record
  cni::EndpointRecord rec;
  rec.containerId = env.containerId;
  rec.ifName = env.ifname;
  rec.netns = env.netns;
  rec.hostVeth = hostVeth;
  rec.hostIfindex = hostIfindex;
  rec.podMac = net::formatMac(podLink->mac.data());
  rec.hostMac = net::formatMac(hostLink->mac.data());
  rec.ips = {podCidr};
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
  const sl_endpoint_key key = bpf::endpointKey(*podIp);
  sl_endpoint ep{};
  ep.ifindex = static_cast<uint32_t>(hostIfindex);
  ep.flags = shapedIn ? SL_EP_F_VIA_VETH : SL_EP_F_NONE;
  std::copy(podLink->mac.begin(), podLink->mac.end(), ep.pod_mac);
  std::copy(hostLink->mac.begin(), hostLink->mac.end(), ep.host_mac);
  ep.created_ns = boottimeNs();
  if (Status st = maps.endpoints.update(key, ep); !st.ok()) {
    const std::string hint = mapFullHint("sl_endpoints", st.error(), SL_MAX_ENDPOINTS);
    return std::move(st).error().context(hint);
  }
  undo.push("endpoints-map", [&maps, key]() -> Status {
    SL_TRY(maps.endpoints.erase(key));
    return okStatus();
  });
  SL_TRY(failPoint("endpoints-map"));

  undo.commit();
  spdlog::info("ADD done: {} on {} (ifindex {}), pod mac {}{}", podCidr.str(), hostVeth, hostIfindex,
               rec.podMac, shapedIn || shapedOut ? ", shaped by a chained plugin (TCX)" : "");

  // A plugin earlier in the chain keeps what it reported; ours is appended.
  cni::CniResult result;
  if (prevResult) result = *prevResult;
  const int podIndex = static_cast<int>(result.interfaces.size()) + 1;
  result.interfaces.push_back({hostVeth, rec.hostMac, "", conf.mtu});
  result.interfaces.push_back({env.ifname, rec.podMac, env.netns, conf.mtu});
  result.ips.push_back({podCidr, gw, podIndex});
  result.routes.push_back({*net::Cidr::parse("0.0.0.0/0"), gw});
  if (!conf.dns.empty()) result.dns = conf.dns;
  else if (!lease.dns.empty()) result.dns = lease.dns;
  return cni::resultToJson(result, conf.cniVersion).dump();
}

}  // namespace sluice::plugin
