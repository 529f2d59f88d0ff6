// SPDX-License-Identifier: Apache-2.0
// Start-up of the datapath: bpffs under bpfRoot, the programs and maps loaded and pinned (or
// the pinned ones reused), and sl_config written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "flags.h"
#include "sluice/bpf/datapath.h"
#include "sluice/bpf/maps.h"
#include "sluice/result.h"

namespace sluice::agent {

// Makes sure `dir` exists and lives on a bpffs; mounts one at `dir` only when it does not.
// Returns whether a mount was made.
Result<bool> ensureBpffs(const std::string& dir);

// ensureBpffs + Datapath::load({bpfRoot, vxlanPort}).
Result<bpf::Datapath> loadDatapath(const std::string& bpfRoot, uint16_t vxlanPort);

// The fields of sl_config the agent owns; unset ones keep their current value.
struct ConfigUpdate {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> nodeIp4;  // network byte order
  std::optional<uint32_t> overlayIfindex;
  std::optional<uint32_t> vni;
  std::optional<uint32_t> underlayIfindex;
  std::optional<uint32_t> overlayMtu;
  std::optional<uint32_t> natFlags;  // the SL_CFG_F_NAT_* bits of sl_config.flags
};

// sl_config's SL_CFG_F_NAT_* bits for --nat-detect; a clear error when "conntrack" is asked
// for and the kernel lacks the kfunc.
Result<uint32_t> natFlagsFor(NatDetect mode);

// Reads sl_config[0], applies the update, keeps layout_version, writes it back only if
// something changed (a restart rewrites nothing). Returns the resulting config.
Result<sl_config> updateConfig(const bpf::ConfigMap& config, const ConfigUpdate& update);

}  // namespace sluice::agent
