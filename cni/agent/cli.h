// SPDX-License-Identifier: Apache-2.0
// The inspection CLI: sluice-agent status|endpoints|routes|nodes|counters, reading the
// pinned maps, the endpoint records and the agent's state file. Human tables by default,
// -o json for scripts. Output goes to `out` (stdout in main).
#pragma once

#include <ostream>

#include "flags.h"

namespace sluice::agent {

// Returns the process exit code.
int runCli(const AgentOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace sluice::agent
