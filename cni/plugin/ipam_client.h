// SPDX-License-Identifier: Apache-2.0
// The pod's addresses, from the built-in allocator (sluice-ipam, in-process) or from a
// delegated IPAM plugin exec'd from CNI_PATH per the spec. Verbs do not care which.
#pragma once

#include <string>
#include <vector>

#include "plugin.h"
#include "sluice/cni/types.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::plugin {

struct IpamLease {
  std::vector<cni::IpConfig> ips;  // as the allocator gave them (subnet prefix)
  cni::Dns dns;
};

class IpamClient {
 public:
  // For the attachment of the invocation.
  explicit IpamClient(const Invocation& inv);
  // For another attachment of the same network (GC).
  IpamClient(const Invocation& inv, std::string containerId, std::string ifname);

  const std::string& type() const { return conf_.ipam->type; }
  bool builtin() const { return conf_.ipam->builtin(); }

  Result<IpamLease> add();
  // Releases the attachment's addresses; nothing held is success.
  Status del();
  // The addresses must be the attachment's.
  Status check(const std::vector<net::IpAddr>& ips);
  // Built-in only: what the attachment holds (empty for delegated plugins, which own
  // their state).
  Result<std::vector<net::IpAddr>> held();

 private:
  Result<std::string> exec(const std::string& command, const std::string& config);
  // The configuration for a delegated call: stdin unchanged, unless the plugin does not speak
  // our cniVersion for a verb it has (GC's per-attachment DEL), then rewritten.
  Result<std::string> delegatedConfig();

  const cni::NetConf& conf_;
  const cni::CniEnv& env_;
  std::string containerId_;
  std::string ifname_;
  bool forGc_ = false;
};

}  // namespace sluice::plugin
