// SPDX-License-Identifier: Apache-2.0
// Network namespaces: opening one by path (verified to really be a network namespace) and a
// guard that enters it and always comes back. The plugin is single-threaded; setns(2) only
// moves the calling thread.
#pragma once

#include <string>

#include "sluice/fd.h"
#include "sluice/result.h"

namespace sluice::cni {

// Opens `path` and checks that it is an nsfs file of type CLONE_NEWNET. A path that does not
// exist or is something else is a kInvalidEnv error (the runtime handed us a bad CNI_NETNS).
Result<Fd> openNetns(const std::string& path);
// The calling thread's current network namespace.
Result<Fd> currentNetns();
// True when both descriptors refer to the same namespace.
Result<bool> sameNetns(int a, int b);

// Enters a namespace for the guard's lifetime. If switching back fails the process aborts:
// continuing in the wrong namespace would plumb a pod into the host.
class NetnsGuard {
 public:
  static Result<NetnsGuard> enter(int nsFd);
  NetnsGuard(NetnsGuard&& o) noexcept = default;
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  NetnsGuard(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  explicit NetnsGuard(Fd origin) : origin_(std::move(origin)) {}
  Fd origin_;
};

// Runs fn() inside the namespace and returns its Result (or the error entering it).
template <typename F>
auto inNetns(int nsFd, F&& fn) -> decltype(fn()) {
  auto guard = NetnsGuard::enter(nsFd);
  if (!guard.ok()) return std::move(guard).error();
  return fn();
}

}  // namespace sluice::cni
