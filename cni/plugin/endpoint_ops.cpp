// SPDX-License-Identifier: Apache-2.0
#include "endpoint_ops.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "sluice/cni/hash.h"
#include "sluice/cni/netlink.h"
#include "sluice/cni/netns.h"

namespace sluice::plugin {

net::IpAddr gatewayV4() { return *net::IpAddr::parse("169.254.1.1"); }
net::IpAddr gatewayV6() { return *net::IpAddr::parse("fe80::1"); }

Result<std::optional<bpf::PinnedMaps>> openMapsIfPinned(const std::string& bpfRoot) {
  auto maps = bpf::PinnedMaps::open(bpfRoot);
  if (maps.ok()) return std::optional<bpf::PinnedMaps>(std::move(maps).value());
  if (maps.error().code() == CniCode::kDatapathMissing) {
    spdlog::warn("{}: no map entries to remove", maps.error().describe());
    return std::optional<bpf::PinnedMaps>();
  }
  return std::move(maps).error();
}

namespace {

// Erases the sl_endpoints entry of ip if it still belongs to one of our ifindexes.
Status eraseEndpointEntry(const bpf::PinnedMaps& maps, const net::IpAddr& ip,
                          const std::set<int>& ifindexes) {
  const sl_endpoint_key key = bpf::endpointKey(ip);
  SL_ASSIGN_OR_RETURN(auto ep, maps.endpoints.lookup(key));
  if (!ep) return okStatus();
  if (!ifindexes.count(static_cast<int>(ep->ifindex))) {
    spdlog::warn("sl_endpoints[{}] belongs to ifindex {} now, not to this attachment: kept",
                 ip.str(), ep->ifindex);
    return okStatus();
  }
  SL_TRY(maps.endpoints.erase(key));
  spdlog::info("removed sl_endpoints[{}]", ip.str());
  return okStatus();
}

// Erases sl_ifaces[ifindex] if it still describes one of our addresses (an ifindex can be
// reused by a newer veth once ours is gone).
Status eraseIfaceEntry(const bpf::PinnedMaps& maps, int ifindex,
                       const std::vector<net::IpAddr>& ips, bool vethStillOurs) {
  const auto key = static_cast<uint32_t>(ifindex);
  SL_ASSIGN_OR_RETURN(auto iface, maps.ifaces.lookup(key));
  if (!iface) return okStatus();
  bool ours = vethStillOurs;
  for (const auto& ip : ips) {
    if (ip.isV4() && (iface->flags & SL_IFACE_F_HAS_V4) && iface->ip4 == ip.v4NetOrder()) ours = true;
    if (ip.isV6() && (iface->flags & SL_IFACE_F_HAS_V6) &&
        std::memcmp(iface->ip6, ip.bytes().data(), sizeof(iface->ip6)) == 0)
      ours = true;
  }
  if (!ours) {
    spdlog::warn("sl_ifaces[{}] describes another pod now: kept", ifindex);
    return okStatus();
  }
  SL_TRY(maps.ifaces.erase(key));
  spdlog::info("removed sl_ifaces[{}]", ifindex);
  return okStatus();
}

}  // namespace

Status teardownAttachment(const Invocation& inv, const Attachment& att,
                          const bpf::PinnedMaps* maps, IpamClient* ipam) {
  const auto& conf = inv.conf;
  const std::string hostVeth = cni::hostVethName(att.containerId, att.ifname);

  auto rec = cni::readEndpointRecord(conf.stateDir, hostVeth);
  std::optional<cni::EndpointRecord> record;
  if (rec.ok()) {
    record = std::move(rec).value();
  } else {
    spdlog::warn("ignoring unreadable endpoint record: {}", rec.error().describe());
  }

  SL_ASSIGN_OR_RETURN(cni::Netlink host, cni::Netlink::open());
  SL_ASSIGN_OR_RETURN(auto hostLink, host.link(hostVeth));

  // What this attachment may own: the record's view and the kernel's view (they differ after
  // a crash between steps of ADD).
  std::vector<net::IpAddr> ips;
  if (record)
    for (const auto& c : record->ips) ips.push_back(c.addr());
  if (ipam && ips.empty()) {
    auto held = ipam->held();
    if (held.ok()) ips = *held;
  }
  std::set<int> ifindexes;
  if (record && record->hostIfindex > 0) ifindexes.insert(record->hostIfindex);
  if (hostLink) ifindexes.insert(hostLink->ifindex);

  if (maps) {
    for (const auto& ip : ips) SL_TRY(eraseEndpointEntry(*maps, ip, ifindexes));
    for (int idx : ifindexes)
      SL_TRY(eraseIfaceEntry(*maps, idx, ips, hostLink && hostLink->ifindex == idx));
  }

  // The host veth takes its peer, routes and neighbours with it.
  SL_ASSIGN_OR_RETURN(bool removed, host.deleteLink(hostVeth));
  if (removed) spdlog::info("deleted host veth {}", hostVeth);

  // A pod end left in the pod netns is ours by name.
  const std::string netnsPath = !att.netns.empty() ? att.netns : std::string();
  if (!netnsPath.empty()) {
    auto ns = cni::openNetns(netnsPath);
    if (ns.ok()) {
      auto podSide = cni::inNetns(ns->get(), [&]() -> Status {
        SL_ASSIGN_OR_RETURN(cni::Netlink pod, cni::Netlink::open());
        SL_ASSIGN_OR_RETURN(auto l, pod.link(att.ifname));
        if (l && l->kind == "veth") {
          SL_TRY(pod.deleteLink(l->ifindex));
          spdlog::info("deleted {} in the pod netns", att.ifname);
        }
        return okStatus();
      });
      if (!podSide.ok()) return std::move(podSide).error();
    } else {
      spdlog::info("pod netns {} is gone or not a netns: nothing to remove there", netnsPath);
    }
  }
  if (ipam) SL_TRY(ipam->del());

  SL_ASSIGN_OR_RETURN(bool hadRecord, cni::removeEndpointRecord(conf.stateDir, hostVeth));
  if (hadRecord) spdlog::info("removed endpoint record {}", hostVeth);
  return okStatus();
}

}  // namespace sluice::plugin
