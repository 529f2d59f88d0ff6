// SPDX-License-Identifier: Apache-2.0
// The IPv4 sysctls the datapath depends on (forwarding, rp_filter, accept_local).
#pragma once

#include <string>

#include "sluice/result.h"

namespace sluice::agent {

// ip_forward=1; rp_filter=0 and accept_local=1 on the overlay device; strict rp_filter on
// "all" lowered to loose (the effective value is max(all, dev), so strict "all" would still
// drop decapsulated traffic). Idempotent: run again to undo what systemd re-applies.
Status applyDatapathSysctls(const std::string& overlayDev);

}  // namespace sluice::agent
