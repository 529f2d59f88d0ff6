// SPDX-License-Identifier: Apache-2.0
// The IPv4 sysctls the datapath depends on (forwarding, rp_filter, accept_local).
#pragma once

#include <optional>
#include <string>

#include "sluice/result.h"

namespace sluice::agent {

// Reads /proc/sys/<key with dots as slashes>; nullopt if absent.
std::optional<std::string> readSysctl(const std::string& key);
// Writes it only when the current value differs; returns whether it wrote.
Result<bool> writeSysctl(const std::string& key, const std::string& value);

// ip_forward=1; rp_filter=0 and accept_local=1 on the overlay device; strict rp_filter on
// "all" lowered to loose (the effective value is max(all, dev), so strict "all" would still
// drop decapsulated traffic). Idempotent: run again to undo what systemd re-applies.
Status applyDatapathSysctls(const std::string& overlayDev);

}  // namespace sluice::agent
