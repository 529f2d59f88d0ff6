// SPDX-License-Identifier: Apache-2.0
// The pod's addresses, from the built-in allocator (sluice-ipam, in-process) or from a
// delegated IPAM plugin exec'd from CNI_PATH per the spec. Verbs do not care which.
#pragma once

#include <memory>
#include <optional>
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
  // For the whole network (GC, STATUS): no container, interface or netns.
  struct NetworkWide {};
  IpamClient(const Invocation& inv, NetworkWide);
  // For another attachment of the same network (GC). It shares what `network` learns of the
  // delegated plugin (where it is, which versions it speaks), so that a GC of many attachments
  // searches CNI_PATH and runs VERSION once.
  IpamClient(const IpamClient& network, std::string containerId, std::string ifname);

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

  // CNI 1.1 asks a plugin to pass STATUS and GC on to the plugins it delegates to. STATUS: a
  // delegated plugin missing from CNI_PATH is code 50; one that speaks our cniVersion is asked,
  // and its error is ours; one that predates STATUS is ready. The built-in allocator is always
  // ready.
  Status status();
  // GC: forwarded as received (cni.dev/valid-attachments included) to a delegated plugin that
  // speaks our cniVersion. False, and nothing run, when the allocator is built in (the caller
  // collects its reservations) or the delegated plugin predates GC.
  Result<bool> gc();

 private:
  // The delegated plugin's path in CNI_PATH, searched once.
  Result<std::string> delegateBinary();
  Result<std::string> exec(const std::string& command, const std::string& config);
  // The configuration for a delegated call: stdin unchanged, unless the plugin does not speak
  // our cniVersion for a verb it has (GC's per-attachment DEL), then rewritten.
  Result<std::string> delegatedConfig();
  // The versions the delegated plugin answers VERSION with, asked once.
  Result<std::vector<std::string>> delegateVersions();
  // Whether it speaks the configuration's cniVersion (for GC and STATUS: 1.1.0 or later).
  Result<bool> delegateSpeaksOurVersion();

  const cni::NetConf& conf_;
  const cni::CniEnv& env_;
  std::string containerId_;
  std::string ifname_;
  bool forGc_ = false;
  // What is learnt of the delegated plugin, shared by the clients of one invocation.
  struct Delegate {
    std::optional<std::string> binary;
    std::optional<std::vector<std::string>> versions;
  };
  std::shared_ptr<Delegate> delegate_ = std::make_shared<Delegate>();
};

}  // namespace sluice::plugin
