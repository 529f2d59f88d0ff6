// SPDX-License-Identifier: Apache-2.0
// Endpoint GC: entries of sl_endpoints / sl_ifaces whose host veth is gone, or whose record
// file is gone, are removed together with their records and built-in IPAM reservations;
// reservations of attachments that never got a veth (a plugin killed mid-ADD, no DEL) too. Keeps the maps from filling up
// with pods that died while the plugin's DEL never ran (node crash, runtime bug).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "sluice/bpf/maps.h"

namespace sluice::agent {

struct GcCounts {
  int endpoints = 0;  // sl_endpoints entries removed
  int ifaces = 0;     // sl_ifaces entries removed
  int records = 0;    // record files removed
  int addresses = 0;  // built-in IPAM reservations released
};

struct GcOptions {
  std::string stateDir;
  // An endpoint without a record is only collected once it is this old (CLOCK_BOOTTIME of
  // its ADD), in case a plugin outside our contract writes the map before the record.
  uint64_t orphanGraceNs = 5'000'000'000ull;
  // A built-in IPAM reservation with neither a live record nor a host veth is released once
  // its file is this old (ADD creates the veth milliseconds after reserving).
  std::chrono::seconds reservationGrace{60};
};

Result<GcCounts> collectEndpoints(const bpf::PinnedMaps& maps, const GcOptions& opts);

// True when ifindex exists in this network namespace (and is called `name`, if given).
bool linkAlive(int ifindex, const std::string& name = {});

}  // namespace sluice::agent
