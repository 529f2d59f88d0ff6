// SPDX-License-Identifier: Apache-2.0
// DEL: idempotent. Works with an empty CNI_NETNS (the pod netns may be long gone): the host
// veth is found by its name, the rest through the endpoint record.
#include <spdlog/spdlog.h>

#include "endpoint_ops.h"
#include "ipam_client.h"
#include "plugin.h"

namespace sluice::plugin {

Status cmdDel(const Invocation& inv) {
  const auto& conf = inv.conf;
  const auto& env = inv.env;
  if (!conf.ipam) return Error(CniCode::kInvalidConfig, "invalid network configuration: ipam: missing");
  SL_ASSIGN_OR_RETURN(auto maps, openMapsIfPinned(conf.bpfRoot));
  IpamClient ipam(inv);
  SL_TRY(teardownAttachment(inv, {env.containerId, env.ifname, env.netns},
                            maps ? &*maps : nullptr, &ipam));
  spdlog::info("DEL done");
  return okStatus();
}

}  // namespace sluice::plugin
