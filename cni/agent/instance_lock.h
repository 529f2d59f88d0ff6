// SPDX-License-Identifier: Apache-2.0
// One agent per node. Whatever changes a node's datapath (the daemon, --load-only, uninstall)
// holds flock(2) on <state-dir>/agent/agent.lock while it runs, so a second instance started
// beside a running one (a DaemonSet rollout with maxSurge, a debugging shell on the host) waits
// for it instead of swapping programs and rewriting routes under it. The kernel drops the lock
// when its holder exits, however it exits, and the lock holds across PID namespaces: what two
// agent containers (or a container and the host) share is the hostPath state dir, not a pid
// space. The holder writes its pid into the file, for the messages of those who wait.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "sluice/fd.h"
#include "sluice/result.h"

namespace sluice::agent {

class InstanceLock {
 public:
  static std::string path(const std::string& stateDir);

  // The pid recorded by the process holding the lock (0 if none was recorded yet), or nullopt
  // when nobody holds it. Creates nothing: for the read-only inspection CLI, which sees through
  // the lock whether an agent runs where it cannot see that agent's pid (another PID namespace).
  static std::optional<int> holder(const std::string& stateDir);

  // Takes the lock when it is free. Held by another process: nullopt, and *holder (if given)
  // is the pid it recorded (0 if none yet).
  static Result<std::optional<InstanceLock>> tryAcquire(const std::string& stateDir, int* holder = nullptr);

  // Takes the lock, waiting while another process holds it (said once in the log): between
  // attempts `waitOnce` is called, which should block for a while (e.g. 200 ms) and return
  // false to give up (a signal came), and then this returns nullopt.
  static Result<std::optional<InstanceLock>> acquire(const std::string& stateDir,
                                                     const std::function<bool()>& waitOnce);

 private:
  explicit InstanceLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing it releases the lock
};

}  // namespace sluice::agent
