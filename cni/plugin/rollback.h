// SPDX-License-Identifier: Apache-2.0
// ADD is all-or-nothing: each step pushes the action that undoes it; unless commit() is
// called, the actions run in reverse order when the Rollback goes out of scope.
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/result.h"

namespace sluice::plugin {

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() {
    if (committed_) return;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      Status s = it->second();
      if (!s.ok())
        spdlog::warn("rollback of step {} failed: {}", it->first, s.error().describe());
      else
        spdlog::debug("rolled back step {}", it->first);
    }
  }

  // One guard per step.
  void push(std::string step, std::function<Status()> undo) {
    undo_.emplace_back(std::move(step), std::move(undo));
  }
  void commit() { committed_ = true; }

 private:
  std::vector<std::pair<std::string, std::function<Status()>>> undo_;
  bool committed_ = false;
};

}  // namespace sluice::plugin
