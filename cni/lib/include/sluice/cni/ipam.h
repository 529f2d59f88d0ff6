// SPDX-License-Identifier: Apache-2.0
// The built-in allocator "sluice-ipam": host-local's model and on-disk format, in-process.
//
// State lives in <stateDir>/ipam/<network>/ (docs/internals.md): one file per reserved address,
// named by the address and holding "<containerID>\n<ifname>\n", created by link(2) from a
// fully written temporary file so that a crash never leaves a half reservation; a `lock` file
// held with flock(2) around every operation (the kernel drops it when a process dies, so a
// crashed plugin never blocks the next one); `last_reserved_ip.<n>` per range set for
// round-robin allocation; and an index, a symlink `.att.<key>` per attachment (key: a hash of
// containerID and ifname) naming its addresses, so that they are found without reading every
// reservation.
#pragma once

#include <string>
#include <vector>

#include "sluice/cni/config.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::cni {

struct Reservation {
  net::IpAddr ip;
  std::string containerId;
  std::string ifname;
};

struct Allocation {
  net::IpAddr ip;
  IpRange range;    // the range it came from (subnet, explicit gateway)
  int rangeSet = 0;
  bool reused = false;  // already held by this (containerID, ifname)
};

class LocalIpam {
 public:
  LocalIpam(std::string dir, std::vector<RangeSet> ranges);

  // <stateDir>/ipam/<network>
  static std::string directory(const std::string& stateDir, const std::string& network);

  // One address per range set for the attachment; an attachment that already holds addresses
  // gets the same ones back. kIpamExhausted when a range set has no free address (nothing
  // is reserved then).
  Result<std::vector<Allocation>> allocate(const std::string& containerId,
                                           const std::string& ifname);
  // The addresses the attachment holds (any range set, even ones no longer configured).
  Result<std::vector<net::IpAddr>> find(const std::string& containerId,
                                        const std::string& ifname) const;
  // Releases every address of the attachment; none held is success. Returns what was freed.
  Result<std::vector<net::IpAddr>> release(const std::string& containerId,
                                           const std::string& ifname);
  Result<std::vector<Reservation>> list() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<RangeSet> ranges_;
};

}  // namespace sluice::cni
