// SPDX-License-Identifier: Apache-2.0
#include "gc.h"

#include <net/if.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "records.h"

namespace sluice::agent {
namespace {

uint64_t boottimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool recordAlive(const EndpointRecord& r) {
  if (r.hostIfindex > 0) return linkAlive(r.hostIfindex, r.hostVeth);
  return !r.hostVeth.empty() && if_nametoindex(r.hostVeth.c_str()) != 0;
}

sl_endpoint_key keyOf(const net::IpAddr& ip) {
  sl_endpoint_key k{};
  ip.toSl(k.ip);
  return k;
}

}  // namespace

bool linkAlive(int ifindex, const std::string& name) {
  char buf[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), buf) == nullptr) return false;
  return name.empty() || name == buf;
}

Result<GcCounts> collectEndpoints(const bpf::PinnedMaps& maps, const GcOptions& opts) {
  // Maps first, records second: an entry seen here was written after its record (ADD's
  // order), so a live endpoint's record is always in the scan below.
  SL_ASSIGN_OR_RETURN(auto endpoints, maps.endpoints.entries());
  SL_ASSIGN_OR_RETURN(auto ifaces, maps.ifaces.entries());
  RecordScan scan = scanRecords(opts.stateDir);

  GcCounts counts;
  std::set<std::pair<net::IpAddr, int>> liveRefs;  // (pod IP, host ifindex) of live records
  std::set<int> liveIfindexes;
  for (const auto& r : scan.records) {
    if (recordAlive(r)) {
      for (const auto& c : r.ips) liveRefs.insert({c.addr(), r.hostIfindex});
      liveIfindexes.insert(r.hostIfindex);
      continue;
    }
    spdlog::info("gc: endpoint {} ({}) lost its veth {} (ifindex {})", r.containerID, r.ifName,
                 r.hostVeth, r.hostIfindex);
    for (const auto& c : r.ips) {
      auto key = keyOf(c.addr());
      SL_ASSIGN_OR_RETURN(auto cur, maps.endpoints.lookup(key));
      if (cur && static_cast<int>(cur->ifindex) == r.hostIfindex) {
        SL_ASSIGN_OR_RETURN(bool gone, maps.endpoints.erase(key));
        counts.endpoints += gone ? 1 : 0;
      }
    }
    std::error_code ec;
    if (std::filesystem::remove(r.path, ec)) ++counts.records;
  }

  const uint64_t now = boottimeNs();
  for (const auto& [key, ep] : endpoints) {
    auto ip = net::IpAddr::fromSl(key.ip);
    const int ifindex = static_cast<int>(ep.ifindex);
    const bool alive = linkAlive(ifindex);
    const bool referenced = liveRefs.count({ip, ifindex}) > 0;
    if (alive && referenced) continue;
    if (alive && now - ep.created_ns < opts.orphanGraceNs && ep.created_ns <= now) continue;
    // Re-check: a new ADD may have taken the address since the maps were read.
    SL_ASSIGN_OR_RETURN(auto cur, maps.endpoints.lookup(key));
    if (!cur || cur->ifindex != ep.ifindex || cur->created_ns != ep.created_ns) continue;
    SL_ASSIGN_OR_RETURN(bool gone, maps.endpoints.erase(key));
    if (gone) {
      ++counts.endpoints;
      spdlog::info("gc: sl_endpoints {} (ifindex {}): {}", ip.str(), ifindex,
                   alive ? "no endpoint record" : "veth gone");
    }
  }
  for (const auto& [ifindex, iface] : ifaces) {
    (void)iface;
    if (linkAlive(static_cast<int>(ifindex))) continue;
    SL_ASSIGN_OR_RETURN(bool gone, maps.ifaces.erase(ifindex));
    if (gone) {
      ++counts.ifaces;
      spdlog::info("gc: sl_ifaces ifindex {}: veth gone", ifindex);
    }
  }
  return counts;
}

}  // namespace sluice::agent
