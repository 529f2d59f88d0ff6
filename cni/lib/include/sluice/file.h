// SPDX-License-Identifier: Apache-2.0
// Crash-safe small-file I/O shared by the IPAM allocator, the endpoint records and the
// agent: a reader never sees half a file, and a writer killed midway leaves only a temporary
// file with a known prefix behind (which the owner of the directory sweeps).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/result.h"

namespace sluice {

// The whole file (at most maxBytes of it), or nullopt when it does not exist.
Result<std::optional<std::string>> readFileIfExists(const std::string& path,
                                                    size_t maxBytes = 1 << 20);

// <dir>/<prefix><pid>-<n>, created exclusively with `mode`, written in full and fsynced;
// removed again on failure. Returns its path.
Result<std::string> writeTempFile(const std::string& dir, const std::string& prefix,
                                  std::string_view content, mode_t mode);

// writeTempFile in the file's directory, rename over `path`, fsync the directory.
Status writeFileAtomic(const std::string& path, const std::string& tmpPrefix,
                       std::string_view content, mode_t mode);

// fsync of a directory (after a rename or unlink in it); best effort.
void syncDir(const std::string& dir);

}  // namespace sluice
