// SPDX-License-Identifier: Apache-2.0
// Attaching pinned programs to interfaces: tc clsact, direct-action, at a fixed handle and
// priority so that a later attach with replace swaps the program atomically (upgrade).
#pragma once

#include <cstdint>
#include <string>

#include "sluice/result.h"

namespace sluice::bpf {

constexpr uint32_t kTcHandle = 0x51;    // 'S'
constexpr uint32_t kTcPriority = 1;

// Creates the clsact qdisc if needed and attaches progFd at ingress (replacing whatever
// Sluice had attached there before). The qdisc goes away with the interface.
Status attachTcIngress(int ifindex, int progFd);
// Removes Sluice's ingress filter; absent filter/qdisc/interface is success.
Status detachTcIngress(int ifindex);
// The BPF program id attached at Sluice's ingress slot, 0 if none.
Result<uint32_t> tcIngressProgId(int ifindex);
// The same at egress (sluice_vxlan carries sl_to_overlay there).
Status attachTcEgress(int ifindex, int progFd);
Status detachTcEgress(int ifindex);
Result<uint32_t> tcEgressProgId(int ifindex);
// The id of the program behind an fd.
Result<uint32_t> progId(int progFd);

}  // namespace sluice::bpf
