// SPDX-License-Identifier: Apache-2.0
#include "state_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "conflist.h"
#include "nodes_file.h"

namespace sluice::agent {

std::string agentStatePath(const std::string& stateDir) { return stateDir + "/agent/state.json"; }

Status writeAgentState(const std::string& stateDir, const AgentState& s) {
  using nlohmann::json;
  std::error_code ec;
  std::filesystem::create_directories(stateDir + "/agent", ec);
  if (ec) return Error::fromErrno(ec.value(), "create " + stateDir + "/agent", CniCode::kIoFailure);
  json j = {{"nodeName", s.nodeName}, {"nodeIP", s.nodeIp},     {"podCIDRs", s.podCIDRs},
            {"mode", s.mode},         {"underlay", s.underlay}, {"overlayIfindex", s.overlayIfindex},
            {"mtu", s.mtu},           {"ready", s.ready},       {"pid", s.pid},
            {"version", s.version},   {"nodes", json::parse(nodesToJson(s.nodes))["nodes"]}};
  return writeDurably(agentStatePath(stateDir), j.dump(2) + "\n", 0644);
}

Result<AgentState> readAgentState(const std::string& stateDir) {
  using nlohmann::json;
  const std::string path = agentStatePath(stateDir);
  std::ifstream f(path);
  if (!f) return Error::fromErrno(errno, "open " + path, CniCode::kIoFailure);
  std::stringstream ss;
  ss << f.rdbuf();
  AgentState s;
  try {
    json j = json::parse(ss.str());
    s.nodeName = j.value("nodeName", "");
    s.nodeIp = j.value("nodeIP", "");
    s.podCIDRs = j.value("podCIDRs", std::vector<std::string>{});
    s.mode = j.value("mode", "");
    s.underlay = j.value("underlay", "");
    s.overlayIfindex = j.value("overlayIfindex", 0);
    s.mtu = j.value("mtu", 0);
    s.ready = j.value("ready", false);
    s.pid = j.value("pid", 0);
    s.version = j.value("version", "");
    if (j.contains("nodes")) {
      auto nodes = parseNodes(json{{"nodes", j["nodes"]}}.dump());
      if (!nodes.ok()) return std::move(nodes).error().context(path);
      s.nodes = std::move(nodes).value();
    }
  } catch (const json::exception& e) {
    return Error(CniCode::kDecodeFailure, path + ": " + e.what());
  }
  return s;
}

}  // namespace sluice::agent
