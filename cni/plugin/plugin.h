// SPDX-License-Identifier: Apache-2.0
// What every verb of the sluice CNI plugin gets, and the verbs themselves. main.cpp parses the
// environment and stdin into an Invocation and dispatches; each verb lives in its own file.
#pragma once

#include <string>

#include "sluice/cni/config.h"
#include "sluice/cni/env.h"
#include "sluice/result.h"

namespace sluice::plugin {

struct Invocation {
  cni::CniEnv env;
  cni::NetConf conf;
};

// ADD: plumbs the pod and returns the result JSON text for stdout.
Result<std::string> cmdAdd(const Invocation& inv);
// DEL: removes everything of the attachment; already gone is success.
Status cmdDel(const Invocation& inv);
// CHECK: verifies every piece ADD created, and prevResult against them.
Status cmdCheck(const Invocation& inv);
// GC (CNI 1.1): removes every endpoint of this network not in cni.dev/valid-attachments, then
// forwards GC to a delegated IPAM plugin that speaks 1.1.
Status cmdGc(const Invocation& inv);
// STATUS (CNI 1.1): code 50 while the datapath is not pinned; a delegated IPAM plugin that
// speaks 1.1 is asked too, and its error is ours.
Status cmdStatus(const Invocation& inv);

// SLUICE_TEST_FAIL_AT=<step> (docs/internals.md): fails ADD right after that step;
// SLUICE_TEST_KILL_AT=<step>: the plugin SIGKILLs itself there (no rollback runs).
Status failPoint(const char* step);

// "cid=0123456789ab netns=/run/netns/x if=eth0 pod=ns/name" for every log line.
std::string logContext(const cni::CniEnv& env);

}  // namespace sluice::plugin
