// SPDX-License-Identifier: Apache-2.0
// STATUS (CNI 1.1): ready once the agent has pinned the datapath and the IPAM can serve: a
// delegated IPAM plugin is found in CNI_PATH and, if it speaks STATUS, asked (its error is ours).

#include "ipam_client.h"
#include "plugin.h"
#include "sluice/bpf/datapath.h"

namespace sluice::plugin {

Status cmdStatus(const Invocation& inv) {
  const auto& conf = inv.conf;
  if (!bpf::datapathPinned(conf.bpfRoot))
    return Error(CniCode::kPluginNotAvailable,
                 "the Sluice datapath is not loaded under " + conf.bpfRoot +
                     ": sluice-agent has not started on this node");
  if (conf.ipam) SL_TRY(IpamClient(inv, IpamClient::NetworkWide{}).status());
  return okStatus();
}

}  // namespace sluice::plugin
