// SPDX-License-Identifier: Apache-2.0
#include "sluice/bpf/maps.h"

#include <bpf/libbpf.h>

#include <array>
#include <cerrno>

namespace sluice::bpf {

std::string pinPath(const std::string& root, const std::string& name) {
  if (!root.empty() && root.back() == '/') return root + name;
  return root + "/" + name;
}

Result<Fd> openPinned(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT)
      return Error(CniCode::kDatapathMissing,
                   "BPF object " + path + " is not pinned: is sluice-agent running on this node?", err);
    return Error::fromErrno(err, "open pinned BPF object " + path, CniCode::kBpf);
  }
  return Fd(fd);
}

Status checkMapShape(int fd, uint32_t keySize, uint32_t valueSize, const std::string& name) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return Error::fromErrno(errno, "inspect BPF map " + name, CniCode::kBpf);
  if (info.key_size != keySize || info.value_size != valueSize)
    return Error(CniCode::kBpf, "BPF map " + name + " has key/value sizes " + std::to_string(info.key_size) + "/" +
                                    std::to_string(info.value_size) + ", this build expects " +
                                    std::to_string(keySize) + "/" + std::to_string(valueSize) +
                                    ": pinned by an incompatible Sluice version");
  return okStatus();
}

Result<MetricsMap> MetricsMap::openPinned(const std::string& root) {
  SL_ASSIGN_OR_RETURN(Fd fd, bpf::openPinned(pinPath(root, SL_MAP_METRICS)));
  SL_TRY(checkMapShape(fd.get(), sizeof(uint32_t), sizeof(sl_counter), SL_MAP_METRICS));
  return MetricsMap(std::move(fd));
}

Result<MetricsMap> MetricsMap::fromFd(int fd) {
  SL_TRY(checkMapShape(fd, sizeof(uint32_t), sizeof(sl_counter), SL_MAP_METRICS));
  int d = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return Error::fromErrno(errno, "dup metrics map fd");
  return MetricsMap(Fd(d));
}

Result<std::vector<sl_counter>> MetricsMap::read() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Error::fromErrno(-ncpu, "count possible CPUs", CniCode::kBpf);
  std::vector<sl_counter> percpu(static_cast<size_t>(ncpu));
  std::vector<sl_counter> out(SL_CNT_MAX);
  for (uint32_t id = 0; id < SL_CNT_MAX; ++id) {
    if (bpf_map_lookup_elem(fd_.get(), &id, percpu.data()) != 0)
      return Error::fromErrno(errno, "read metrics map", CniCode::kBpf);
    for (const auto& c : percpu) {
      out[id].packets += c.packets;
      out[id].bytes += c.bytes;
    }
  }
  return out;
}

Result<PinnedMaps> PinnedMaps::open(const std::string& root) {
  PinnedMaps m;
  SL_ASSIGN_OR_RETURN(m.config, ConfigMap::openPinned(root, SL_MAP_CONFIG));
  SL_ASSIGN_OR_RETURN(auto cfg, m.config.lookup(0));
  uint32_t version = cfg ? cfg->layout_version : 0;
  if (version == 0)
    return Error(CniCode::kDatapathMissing, "the datapath under " + root + " is not initialised (sl_config empty)");
  if (version != SL_LAYOUT_VERSION)
    return Error(CniCode::kBpf, "the datapath pinned under " + root + " has map layout version " +
                                    std::to_string(version) + ", this build uses " +
                                    std::to_string(SL_LAYOUT_VERSION) + ": upgrade sluice-agent first");
  SL_ASSIGN_OR_RETURN(m.endpoints, EndpointMap::openPinned(root, SL_MAP_ENDPOINTS));
  SL_ASSIGN_OR_RETURN(m.ifaces, IfaceMap::openPinned(root, SL_MAP_IFACES));
  SL_ASSIGN_OR_RETURN(m.routes, RouteMap::openPinned(root, SL_MAP_ROUTES));
  SL_ASSIGN_OR_RETURN(m.metrics, MetricsMap::openPinned(root));
  return m;
}

const char* counterName(int counterId) {
  switch (counterId) {
    case SL_CNT_REDIRECT_LOCAL: return "redirect_local";
    case SL_CNT_ENCAP: return "encap";
    case SL_CNT_DECAP: return "decap";
    case SL_CNT_TO_STACK: return "to_stack";
    case SL_CNT_NATIVE: return "native";
    case SL_CNT_TO_STACK_NAT: return "to_stack_nat";
    case SL_CNT_NATIVE_IN: return "native_in";
    case SL_CNT_ENCAP_DIRECT: return "encap_direct";
    case SL_CNT_DECAP_DIRECT: return "decap_direct";
    case SL_CNT_LINK_SCOPE: return "link_scope";
    default: break;
  }
  if (counterId > SL_CNT_DROP_BASE && counterId <= static_cast<int>(SL_CNT_DROP_BASE) + static_cast<int>(SL_DROP_MAX_REASON))
    return dropReasonName(-(counterId - SL_CNT_DROP_BASE));
  return nullptr;
}

const char* dropReasonName(int reason) {
  switch (reason) {
    case SL_DROP_SPOOFED_SRC: return "spoofed_src";
    case SL_DROP_UNKNOWN_IFACE: return "unknown_iface";
    case SL_DROP_MALFORMED: return "malformed";
    case SL_DROP_TTL_EXCEEDED: return "ttl_exceeded";
    case SL_DROP_NO_CONFIG: return "no_config";
    case SL_DROP_TUNNEL_KEY: return "tunnel_key";
    case SL_DROP_REDIRECT: return "redirect_failed";
    case SL_DROP_FRAG_NEEDED: return "frag_needed";
    case SL_DROP_NO_ROUTE: return "no_route";
    default: return nullptr;
  }
}

const char* natDetectionName(uint32_t configFlags, bool conntrackKfunc) {
  if (configFlags & SL_CFG_F_NAT_OFF) return "off";
  if (!(configFlags & SL_CFG_F_NAT_RECORDS) && conntrackKfunc) return "conntrack";
  return "records";
}

}  // namespace sluice::bpf
