// SPDX-License-Identifier: Apache-2.0
// `sluice-agent uninstall`: takes Sluice off a node once its agent is stopped (DaemonSet
// deleted, or before another CNI takes over): the conflist first (a conflist left behind
// breaks the next CNI), then the masquerade table, the kernel routes the agent owns,
// sluice_vxlan, the native-routing programs on the underlay and every pin under --bpf-root. Each step is idempotent: what is already gone
// is success, so it can be run again after a partial failure.
#pragma once

#include <ostream>

#include "flags.h"

namespace sluice::agent {

struct UninstallReport {
  bool conflistRemoved = false;
  bool masqueradeRemoved = false;
  bool vxlanRemoved = false;
  // interfaces the underlay's programs (sl_from_tunnel, sl_from_native/sl_to_native) were
  // detached from; the JSON key keeps its first name
  int nativeDetached = 0;
  int routesRemoved = 0;
  int pinsRemoved = 0;
  int endpointsLeft = 0;  // pods still plumbed (their veths keep the program until DEL)
};

// Refuses (kInvalidConfig) while an agent holds --state-dir's instance lock (instance_lock.h):
// it would put everything back within a second. Holds that lock itself until it returns.
Result<UninstallReport> uninstallNode(const AgentOptions& opts);

// The subcommand: a line per step on `out` (JSON with -o json); returns the exit code.
int runUninstall(const AgentOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace sluice::agent
