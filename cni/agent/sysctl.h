// SPDX-License-Identifier: Apache-2.0
// The sysctls the datapath depends on (forwarding, rp_filter, accept_local; IPv6 forwarding).
#pragma once

#include <string>

#include "sluice/result.h"

namespace sluice::agent {

// ip_forward=1; rp_filter=0 and accept_local=1 on the overlay device. A strict rp_filter on
// "all" (the effective value is max(all, dev)) is left as it is: the datapath keeps every
// reverse path symmetric. Idempotent: run again to undo what systemd re-applies.
Status applyDatapathSysctls(const std::string& overlayDev);

// Dual stack: IPv6 forwarding (net.ipv6.conf.all.forwarding=1, which also turns the node's
// acceptance of router advertisements off where accept_ra is 1: an underlay configured by SLAAC
// needs accept_ra=2). IPv6 has no rp_filter.
Status applyIpv6Sysctls();

}  // namespace sluice::agent
