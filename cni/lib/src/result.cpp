// SPDX-License-Identifier: Apache-2.0
#include "sluice/result.h"

#include <cstring>

namespace sluice {

std::string Error::detailText() const {
  if (!details_.empty()) return details_;
  if (errno_ != 0) return std::strerror(errno_);
  return {};
}

std::string Error::describe() const {
  std::string d = detailText();
  return d.empty() ? msg_ : msg_ + ": " + d;
}

}  // namespace sluice
