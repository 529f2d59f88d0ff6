// SPDX-License-Identifier: Apache-2.0
#include "gc.h"

#include <net/if.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "sluice/cni/endpoint.h"
#include "sluice/cni/hash.h"
#include "sluice/cni/ipam.h"

namespace sluice::agent {
namespace {

uint64_t boottimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

bool recordAlive(const cni::EndpointRecord& r) {
  if (r.hostIfindex > 0) return linkAlive(r.hostIfindex, r.hostVeth);
  return !r.hostVeth.empty() && if_nametoindex(r.hostVeth.c_str()) != 0;
}

// The built-in allocator's reservations whose attachment is dead: no live record, no host
// veth by the attachment's name, and older than the grace period (an ADD in flight holds its
// address a few milliseconds before it creates the veth). A plugin killed mid-ADD whose DEL
// never came leaves exactly this.
int releaseDeadReservations(const GcOptions& opts, const std::set<std::pair<std::string, std::string>>& live) {
  int released = 0;
  std::error_code ec;
  const std::string root = opts.stateDir + "/ipam";
  for (auto it = std::filesystem::directory_iterator(root, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    if (!it->is_directory()) continue;
    cni::LocalIpam ipam(it->path().string(), {});
    auto list = ipam.list();
    if (!list.ok()) {
      spdlog::warn("gc: {}: {}", it->path().string(), list.error().describe());
      continue;
    }
    for (const auto& r : *list) {
      if (live.count({r.containerId, r.ifname})) continue;
      if (if_nametoindex(cni::hostVethName(r.containerId, r.ifname).c_str()) != 0) continue;
      std::error_code age;
      auto mtime = std::filesystem::last_write_time(it->path() / r.ip.str(), age);
      if (age || std::filesystem::file_time_type::clock::now() - mtime < opts.reservationGrace) continue;
      auto freed = ipam.release(r.containerId, r.ifname);
      if (!freed.ok()) {
        spdlog::warn("gc: release {}: {}", r.ip.str(), freed.error().describe());
        continue;
      }
      released += static_cast<int>(freed->size());
      spdlog::info("gc: released {} of {}/{}: no endpoint and no veth", r.ip.str(), r.containerId, r.ifname);
    }
  }
  return released;
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
  std::vector<std::string> unreadable;
  SL_ASSIGN_OR_RETURN(auto records, cni::listEndpointRecords(opts.stateDir, &unreadable));
  for (const auto& u : unreadable) spdlog::warn("gc: unreadable endpoint record {} left alone", u);

  GcCounts counts;
  std::set<std::pair<net::IpAddr, int>> liveRefs;  // (pod IP, host ifindex) of live records
  std::set<std::pair<std::string, std::string>> liveAttachments;  // (container ID, ifname)
  for (const auto& r : records) {
    if (recordAlive(r)) {
      for (const auto& c : r.ips) liveRefs.insert({c.addr(), r.hostIfindex});
      liveAttachments.insert({r.containerId, r.ifName});
      continue;
    }
    spdlog::info("gc: endpoint {} ({}) lost its veth {} (ifindex {})", r.containerId, r.ifName,
                 r.hostVeth, r.hostIfindex);
    for (const auto& c : r.ips) {
      auto key = bpf::endpointKey(c.addr());
      SL_ASSIGN_OR_RETURN(auto cur, maps.endpoints.lookup(key));
      if (cur && static_cast<int>(cur->ifindex) == r.hostIfindex) {
        SL_ASSIGN_OR_RETURN(bool gone, maps.endpoints.erase(key));
        counts.endpoints += gone ? 1 : 0;
      }
    }
    if (r.ipamType == cni::kBuiltinIpamType) {
      cni::LocalIpam ipam(cni::LocalIpam::directory(opts.stateDir, r.network), {});
      auto freed = ipam.release(r.containerId, r.ifName);
      if (freed.ok()) counts.addresses += static_cast<int>(freed->size());
      else spdlog::warn("gc: release the addresses of {}: {}", r.hostVeth, freed.error().describe());
    }
    auto removed = cni::removeEndpointRecord(opts.stateDir, r.hostVeth);
    if (removed.ok() && *removed) ++counts.records;
  }
  counts.addresses += releaseDeadReservations(opts, liveAttachments);

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
