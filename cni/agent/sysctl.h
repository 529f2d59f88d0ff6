// SPDX-License-Identifier: Apache-2.0
// The IPv4 sysctls the datapath depends on (forwarding, rp_filter, accept_local).
#pragma once

#include <string>

#include "sluice/result.h"

namespace sluice::agent {

// ip_forward=1; rp_filter=0 and accept_local=1 on the overlay device. A strict rp_filter on
// "all" (the effective value is max(all, dev)) is left as it is: the datapath keeps every
// reverse path symmetric. Idempotent: run again to undo what systemd re-applies.
Status applyDatapathSysctls(const std::string& overlayDev);

}  // namespace sluice::agent
