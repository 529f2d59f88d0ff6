// SPDX-License-Identifier: Apache-2.0
#include "node_setup.h"

#include <linux/if_addr.h>
#include <spdlog/spdlog.h>

#include "datapath_setup.h"
#include "gc.h"
#include "sluice/bpf/tc.h"
#include "sluice/cni/netlink.h"
#include "sysctl.h"

namespace sluice::agent {
namespace {

// Attaches progFd at ingress/egress unless that very program is already there (a replace
// is atomic anyway, but an unchanged attachment is not even touched).
Status attachIfDifferent(int ifindex, int progFd, bool ingress) {
  SL_ASSIGN_OR_RETURN(uint32_t want, bpf::progId(progFd));
  SL_ASSIGN_OR_RETURN(uint32_t have, ingress ? bpf::tcIngressProgId(ifindex) : bpf::tcEgressProgId(ifindex));
  if (have == want) return okStatus();
  SL_TRY(ingress ? bpf::attachTcIngress(ifindex, progFd) : bpf::attachTcEgress(ifindex, progFd));
  spdlog::info("attached prog {} at tc {} of ifindex {} (was {})", want, ingress ? "ingress" : "egress",
               ifindex, have);
  return okStatus();
}

// The underlay carries our programs (native routing's, or vxlan mode's sl_from_tunnel) through
// TCX where the kernel has it (no qdisc is added to the node's own device, and programs after
// ours still run), else at the clsact slot. Either way an attach replaces the Sluice program
// there in place, so a mode switch or an upgrade leaves no gap.
Status attachUnderlay(int ifindex, int progFd, bool ingress) {
  SL_ASSIGN_OR_RETURN(uint32_t want, bpf::progId(progFd));
  SL_ASSIGN_OR_RETURN(uint32_t have, ingress ? bpf::tcIngressProgId(ifindex) : bpf::tcEgressProgId(ifindex));
  if (have == want) return okStatus();
  auto tcx = ingress ? bpf::attachTcxIngress(ifindex, progFd) : bpf::attachTcxEgress(ifindex, progFd);
  if (!tcx.ok()) {
    spdlog::info("TCX attach on the underlay failed ({}): using the clsact slot", tcx.error().describe());
    SL_TRY(ingress ? bpf::attachTcIngress(ifindex, progFd) : bpf::attachTcEgress(ifindex, progFd));
  }
  spdlog::info("attached prog {} at {} of the underlay (ifindex {}, was {})", want, ingress ? "ingress" : "egress",
               ifindex, have);
  return okStatus();
}

// sl_to_native off the underlay (vxlan mode after a native one: sl_from_tunnel has replaced
// sl_from_native at ingress already); anything else attached there is left alone.
Status detachNativePrograms(int ifindex) {
  SL_ASSIGN_OR_RETURN(bool detached, detachUnderlayFrom(ifindex, /*tunnelToo=*/false));
  if (detached) spdlog::info("native-routing programs detached from the underlay (ifindex {})", ifindex);
  return okStatus();
}

// Clears one veth's SL_IFACE_F_UNTRANSLATED from a fresh read of its entry, changing nothing
// else (the entry read for the upgrade pass may be stale by now).
Status endUntranslatedPromise(const bpf::PinnedMaps& maps, uint32_t ifindex) {
  SL_ASSIGN_OR_RETURN(auto cur, maps.ifaces.lookup(ifindex));
  if (!cur || !(cur->flags & SL_IFACE_F_UNTRANSLATED)) return okStatus();
  sl_iface ended = *cur;
  ended.flags &= ~SL_IFACE_F_UNTRANSLATED;
  return maps.ifaces.update(ifindex, ended);
}

}  // namespace

Result<bool> detachUnderlayFrom(int ifindex, bool tunnelToo) {
  bool any = false;
  auto in = bpf::tcIngressProgId(ifindex);
  const std::string inName = in.ok() && *in != 0 ? bpf::progNameById(*in) : "";
  if (inName == SL_PROG_FROM_NATIVE || (tunnelToo && inName == SL_PROG_FROM_TUNNEL)) {
    SL_TRY(bpf::detachTcIngress(ifindex));
    any = true;
  }
  auto eg = bpf::tcEgressProgId(ifindex);
  if (eg.ok() && *eg != 0 && bpf::progNameById(*eg) == SL_PROG_TO_NATIVE) {
    SL_TRY(bpf::detachTcEgress(ifindex));
    any = true;
  }
  return any;
}

Result<NodeNetwork> setupNodeNetwork(const AgentOptions& opts, const bpf::Datapath& dp, const NodeInfo& self) {
  NodeNetwork n;
  n.nodeIp = self.internalIP;
  if (!n.nodeIp.isV4())
    return Error(CniCode::kInvalidConfig, "node " + self.name + " has no IPv4 InternalIP (the underlay is IPv4)");
  SL_ASSIGN_OR_RETURN(n.underlay, findUnderlay(n.nodeIp));
  const bool native = opts.mode == DatapathMode::kNative;
  n.podMtu = opts.mtu > 0 ? opts.mtu : n.underlay.mtu - (native ? 0 : kVxlanOverhead);
  if (n.podMtu < 576) return Error(CniCode::kInvalidConfig, "underlay MTU " + std::to_string(n.underlay.mtu) + " is too small");

  ConfigUpdate cfg;
  cfg.mode = native ? SL_MODE_NATIVE : SL_MODE_VXLAN;
  cfg.nodeIp4 = n.nodeIp.v4NetOrder();
  cfg.vni = opts.vni;
  cfg.underlayIfindex = static_cast<uint32_t>(n.underlay.ifindex);
  // The IP MTU of the path cross-node packets take: sluice_vxlan's, or the underlay's itself
  // in native mode (a --mtu above it must not let larger packets be redirected there).
  cfg.overlayMtu = static_cast<uint32_t>(native ? n.underlay.mtu : n.podMtu);
  SL_ASSIGN_OR_RETURN(cfg.natFlags, natFlagsFor(opts.natDetect));
  if (!native) {
    VxlanSpec spec;
    spec.port = opts.vxlanPort;
    spec.underlayIfindex = n.underlay.ifindex;
    spec.mtu = n.podMtu;
    SL_ASSIGN_OR_RETURN(auto vx, ensureVxlan(spec));
    n.overlayIfindex = vx.ifindex;
    if (vx.created) spdlog::info("created {} (ifindex {}, dstport {}, mtu {}, underlay {})", kVxlanName, vx.ifindex,
                                 opts.vxlanPort, n.podMtu, n.underlay.name);
    SL_TRY(attachIfDifferent(n.overlayIfindex, dp.fromOverlayFd(), true));
    SL_TRY(attachIfDifferent(n.overlayIfindex, dp.toOverlayFd(), false));
    SL_TRY(attachUnderlay(n.underlay.ifindex, dp.fromTunnelFd(), true));
    SL_TRY(detachNativePrograms(n.underlay.ifindex));
  } else {
    SL_TRY(attachUnderlay(n.underlay.ifindex, dp.fromNativeFd(), true));
    SL_TRY(attachUnderlay(n.underlay.ifindex, dp.toNativeFd(), false));
    // A node switched from vxlan mode: the overlay device would linger with nothing using it.
    SL_ASSIGN_OR_RETURN(bool removed, removeVxlan());
    if (removed) spdlog::info("removed {}: native routing does not use it", kVxlanName);
  }
  cfg.overlayIfindex = static_cast<uint32_t>(n.overlayIfindex);
  SL_TRY(applyDatapathSysctls(native ? std::string() : std::string(kVxlanName)));
  auto written = updateConfig(dp.maps().config, cfg);
  if (!written.ok()) return std::move(written).error();
  spdlog::info("node {}: ip {}{}, underlay {} (mtu {}), {} mode, pod mtu {}", self.name, n.nodeIp.str(),
               self.internalIP6.valid() ? " and " + self.internalIP6.str() : std::string(), n.underlay.name,
               n.underlay.mtu, modeName(opts.mode), n.podMtu);
  return n;
}

Result<bool> checkNodeNetwork(const AgentOptions& opts, const bpf::Datapath& dp, const NodeNetwork& n) {
  if (!linkAlive(n.underlay.ifindex, n.underlay.name)) return false;
  if (opts.mode == DatapathMode::kNative) {
    SL_TRY(attachUnderlay(n.underlay.ifindex, dp.fromNativeFd(), true));
    SL_TRY(attachUnderlay(n.underlay.ifindex, dp.toNativeFd(), false));
    SL_TRY(applyDatapathSysctls(""));
    return true;
  }
  if (ifindexOf(kVxlanName) != n.overlayIfindex) return false;
  SL_TRY(attachIfDifferent(n.overlayIfindex, dp.fromOverlayFd(), true));
  SL_TRY(attachIfDifferent(n.overlayIfindex, dp.toOverlayFd(), false));
  SL_TRY(attachUnderlay(n.underlay.ifindex, dp.fromTunnelFd(), true));
  SL_TRY(applyDatapathSysctls(kVxlanName));
  return true;
}

net::IpAddr nodeIp6Of(const net::Cidr& podCidr6) { return podCidr6.network().addr(); }

Status ensureOverlayIp6(int overlayIfindex, const std::optional<net::IpAddr>& want) {
  if (overlayIfindex <= 0) return okStatus();
  if (want) SL_TRY(cni::writeSysctl(std::string("net/ipv6/conf/") + kVxlanName + "/disable_ipv6", "0"));
  SL_ASSIGN_OR_RETURN(cni::Netlink nl, cni::Netlink::open());
  SL_ASSIGN_OR_RETURN(auto addrs, nl.addresses(overlayIfindex));
  bool have = false;
  for (const auto& a : addrs) {
    const auto& b = a.addr().bytes();
    if (!a.addr().isV6() || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)) continue;  // global ones only
    if (want && a == net::Cidr(*want, 128)) {
      have = true;
      continue;
    }
    SL_TRY(nl.deleteAddress(overlayIfindex, a));
    spdlog::info("removed {} from {}", a.str(), kVxlanName);
  }
  if (want && !have) {
    // NOARP: no duplicate detection would run anyway; NODAD says so.
    SL_TRY(nl.addAddress(overlayIfindex, net::Cidr(*want, 128), IFA_F_NODAD));
    spdlog::info("this node's IPv6 address: {} on {}", want->str(), kVxlanName);
  }
  return okStatus();
}

Result<int> upgradePodPrograms(const bpf::Datapath& dp) {
  SL_ASSIGN_OR_RETURN(uint32_t want, bpf::progId(dp.fromPodFd()));
  SL_ASSIGN_OR_RETURN(uint32_t wantEgress, bpf::progId(dp.toPodFd()));
  SL_ASSIGN_OR_RETURN(auto ifaces, dp.maps().ifaces.entries());
  int switched = 0;
  for (const auto& [ifindex, iface] : ifaces) {
    int idx = static_cast<int>(ifindex);
    if (!linkAlive(idx)) continue;
    auto have = bpf::tcIngressProgId(idx);
    if (!have.ok() || *have == 0) continue;  // not (or no longer) plumbed by the plugin
    auto haveEgress = bpf::tcEgressProgId(idx);
    const bool replaceIngress = *have != want;
    const bool replaceEgress = haveEgress.ok() && *haveEgress != wantEgress;
    // SL_IFACE_F_UNTRANSLATED holds only while an sl_to_pod that ends it has watched the veth
    // since its ADD: one of this code (a restart of the same build loads the same programs
    // afresh) keeps it; any other, or none, ends it before the new programs run.
    const bool watcherKept =
        haveEgress.ok() && (*haveEgress == wantEgress || bpf::sameProgramCode(*haveEgress, wantEgress));
    if (!watcherKept && (iface.flags & SL_IFACE_F_UNTRANSLATED)) {
      if (auto st = endUntranslatedPromise(dp.maps(), ifindex); !st.ok()) {
        spdlog::warn("upgrade: end the untranslated promise of ifindex {}: {}", idx, st.error().describe());
        continue;  // the old programs stay: the new from_pod would trust the flag
      }
    }
    bool changed = false;
    if (replaceIngress) {
      if (auto st = bpf::attachTcIngress(idx, dp.fromPodFd()); !st.ok()) {
        spdlog::warn("upgrade sl_from_pod on ifindex {}: {}", idx, st.error().describe());
        continue;
      }
      changed = true;
    }
    // Veths plumbed before sl_to_pod existed get it too (flow records need it).
    if (replaceEgress) {
      if (auto st = bpf::attachTcEgress(idx, dp.toPodFd()); !st.ok()) {
        spdlog::warn("upgrade sl_to_pod on ifindex {}: {}", idx, st.error().describe());
        continue;
      }
      changed = true;
    }
    if (changed) ++switched;
  }
  if (switched > 0) spdlog::info("sl_from_pod/sl_to_pod replaced on {} pod veths", switched);
  return switched;
}

}  // namespace sluice::agent
