// SPDX-License-Identifier: Apache-2.0
// Executing another CNI plugin the way a runtime would (SPEC "Delegated plugins"): found by
// name in CNI_PATH, the configuration on stdin, the CNI_* environment, its result or error
// JSON on stdout. Used for delegated IPAM, and by the agent to ask chained plugins' VERSION.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sluice/result.h"

namespace sluice::cni {

struct PluginCall {
  std::string command;      // CNI_COMMAND
  std::string containerId;  // CNI_CONTAINERID
  std::string netns;        // CNI_NETNS
  std::string ifname;       // CNI_IFNAME
  std::string args;         // CNI_ARGS
  std::string path;         // CNI_PATH
  // How long the plugin may take, in milliseconds; past it, it is killed with its process
  // group (it runs in a group of its own) and the call fails.
  // -1: as long as it takes (a runtime's verbs, which the runtime times out as a whole).
  int timeoutMs = -1;
};

// The first executable regular file named `type` in the colon-separated `cniPath`.
// kInvalidConfig when there is none (the configuration names a plugin this node lacks).
Result<std::string> findPlugin(const std::string& type, const std::string& cniPath);

// Runs `binary` with stdin = `config` and the CNI_* variables of `call` on top of this
// process's environment (other CNI_* variables are removed). Returns stdout when it exits 0;
// otherwise its error JSON as an Error (code and message preserved), or a kInternal error
// quoting what it printed.
Result<std::string> execPlugin(const std::string& binary, const PluginCall& call,
                               std::string_view config);

// The CNI versions `binary` answers VERSION with (its supportedVersions; empty when it lists
// none), asked with a configuration of `cniVersion`. `timeoutMs` as PluginCall's.
Result<std::vector<std::string>> pluginVersions(const std::string& binary, const std::string& cniPath,
                                                const std::string& cniVersion, int timeoutMs = -1);

}  // namespace sluice::cni
