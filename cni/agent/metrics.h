// SPDX-License-Identifier: Apache-2.0
// /metrics: the datapath's per-CPU counters (summed) and the agent's own gauges, in the
// Prometheus text exposition format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/maps.h"

namespace sluice::agent {

struct MetricsSnapshot {
  std::optional<std::vector<sl_counter>> counters;  // nullopt: datapath not readable
  int64_t endpoints = -1;  // -1: unknown (map unreadable)
  int64_t routes = -1;
  // Entries per pinned hash map (sl_endpoints, sl_ifaces, sl_routes), beside their capacity:
  // a full map makes ADD fail with the map-full error.
  std::vector<std::pair<std::string, int64_t>> mapEntries;
  int64_t nodes = 0;
  uint64_t reconcileErrors = 0;
  int64_t unroutablePodCidrs = 0;
  uint64_t gcRemoved = 0;
  uint64_t gcReleased = 0;
  bool ready = false;
  std::string version;
};

std::string renderMetrics(const MetricsSnapshot& m);

// Escapes a Prometheus label value.
std::string promEscape(const std::string& v);

}  // namespace sluice::agent
