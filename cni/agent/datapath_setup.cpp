// SPDX-License-Identifier: Apache-2.0
#include "datapath_setup.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>

#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace sluice::agent {

Result<bool> ensureBpffs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error::fromErrno(ec.value(), "create bpf root " + dir, CniCode::kIoFailure);
  struct statfs st {};
  if (::statfs(dir.c_str(), &st) != 0) return Error::fromErrno(errno, "statfs " + dir, CniCode::kIoFailure);
  if (static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC) return false;
  if (::mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") != 0)
    return Error::fromErrno(errno, "mount bpffs at " + dir, CniCode::kBpf);
  spdlog::info("mounted bpffs at {}", dir);
  return true;
}

Result<bpf::Datapath> loadDatapath(const std::string& bpfRoot, uint16_t vxlanPort) {
  auto mounted = ensureBpffs(bpfRoot);
  if (!mounted.ok()) return std::move(mounted).error();
  bool reuse = bpf::datapathPinned(bpfRoot);
  auto dp = bpf::Datapath::load({bpfRoot, vxlanPort});
  if (!dp.ok()) return std::move(dp).error().context("load datapath under " + bpfRoot);
  if (reuse) spdlog::info("reused the maps pinned under {} (contents kept)", bpfRoot);
  return dp;
}

Result<uint32_t> natFlagsFor(NatDetect mode) {
  switch (mode) {
    case NatDetect::kAuto: return 0u;
    case NatDetect::kConntrack:
      if (!bpf::conntrackKfuncAvailable())
        return Error(CniCode::kInvalidConfig,
                     "--nat-detect conntrack: this kernel has no conntrack lookup kfunc (bpf_skb_ct_lookup; "
                     "needs nf_conntrack with BTF); use --nat-detect auto or records");
      return 0u;
    case NatDetect::kRecords: return static_cast<uint32_t>(SL_CFG_F_NAT_RECORDS);
    case NatDetect::kOff: return static_cast<uint32_t>(SL_CFG_F_NAT_OFF);
  }
  return 0u;
}

Result<sl_config> updateConfig(const bpf::ConfigMap& config, const ConfigUpdate& u) {
  const uint32_t key = 0;
  SL_ASSIGN_OR_RETURN(auto current, config.lookup(key));
  sl_config before{};
  if (current) before = *current;
  sl_config after = before;
  if (after.layout_version == 0) after.layout_version = SL_LAYOUT_VERSION;
  if (u.mode) after.mode = *u.mode;
  if (u.nodeIp4) after.node_ip4 = *u.nodeIp4;
  if (u.overlayIfindex) after.overlay_ifindex = *u.overlayIfindex;
  if (u.vni) after.vni = *u.vni;
  if (u.underlayIfindex) after.underlay_ifindex = *u.underlayIfindex;
  if (u.overlayMtu) after.overlay_mtu = *u.overlayMtu;
  if (u.natFlags) {
    constexpr uint32_t kNatBits = SL_CFG_F_NAT_RECORDS | SL_CFG_F_NAT_OFF;
    after.flags = (after.flags & ~kNatBits) | (*u.natFlags & kNatBits);
  }
  if (!current || std::memcmp(&before, &after, sizeof(after)) != 0) {
    auto st = config.update(key, after);
    if (!st.ok()) return std::move(st).error().context("write sl_config");
  }
  return after;
}

}  // namespace sluice::agent
