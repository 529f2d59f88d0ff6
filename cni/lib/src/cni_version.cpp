// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/version.h"

#include <charconv>

namespace sluice::cni {

std::optional<SemVer> parseVersion(std::string_view v) {
  SemVer out;
  int* parts[3] = {&out.major, &out.minor, &out.patch};
  size_t n = 0;
  size_t pos = 0;
  while (n < 3) {
    size_t dot = v.find('.', pos);
    std::string_view part = v.substr(pos, dot == std::string_view::npos ? v.npos : dot - pos);
    if (part.empty() || part.size() > 6) return std::nullopt;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), *parts[n]);
    if (ec != std::errc() || end != part.data() + part.size()) return std::nullopt;
    ++n;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
    if (n == 3) return std::nullopt;  // a fourth component
  }
  if (n < 2) return std::nullopt;
  return out;
}

bool versionSupported(std::string_view v) {
  auto sv = parseVersion(v);
  if (!sv) return false;
  for (auto s : kSupportedVersions)
    if (*parseVersion(s) == *sv) return true;
  return false;
}

bool versionAtLeast(std::string_view v, std::string_view min) {
  auto a = parseVersion(v);
  auto b = parseVersion(min);
  return a && b && *a >= *b;
}

bool usesLegacyResult(std::string_view v) { return !versionAtLeast(v, "1.0.0"); }

std::string supportedVersionList() {
  std::string out;
  for (auto s : kSupportedVersions) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace sluice::cni
