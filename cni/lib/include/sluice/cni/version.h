// SPDX-License-Identifier: Apache-2.0
// CNI spec versions: which ones the plugin speaks and how they compare.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::cni {

inline constexpr std::array<std::string_view, 5> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0",
                                                                       "1.0.0", "1.1.0"};
inline constexpr std::string_view kLatestVersion = "1.1.0";

struct SemVer {
  int major = 0;
  int minor = 0;
  int patch = 0;
  auto operator<=>(const SemVer&) const = default;
};

// "1.0.0" (also "1.0" as the reference library accepts); nullopt when malformed.
std::optional<SemVer> parseVersion(std::string_view v);
bool versionSupported(std::string_view v);
// v >= min; false when v is malformed.
bool versionAtLeast(std::string_view v, std::string_view min);
// Results before 1.0.0 carry ips[].version and must not carry newer fields.
bool usesLegacyResult(std::string_view v);
// "0.3.0, 0.3.1, ..." for messages.
std::string supportedVersionList();

}  // namespace sluice::cni
