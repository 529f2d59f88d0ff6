// SPDX-License-Identifier: Apache-2.0
#include <csignal>
#include <cstdlib>
#include <string>

#include "plugin.h"

namespace sluice::plugin {

Status failPoint(const char* step) {
  // A plugin killed right here: no rollback, no destructor, nothing flushed.
  const char* kill = std::getenv("SLUICE_TEST_KILL_AT");
  if (kill && std::string(kill) == step) ::raise(SIGKILL);
  const char* at = std::getenv("SLUICE_TEST_FAIL_AT");
  if (at && std::string(at) == step)
    return Error(CniCode::kInternal,
                 std::string("injected failure after step ") + step + " (SLUICE_TEST_FAIL_AT)");
  return okStatus();
}

std::string logContext(const cni::CniEnv& env) {
  std::string ctx = "cid=" + env.containerId.substr(0, 12);
  if (!env.netns.empty()) ctx += " netns=" + env.netns;
  if (!env.ifname.empty()) ctx += " if=" + env.ifname;
  if (!env.args.podNamespace.empty() || !env.args.podName.empty())
    ctx += " pod=" + env.args.podNamespace + "/" + env.args.podName;
  return ctx;
}

}  // namespace sluice::plugin
