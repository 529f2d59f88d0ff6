// SPDX-License-Identifier: Apache-2.0
// GC (CNI 1.1): every attachment of this network that the runtime does not list in
// cni.dev/valid-attachments is torn down exactly as DEL would: map entries, host veth, IPAM
// reservation, endpoint record. Attachments are found through the endpoint records and, for
// the built-in allocator, through its reservations too (an ADD killed before it wrote the
// record still holds an address, and its veth name follows from the reservation's key). Then GC
// is forwarded to a delegated IPAM plugin that speaks CNI 1.1 (the spec asks it of plugins that
// delegate), so that it frees leases Sluice holds no record of.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "endpoint_ops.h"
#include "ipam_client.h"
#include "plugin.h"
#include "sluice/cni/endpoint.h"
#include "sluice/cni/ipam.h"

namespace sluice::plugin {

Status cmdGc(const Invocation& inv) {
  const auto& conf = inv.conf;
  if (!conf.ipam) return Error(CniCode::kInvalidConfig, "invalid network configuration: ipam: missing");
  if (!conf.validAttachments)
    return Error(CniCode::kInvalidConfig,
                 std::string("GC: ") + cni::kValidAttachmentsKey + " is required");
  const auto& valid = *conf.validAttachments;
  auto isValid = [&](const std::string& cid, const std::string& ifname) {
    return std::find(valid.begin(), valid.end(), cni::Attachment{cid, ifname}) != valid.end();
  };

  // (containerId, ifname) -> netns (empty when unknown)
  std::map<std::pair<std::string, std::string>, std::string> stale;
  std::vector<std::string> skipped;
  SL_ASSIGN_OR_RETURN(auto records, cni::listEndpointRecords(conf.stateDir, &skipped));
  for (const auto& s : skipped) spdlog::warn("GC: skipping unreadable endpoint record {}", s);
  for (const auto& r : records)
    if (r.network == conf.name && !isValid(r.containerId, r.ifName))
      stale[{r.containerId, r.ifName}] = r.netns;
  if (conf.ipam->builtin()) {
    cni::LocalIpam local(cni::LocalIpam::directory(conf.stateDir, conf.name), conf.ipam->ranges);
    SL_ASSIGN_OR_RETURN(auto reservations, local.list());
    for (const auto& r : reservations)
      if (!isValid(r.containerId, r.ifname)) stale.try_emplace({r.containerId, r.ifname}, "");
  }

  SL_ASSIGN_OR_RETURN(auto maps, openMapsIfPinned(conf.bpfRoot));
  IpamClient network(inv, IpamClient::NetworkWide{});
  size_t failed = 0;
  Error first;
  for (const auto& [key, netns] : stale) {
    const auto& [cid, ifname] = key;
    spdlog::info("GC: removing attachment {}/{} (not among the {} valid attachments)", cid, ifname,
                 valid.size());
    IpamClient ipam(network, cid, ifname);
    Status st = teardownAttachment(inv, {cid, ifname, netns}, maps ? &*maps : nullptr, &ipam);
    if (!st.ok()) {
      // One broken attachment must not keep GC from the others.
      spdlog::error("GC: {}/{}: {}", cid, ifname, st.error().describe());
      if (failed++ == 0) first = st.error();
    }
  }
  if (!conf.ipam->builtin()) {
    auto forwarded = network.gc();
    if (!forwarded.ok()) {
      spdlog::error("GC: {}", forwarded.error().describe());
      if (failed == 0) return std::move(forwarded).error().context("GC");
    }
  }
  if (failed)
    return std::move(first).context("GC failed for " + std::to_string(failed) + " of " +
                                    std::to_string(stale.size()) + " attachments");
  spdlog::info("GC done: {} attachments removed", stale.size());
  return okStatus();
}

}  // namespace sluice::plugin
