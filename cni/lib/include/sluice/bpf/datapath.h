// SPDX-License-Identifier: Apache-2.0
// Loading the datapath: the BPF objects (skeletons) opened, configured, loaded and pinned
// under bpfRoot by the agent, or loaded unpinned by the datapath tests. The plugin never uses
// this: it opens the pins (sluice/bpf/maps.h, sluice/bpf/tc.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/bpf/maps.h"
#include "sluice/fd.h"
#include "sluice/result.h"

namespace sluice::bpf {

struct DatapathOptions {
  std::string bpfRoot;  // empty: load unpinned (tests)
  // The VXLAN UDP port the programs encapsulate to and decapsulate from (read-only data of the
  // objects, fixed at load): sluice_vxlan's.
  uint16_t vxlanPort = 8472;
};

class Datapath {
 public:
  // Loads every program and map. With a bpfRoot: maps already pinned there with the same
  // layout are reused (their contents survive), new ones are pinned; programs are pinned
  // (replacing older pins atomically by rename). A layout mismatch is a clear error.
  static Result<Datapath> load(const DatapathOptions& opts);

  Datapath(Datapath&&) noexcept;
  Datapath& operator=(Datapath&&) noexcept;
  ~Datapath();

  int fromPodFd() const;
  int toPodFd() const;
  int fromOverlayFd() const;
  int toOverlayFd() const;
  // The underlay's ingress/egress programs, attached in native-routing mode only.
  int fromNativeFd() const;
  int toNativeFd() const;
  // The underlay's ingress program in vxlan mode: VXLAN decapsulation for local pods.
  int fromTunnelFd() const;
  const PinnedMaps& maps() const { return maps_; }
  // The NAT detection's flow records and fragment marks (lib/nat.h); the plugin never
  // touches them, so they are not part of PinnedMaps.
  const StackFlowMap& stackFlows() const { return stackFlows_; }
  const StackFragMap& stackFrags() const { return stackFrags_; }

 private:
  Datapath();
  struct Skeletons;
  std::unique_ptr<Skeletons> skels_;
  PinnedMaps maps_;
  StackFlowMap stackFlows_;
  StackFragMap stackFrags_;
};

// True when bpfRoot holds a complete datapath of this layout version.
bool datapathPinned(const std::string& bpfRoot);

// Whether the running kernel offers the conntrack lookup kfunc to tc programs
// (bpf_skb_ct_lookup in the vmlinux or nf_conntrack BTF): the datapath then asks conntrack
// which flows are translated, unless sl_config says otherwise.
bool conntrackKfuncAvailable();

}  // namespace sluice::bpf
