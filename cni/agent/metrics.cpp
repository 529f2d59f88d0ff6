// SPDX-License-Identifier: Apache-2.0
#include "metrics.h"

#include <sstream>

#include "sluice/bpf/maps.h"

namespace sluice::agent {
namespace {

int64_t mapCapacity(const std::string& name) {
  if (name == "sl_endpoints") return SL_MAX_ENDPOINTS;
  if (name == "sl_ifaces") return SL_MAX_IFACES;
  if (name == "sl_routes") return SL_MAX_ROUTES;
  return -1;
}

void header(std::ostringstream& o, const char* name, const char* type, const char* help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
}

}  // namespace

std::string promEscape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string renderMetrics(const MetricsSnapshot& m) {
  std::ostringstream o;
  if (m.counters) {
    const auto& c = *m.counters;
    uint64_t dropPackets = 0, dropBytes = 0;
    for (int i = SL_CNT_DROP_BASE; i < static_cast<int>(c.size()) && i < SL_CNT_MAX; ++i) {
      dropPackets += c[i].packets;
      dropBytes += c[i].bytes;
    }
    header(o, "sluice_datapath_packets_total", "counter", "Packets handled by the datapath, by verdict.");
    for (int i = 0; i < SL_CNT_DROP_BASE && i < static_cast<int>(c.size()); ++i)
      if (const char* n = bpf::counterName(i))
        o << "sluice_datapath_packets_total{verdict=\"" << n << "\"} " << c[i].packets << "\n";
    o << "sluice_datapath_packets_total{verdict=\"drop\"} " << dropPackets << "\n";
    header(o, "sluice_datapath_bytes_total", "counter", "Bytes handled by the datapath, by verdict.");
    for (int i = 0; i < SL_CNT_DROP_BASE && i < static_cast<int>(c.size()); ++i)
      if (const char* n = bpf::counterName(i))
        o << "sluice_datapath_bytes_total{verdict=\"" << n << "\"} " << c[i].bytes << "\n";
    o << "sluice_datapath_bytes_total{verdict=\"drop\"} " << dropBytes << "\n";
    header(o, "sluice_datapath_drops_total", "counter", "Packets dropped by the datapath, by reason.");
    for (int r = 1; r <= static_cast<int>(SL_DROP_MAX_REASON); ++r) {
      int idx = SL_CNT_DROP_BASE + r;
      const char* n = bpf::dropReasonName(-r);
      if (n == nullptr || idx >= static_cast<int>(c.size())) continue;
      o << "sluice_datapath_drops_total{reason=\"" << n << "\"} " << c[idx].packets << "\n";
    }
  }
  header(o, "sluice_endpoints", "gauge", "Pod addresses in sl_endpoints (an entry per address: two per dual-stack pod).");
  if (m.endpoints >= 0) o << "sluice_endpoints " << m.endpoints << "\n";
  if (!m.mapEntries.empty()) {
    header(o, "sluice_map_entries", "gauge", "Entries in each pinned hash map.");
    for (const auto& [name, n] : m.mapEntries)
      o << "sluice_map_entries{map=\"" << name << "\"} " << n << "\n";
    header(o, "sluice_map_max_entries", "gauge", "Capacity of each pinned hash map (ADD fails once one is full).");
    for (const auto& [name, n] : m.mapEntries) {
      (void)n;
      o << "sluice_map_max_entries{map=\"" << name << "\"} " << mapCapacity(name) << "\n";
    }
  }
  header(o, "sluice_nodes", "gauge", "Nodes in the current node snapshot.");
  o << "sluice_nodes " << m.nodes << "\n";
  header(o, "sluice_routes", "gauge", "Remote pod CIDRs in sl_routes (IPv4 and IPv6 ones).");
  if (m.routes >= 0) o << "sluice_routes " << m.routes << "\n";
  header(o, "sluice_unroutable_pod_cidrs", "gauge",
         "Remote pod CIDRs left without a route (native routing: an IPv6 pod CIDR while this node or "
         "its owner has no IPv6 InternalIP).");
  o << "sluice_unroutable_pod_cidrs " << m.unroutablePodCidrs << "\n";
  header(o, "sluice_reconcile_errors_total", "counter", "Failed reconciles and node source errors.");
  o << "sluice_reconcile_errors_total " << m.reconcileErrors << "\n";
  header(o, "sluice_gc_removed_total", "counter", "Endpoint map entries removed by GC.");
  o << "sluice_gc_removed_total " << m.gcRemoved << "\n";
  header(o, "sluice_gc_released_addresses_total", "counter", "Built-in IPAM addresses of dead endpoints released by GC.");
  o << "sluice_gc_released_addresses_total " << m.gcReleased << "\n";
  header(o, "sluice_ready", "gauge", "1 once the datapath is loaded and the conflist written.");
  o << "sluice_ready " << (m.ready ? 1 : 0) << "\n";
  header(o, "sluice_build_info", "gauge", "Build information.");
  o << "sluice_build_info{version=\"" << promEscape(m.version) << "\"} 1\n";
  return o.str();
}

}  // namespace sluice::agent
