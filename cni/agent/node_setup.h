// SPDX-License-Identifier: Apache-2.0
// Per-node network set-up once this node's own entry is known: the underlay, sluice_vxlan
// with the overlay programs at its tc ingress/egress and sl_from_tunnel at the underlay's
// ingress (vxlan mode) or sl_from_native / sl_to_native at the underlay's (native mode),
// sysctls and sl_config. (The masquerade
// rule needs every node's address: the agent's reconcile keeps it.)
// Every step is idempotent and leaves matching state untouched (restarts are seamless).
#pragma once

#include <optional>
#include <string>

#include "flags.h"
#include "node_source.h"
#include "sluice/bpf/datapath.h"
#include "vxlan.h"

namespace sluice::agent {

struct NodeNetwork {
  net::IpAddr nodeIp;
  Underlay underlay;
  int overlayIfindex = 0;  // 0 in native mode
  int podMtu = 0;          // MTU for pods and the overlay routes
};

// Brings the node's networking to the desired state for `self`.
Result<NodeNetwork> setupNodeNetwork(const AgentOptions& opts, const bpf::Datapath& dp, const NodeInfo& self);

// Detaches the underlay's programs from an interface where they are attached (by program
// name; other programs stay): sl_from_native / sl_to_native, and sl_from_tunnel with
// tunnelToo. Returns whether anything was detached.
Result<bool> detachUnderlayFrom(int ifindex, bool tunnelToo);

// Cheap drift check run periodically: the overlay device still exists with the same ifindex,
// our programs are still the ones attached, sysctls still hold. Repairs what it can; returns
// false when a full set-up is needed (the device is gone or was replaced).
Result<bool> checkNodeNetwork(const AgentOptions& opts, const bpf::Datapath& dp, const NodeNetwork& net);

// Dual stack in vxlan mode: this node's own IPv6 address is the first address of its IPv6 pod
// CIDR (the subnet-router anycast address, which the built-in IPAM never gives a pod), a /128 on
// sluice_vxlan. It is the source of the node's IPv6 traffic to pods, and remote pods reach it
// back through their routes to this node's pod CIDR. Makes it the only global IPv6 address on
// the device (a former pod CIDR's goes); nullopt removes them all.
Status ensureOverlayIp6(int overlayIfindex, const std::optional<net::IpAddr>& want);
net::IpAddr nodeIp6Of(const net::Cidr& podCidr6);

// Replaces the program on every pod veth still running an older sl_from_pod (agent upgrade);
// returns how many were switched. Veths without any Sluice program are left alone.
Result<int> upgradePodPrograms(const bpf::Datapath& dp);

}  // namespace sluice::agent
