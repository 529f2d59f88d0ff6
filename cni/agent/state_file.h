// SPDX-License-Identifier: Apache-2.0
// What the running agent knows beyond the maps (its node, the node snapshot), written to
// <stateDir>/agent/state.json for the inspection CLI.
#pragma once

#include <string>
#include <vector>

#include "node_source.h"
#include "sluice/result.h"

namespace sluice::agent {

struct AgentState {
  std::string nodeName;
  std::string nodeIp;
  std::vector<std::string> podCIDRs;
  std::string mode;
  std::string underlay;
  int overlayIfindex = 0;
  int mtu = 0;
  bool ready = false;
  int pid = 0;
  std::string version;
  std::vector<NodeInfo> nodes;
};

std::string agentStatePath(const std::string& stateDir);
Status writeAgentState(const std::string& stateDir, const AgentState& s);
Result<AgentState> readAgentState(const std::string& stateDir);

}  // namespace sluice::agent
