// SPDX-License-Identifier: Apache-2.0
// Picks the node source from the flags: --nodes-file, --kubeconfig, or in-cluster.
#pragma once

#include <memory>

#include "flags.h"
#include "node_source.h"

namespace sluice::agent {

Result<std::unique_ptr<NodeSource>> makeNodeSource(const AgentOptions& opts);

}  // namespace sluice::agent
