// SPDX-License-Identifier: Apache-2.0
// STATUS (CNI 1.1): ready once the agent has pinned the datapath and the IPAM can serve: a
// delegated IPAM plugin is found in CNI_PATH and, if it speaks STATUS, asked (its error is ours).
#include <sys/stat.h>
#include <unistd.h>

#include "ipam_client.h"
#include "plugin.h"
#include "sluice/bpf/datapath.h"
#include "sluice/cni/exec.h"

namespace sluice::plugin {

Status cmdStatus(const Invocation& inv) {
  const auto& conf = inv.conf;
  if (!bpf::datapathPinned(conf.bpfRoot))
    return Error(CniCode::kPluginNotAvailable,
                 "the Sluice datapath is not loaded under " + conf.bpfRoot +
                     ": sluice-agent has not started on this node");
  if (conf.ipam && !conf.ipam->builtin()) {
    auto found = cni::findPlugin(conf.ipam->type, inv.env.path);
    if (!found.ok())
      return Error(CniCode::kPluginNotAvailable, found.error().message());
    SL_TRY(IpamClient(inv, IpamClient::NetworkWide{}).status());
  }
  return okStatus();
}

}  // namespace sluice::plugin
