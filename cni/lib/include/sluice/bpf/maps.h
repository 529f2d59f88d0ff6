// SPDX-License-Identifier: Apache-2.0
// Typed access to Sluice's pinned BPF maps: the one wrapper the plugin, the agent, the CLI
// and the datapath tests all use. Layouts come from bpf/include/sluice/maps.h.
#pragma once

#include <bpf/bpf.h>
#include <fcntl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/fd.h"
#include "sluice/maps.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::bpf {

static_assert(sizeof(sl_ip) == 20);
static_assert(sizeof(sl_endpoint_key) == 20);
static_assert(sizeof(sl_endpoint) == 32);
static_assert(sizeof(sl_iface) == 24);
static_assert(sizeof(sl_route_key) == 24);
static_assert(sizeof(sl_route) == 32);
static_assert(sizeof(sl_config) == 48);
static_assert(sizeof(sl_counter) == 16);
static_assert(sizeof(sl_flow_key) == 40);
static_assert(sizeof(sl_flow) == 16);
static_assert(sizeof(sl_frag_key) == 12);
static_assert(sizeof(sl_frag) == 8);
static_assert(std::is_trivially_copyable_v<sl_flow_key> && std::is_trivially_copyable_v<sl_flow> &&
              std::is_trivially_copyable_v<sl_frag_key> && std::is_trivially_copyable_v<sl_frag>);
static_assert(std::is_trivially_copyable_v<sl_endpoint> && std::is_trivially_copyable_v<sl_route> &&
              std::is_trivially_copyable_v<sl_iface> && std::is_trivially_copyable_v<sl_config>);

// "<root>/<name>"
std::string pinPath(const std::string& root, const std::string& name);

// Opens a pinned object (map, program or link) by path. ENOENT -> CniCode::kDatapathMissing.
Result<Fd> openPinned(const std::string& path);

// The sl_endpoints key of a pod address.
inline sl_endpoint_key endpointKey(const net::IpAddr& ip) {
  sl_endpoint_key k{};
  ip.toSl(k.ip);
  return k;
}

// A map fd with typed operations. K and V must match the map's key/value sizes (checked on
// open against the kernel's map info).
template <typename K, typename V>
class Map {
 public:
  Map() = default;
  explicit Map(Fd fd) : fd_(std::move(fd)) {}

  static Result<Map> openPinned(const std::string& root, const std::string& name);
  // Wraps an fd already known to be the right map (e.g. from a skeleton); takes a dup.
  static Result<Map> fromFd(int fd);

  int fd() const { return fd_.get(); }

  Status update(const K& key, const V& value, uint64_t flags = BPF_ANY) const {
    if (bpf_map_update_elem(fd_.get(), &key, &value, flags) != 0)
      return Error::fromErrno(errno, "bpf map update", errno == E2BIG ? CniCode::kMapFull : CniCode::kBpf);
    return okStatus();
  }
  // nullopt when the key is absent.
  Result<std::optional<V>> lookup(const K& key) const {
    V v{};
    if (bpf_map_lookup_elem(fd_.get(), &key, &v) != 0) {
      if (errno == ENOENT) return std::optional<V>{};
      return Error::fromErrno(errno, "bpf map lookup", CniCode::kBpf);
    }
    return std::optional<V>{v};
  }
  // Absent keys are success (DEL is idempotent); returns whether something was removed.
  Result<bool> erase(const K& key) const {
    if (bpf_map_delete_elem(fd_.get(), &key) != 0) {
      if (errno == ENOENT) return false;
      return Error::fromErrno(errno, "bpf map delete", CniCode::kBpf);
    }
    return true;
  }
  Result<std::vector<std::pair<K, V>>> entries() const {
    std::vector<std::pair<K, V>> out;
    K key{}, next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(fd_.get(), prev, &next) == 0) {
      V v{};
      if (bpf_map_lookup_elem(fd_.get(), &next, &v) == 0) out.emplace_back(next, v);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return Error::fromErrno(errno, "bpf map iterate", CniCode::kBpf);
    return out;
  }

 private:
  Fd fd_;
};

// Checks that fd is a map whose key/value sizes are those given.
Status checkMapShape(int fd, uint32_t keySize, uint32_t valueSize, const std::string& name);

template <typename K, typename V>
Result<Map<K, V>> Map<K, V>::openPinned(const std::string& root, const std::string& name) {
  auto fd = bpf::openPinned(pinPath(root, name));
  if (!fd.ok()) return std::move(fd).error();
  SL_TRY(checkMapShape(fd->get(), sizeof(K), sizeof(V), name));
  return Map(std::move(fd).value());
}

template <typename K, typename V>
Result<Map<K, V>> Map<K, V>::fromFd(int fd) {
  SL_TRY(checkMapShape(fd, sizeof(K), sizeof(V), "map"));
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return Error::fromErrno(errno, "dup map fd");
  return Map(Fd(d));
}

using EndpointMap = Map<sl_endpoint_key, sl_endpoint>;
using IfaceMap = Map<uint32_t, sl_iface>;
using RouteMap = Map<sl_route_key, sl_route>;
using ConfigMap = Map<uint32_t, sl_config>;
using StackFlowMap = Map<sl_flow_key, sl_flow>;
using StackFragMap = Map<sl_frag_key, sl_frag>;

// The per-CPU metrics array, summed over CPUs.
class MetricsMap {
 public:
  MetricsMap() = default;
  explicit MetricsMap(Fd fd) : fd_(std::move(fd)) {}
  static Result<MetricsMap> openPinned(const std::string& root);
  static Result<MetricsMap> fromFd(int fd);
  int fd() const { return fd_.get(); }
  // Index = SL_CNT_*; size SL_CNT_MAX.
  Result<std::vector<sl_counter>> read() const;

 private:
  Fd fd_;
};

// Every pinned map of a datapath, opened together, with the layout version verified.
struct PinnedMaps {
  EndpointMap endpoints;
  IfaceMap ifaces;
  RouteMap routes;
  ConfigMap config;
  MetricsMap metrics;

  // kDatapathMissing if the agent has not pinned the datapath under root; a clear error if
  // sl_config says another SL_LAYOUT_VERSION.
  static Result<PinnedMaps> open(const std::string& root);
};

// Human/metrics names: "redirect_local", ..., and drop reasons "spoofed_src", ...
const char* counterName(int counterId);  // nullptr for unused slots
const char* dropReasonName(int reason);  // reason < 0

// How the datapath finds flows the host stack translated (lib/nat.h), from sl_config.flags
// and whether the kernel has the conntrack lookup kfunc: "conntrack", "records" or "off".
const char* natDetectionName(uint32_t configFlags, bool conntrackKfunc);

}  // namespace sluice::bpf
