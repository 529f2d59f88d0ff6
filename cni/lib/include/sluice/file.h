// SPDX-License-Identifier: Apache-2.0
// Crash-safe small-file I/O shared by the IPAM allocator, the endpoint records and the
// agent: a reader never sees half a file, and a writer killed midway leaves only a temporary
// file with a known prefix behind (which the owner of the directory sweeps).
//
// How far a write must survive is the caller's choice (Durability):
//  - kAtomic: safe against the writer being killed at any point (rename/link of a complete
//    temporary), not against the machine crashing. The plugin's per-pod state (IPAM
//    reservations, endpoint records) is written this way, like the reference host-local
//    plugin and libcni's result cache do: it describes pods whose network namespaces cannot
//    outlive a machine crash, and after a reboot CNI GC and the agent's endpoint GC reconcile
//    whatever was or was not persisted. Each fsync costs a disk flush (milliseconds on a
//    busy node) on the ADD path.
//  - kDurable: fsync of the file before the rename and of the directory after it. For what
//    must survive a reboot as written: the agent's conflist and state.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/result.h"

namespace sluice {

// The whole file (at most maxBytes of it), or nullopt when it does not exist.
Result<std::optional<std::string>> readFileIfExists(const std::string& path,
                                                    size_t maxBytes = 1 << 20);

enum class Durability { kAtomic, kDurable };

// <dir>/<prefix><pid>-<n>, created exclusively with exactly `mode` (whatever the umask),
// written in full (and fsynced when durable); removed again on failure. Returns its path.
Result<std::string> writeTempFile(const std::string& dir, const std::string& prefix,
                                  std::string_view content, mode_t mode, Durability d);

// writeTempFile in the file's directory, rename over `path` (then, when durable, fsync the
// directory).
Status writeFileAtomic(const std::string& path, const std::string& tmpPrefix,
                       std::string_view content, mode_t mode, Durability d);

// What tells one version of a file from another without reading it: renaming a new file over
// it (editors, `mv`, installers) or rewriting it in place changes at least one of these.
struct FileSig {
  bool exists = false;
  bool regular = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  bool operator==(const FileSig& o) const {
    return exists == o.exists && regular == o.regular && dev == o.dev && ino == o.ino &&
           size == o.size && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

// The signature of what `path` names now (stat, following symlinks); exists is false when
// nothing does.
FileSig fileSig(const std::string& path);

}  // namespace sluice
