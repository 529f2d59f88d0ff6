// SPDX-License-Identifier: Apache-2.0
// Pieces of an attachment that several verbs share: the names, the fixed gateway, and the
// teardown that DEL, GC and an ADD finding host-side leftovers of its attachment use.
#pragma once

#include <optional>
#include <string>

#include "ipam_client.h"
#include "plugin.h"
#include "sluice/bpf/maps.h"
#include "sluice/cni/endpoint.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::plugin {

// The pod's gateways: link-local, answered by the permanent neighbour entry (no ARP, no
// neighbour discovery): 169.254.1.1 and fe80::1.
net::IpAddr gatewayV4();
net::IpAddr gatewayV6();

// Opens the pinned maps, or nullopt when the datapath is not pinned at all (DEL and GC then
// have no map entries to remove). Other failures (a layout mismatch) are errors.
Result<std::optional<bpf::PinnedMaps>> openMapsIfPinned(const std::string& bpfRoot);

struct Attachment {
  std::string containerId;
  std::string ifname;
  std::string netns;  // may be empty or gone
};

// Removes everything of one attachment, in an order that never touches another pod's state:
// map entries (only those still pointing at this attachment's veth), the host veth (the pod
// end, the routes and neighbours go with it), a leftover pod-side veth, the IPAM reservation
// (if `ipam` is given) and finally the endpoint record. Already gone is success.
// `maps` may be null when the datapath is not pinned.
Status teardownAttachment(const Invocation& inv, const Attachment& att,
                          const bpf::PinnedMaps* maps, IpamClient* ipam);

}  // namespace sluice::plugin
