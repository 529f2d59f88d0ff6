// SPDX-License-Identifier: Apache-2.0
// Attaching pinned programs to interfaces: tc clsact, direct-action, at a fixed handle and
// priority so that a later attach with replace swaps the program atomically (upgrade). A pod
// veth can instead carry them through TCX (BPF_TCX_INGRESS/EGRESS, kernel >= 6.6): that
// leaves the ingress/clsact qdisc slot free for chained plugins that need it (bandwidth's
// ingress qdisc + ifb), and TC_ACT_UNSPEC from a TCX program hands the packet on to that
// qdisc. Queries, replacement and detaching handle both, whichever the interface has.
#pragma once

#include <cstdint>
#include <string>

#include "sluice/result.h"

namespace sluice::bpf {

constexpr uint32_t kTcHandle = 0x51;    // 'S'
constexpr uint32_t kTcPriority = 1;

// Attaches progFd at ingress, replacing whatever Sluice had attached there before: in place
// through TCX when a Sluice program (name "sl_*") is attached that way, else at the clsact
// slot (creating the qdisc if needed; it goes away with the interface).
Status attachTcIngress(int ifindex, int progFd);
// Removes Sluice's ingress program (clsact filter and TCX); absent is success.
Status detachTcIngress(int ifindex);
// The BPF program id attached at Sluice's ingress slot (clsact, else TCX), 0 if none.
Result<uint32_t> tcIngressProgId(int ifindex);
// The same at egress (sluice_vxlan carries sl_to_overlay there).
Status attachTcEgress(int ifindex, int progFd);
Status detachTcEgress(int ifindex);
Result<uint32_t> tcEgressProgId(int ifindex);
// For a new interface: its clsact qdisc, for both directions at once (created per direction,
// the second creation is refused with EEXIST and libbpf logs "Exclusivity flag on"). The
// first filter of each direction waits for an RCU grace period since the qdisc's creation
// (mini_qdisc_pair_swap: an expedited one if none has passed), so the earlier it is created
// the likelier that costs nothing.
Status createClsact(int ifindex);
// Both programs of that new interface at its clsact slots (createClsact first).
Status attachTcPair(int ifindex, int ingressFd, int egressFd);
// Attaches progFd through TCX (no qdisc), replacing a Sluice program already there; fails
// with ENOTSUP-like errors on kernels without TCX.
Status attachTcxIngress(int ifindex, int progFd);
Status attachTcxEgress(int ifindex, int progFd);
// The id of the program behind an fd.
Result<uint32_t> progId(int progFd);
// The name of a loaded program (at most 15 characters), "" when there is no such program.
std::string progNameById(uint32_t id);
// Whether two loaded programs run the same code: the same tag (a hash of their instructions,
// map references left out), so the same source built the same way. False if either is gone.
bool sameProgramCode(uint32_t idA, uint32_t idB);

}  // namespace sluice::bpf
