// SPDX-License-Identifier: Apache-2.0
#include "sysctl.h"

#include <optional>

#include <spdlog/spdlog.h>

#include "sluice/cni/netlink.h"

namespace sluice::agent {
namespace {

// Keys are slash separated ("net/ipv4/conf/all/rp_filter"), as sluice::cni's.
std::optional<std::string> current(const std::string& key) {
  auto v = cni::readSysctl(key);
  if (!v.ok()) return std::nullopt;
  return std::move(v).value();
}

// Writes only when the value differs (and logs the change).
Status ensure(const std::string& key, const std::string& value) {
  auto cur = current(key);
  if (!cur) return Error(CniCode::kIoFailure, "sysctl " + key + " does not exist", ENOENT);
  if (*cur == value) return okStatus();
  SL_TRY(cni::writeSysctl(key, value));
  spdlog::info("sysctl {}={} (was {})", key, value, *cur);
  return okStatus();
}

}  // namespace

Status applyDatapathSysctls(const std::string& overlayDev) {
  SL_TRY(ensure("net/ipv4/ip_forward", "1"));
  // all/rp_filter is the administrator's: strict (1) works as it is, because every packet
  // arrives where its source routes back to (remote pods and, from pods, remote nodes through
  // sluice_vxlan; everything else through the underlay). tests/e2e/netmodel.sh runs strict.
  if (!overlayDev.empty()) {
    SL_TRY(ensure("net/ipv4/conf/" + overlayDev + "/rp_filter", "0"));
    SL_TRY(ensure("net/ipv4/conf/" + overlayDev + "/accept_local", "1"));
  }
  return okStatus();
}

Status applyIpv6Sysctls() { return ensure("net/ipv6/conf/all/forwarding", "1"); }

}  // namespace sluice::agent
