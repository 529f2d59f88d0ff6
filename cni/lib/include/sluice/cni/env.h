// SPDX-License-Identifier: Apache-2.0
// The CNI environment (CNI_COMMAND, CNI_CONTAINERID, ...) and the CNI_ARGS convention.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "sluice/result.h"

namespace sluice::cni {

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };

const char* commandName(Command c);

// CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;..." in any order. A key we
// do not know is an error unless IgnoreUnknown is true (the reference plugins' convention).
struct CniArgs {
  bool ignoreUnknown = false;
  std::string podNamespace;
  std::string podName;
  std::string podInfraContainerId;
  std::string podUid;
  std::map<std::string, std::string> unknown;  // kept when ignoreUnknown
};
Result<CniArgs> parseCniArgs(std::string_view s);

struct CniEnv {
  Command command = Command::kVersion;
  std::string containerId;
  std::string netns;
  std::string ifname;
  std::string path;     // CNI_PATH, colon separated
  std::string rawArgs;  // CNI_ARGS as received
  CniArgs args;
};

// Reads and validates the environment for the command it names (kInvalidEnv on anything
// missing or malformed; an unknown CNI_COMMAND too). `getenv` is injectable for tests.
Result<CniEnv> parseCniEnv(const std::function<const char*(const char*)>& getenv);

// Container IDs: [A-Za-z0-9][A-Za-z0-9_.-]*; interface names: 1..15 bytes, not "." or "..",
// no '/', ':' or whitespace (the kernel's rules).
Status validateContainerId(std::string_view id);
Status validateIfname(std::string_view name);

}  // namespace sluice::cni
