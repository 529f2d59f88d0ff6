// SPDX-License-Identifier: Apache-2.0
// The overlay device: sluice_vxlan in external (collect-metadata) mode, and the underlay
// device it rides on.
#pragma once

#include <cstdint>
#include <string>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

inline constexpr const char* kVxlanName = "sluice_vxlan";
// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
inline constexpr int kVxlanOverhead = 50;

struct Underlay {
  int ifindex = 0;
  std::string name;
  int mtu = 0;
};

// The device holding `nodeIp` (this node's InternalIP).
Result<Underlay> findUnderlay(const net::IpAddr& nodeIp);

struct VxlanSpec {
  uint16_t port = 8472;
  int underlayIfindex = 0;
  int mtu = 0;  // device MTU (underlay MTU - overhead unless overridden)
};

struct VxlanState {
  int ifindex = 0;
  bool created = false;   // false: an existing matching device was kept
  bool recreated = false; // an existing device of another shape was replaced
};

// Creates sluice_vxlan (external, dstport, learning off, NOARP, MTU, up) or keeps an existing
// one of the same shape (fixing MTU/flags in place, without a delete). A device of another
// shape (not VXLAN, not external, other port) is replaced.
Result<VxlanState> ensureVxlan(const VxlanSpec& spec);

// Deletes sluice_vxlan; returns whether there was one. A device of that name that is not VXLAN
// is left alone (an error).
Result<bool> removeVxlan();


// ifindex of a device by name, 0 if absent.
int ifindexOf(const std::string& name);

}  // namespace sluice::agent
