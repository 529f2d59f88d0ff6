// SPDX-License-Identifier: Apache-2.0
#include "sluice/bpf/datapath.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "native.skel.h"
#include "overlay.skel.h"
#include "pod.skel.h"
#include "sluice/log.h"

namespace sluice::bpf {
namespace {

struct PodSkelDeleter {
  void operator()(pod* s) const { pod::destroy(s); }
};
struct OverlaySkelDeleter {
  void operator()(overlay* s) const { overlay::destroy(s); }
};
struct NativeSkelDeleter {
  void operator()(native* s) const { native::destroy(s); }
};

constexpr std::array<const char*, 7> kMapNames = {SL_MAP_ENDPOINTS, SL_MAP_IFACES,      SL_MAP_ROUTES,
                                                  SL_MAP_CONFIG,    SL_MAP_METRICS,     SL_MAP_STACK_FLOWS,
                                                  SL_MAP_STACK_FRAGS};
constexpr std::array<const char*, 7> kProgNames = {SL_PROG_FROM_POD,     SL_PROG_TO_POD,
                                                   SL_PROG_FROM_OVERLAY, SL_PROG_TO_OVERLAY,
                                                   SL_PROG_FROM_NATIVE,  SL_PROG_TO_NATIVE,
                                                   SL_PROG_FROM_TUNNEL};

// Refuses pinned maps written by another layout version before libbpf gets to reinterpret
// them. Version 1 is the first layout: there is nothing older to migrate from yet.
Status checkPinnedLayout(const std::string& root) {
  std::string cfgPin = pinPath(root, SL_MAP_CONFIG);
  if (::access(cfgPin.c_str(), F_OK) != 0) return okStatus();
  SL_ASSIGN_OR_RETURN(Fd fd, openPinned(cfgPin));
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return Error::fromErrno(errno, "inspect pinned " + cfgPin, CniCode::kBpf);
  if (info.value_size < sizeof(uint32_t))
    return Error(CniCode::kBpf, cfgPin + " is not a Sluice config map");
  std::vector<uint8_t> value(info.value_size);
  uint32_t key = 0;
  if (bpf_map_lookup_elem(fd.get(), &key, value.data()) != 0)
    return Error::fromErrno(errno, "read pinned " + cfgPin, CniCode::kBpf);
  uint32_t version = 0;
  std::memcpy(&version, value.data(), sizeof(version));  // layout_version is the first field of every layout
  if (version != 0 && version != SL_LAYOUT_VERSION)
    return Error(CniCode::kBpf, "maps pinned under " + root + " have layout version " + std::to_string(version) +
                                    " and this build knows no migration from it to version " +
                                    std::to_string(SL_LAYOUT_VERSION) +
                                    "; refusing to reuse them (remove the pins to start afresh)");
  return okStatus();
}

// Pins a program by writing a new pin and renaming it over the old one: the path never
// disappears, so a plugin opening it during an upgrade gets either program.
Status pinProgram(int progFd, const std::string& root, const char* name) {
  std::string final = pinPath(root, name);
  std::string tmp = pinPath(root, std::string(name) + "_new");  // bpffs refuses dots in names
  ::unlink(tmp.c_str());
  if (bpf_obj_pin(progFd, tmp.c_str()) != 0)
    return Error::fromErrno(errno, "pin program at " + tmp, CniCode::kBpf);
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno(err, "rename pinned program to " + final, CniCode::kBpf);
  }
  return okStatus();
}

// Tests load the datapath without pins: drop the pin-by-name paths libbpf derived at open.
Status unpinMaps(bpf_object* obj) {
  bpf_map* m = nullptr;
  bpf_object__for_each_map(m, obj) {
    if (int err = bpf_map__set_pin_path(m, nullptr); err)
      return Error::fromErrno(err, std::string("unpin map ") + bpf_map__name(m), CniCode::kBpf);
  }
  return okStatus();
}

Error libbpfError(int err, const std::string& what) {
  return Error::fromErrno(err, what, CniCode::kBpf);
}

}  // namespace

struct Datapath::Skeletons {
  std::unique_ptr<pod, PodSkelDeleter> podSkel;
  std::unique_ptr<overlay, OverlaySkelDeleter> overlaySkel;
  std::unique_ptr<native, NativeSkelDeleter> nativeSkel;
};

Datapath::Datapath() = default;
Datapath::Datapath(Datapath&&) noexcept = default;
Datapath& Datapath::operator=(Datapath&&) noexcept = default;
Datapath::~Datapath() = default;

int Datapath::fromPodFd() const { return bpf_program__fd(skels_->podSkel->progs.sl_from_pod); }
int Datapath::toPodFd() const { return bpf_program__fd(skels_->podSkel->progs.sl_to_pod); }
int Datapath::fromOverlayFd() const { return bpf_program__fd(skels_->overlaySkel->progs.sl_from_overlay); }
int Datapath::toOverlayFd() const { return bpf_program__fd(skels_->overlaySkel->progs.sl_to_overlay); }
int Datapath::fromNativeFd() const { return bpf_program__fd(skels_->nativeSkel->progs.sl_from_native); }
int Datapath::toNativeFd() const { return bpf_program__fd(skels_->nativeSkel->progs.sl_to_native); }
int Datapath::fromTunnelFd() const { return bpf_program__fd(skels_->overlaySkel->progs.sl_from_tunnel); }

Result<Datapath> Datapath::load(const DatapathOptions& opts) {
  const bool pinned = !opts.bpfRoot.empty();
  if (pinned) {
    std::error_code ec;
    std::filesystem::create_directories(opts.bpfRoot, ec);
    if (ec) return Error::fromErrno(ec.value(), "create BPF pin directory " + opts.bpfRoot);
    SL_TRY(checkPinnedLayout(opts.bpfRoot));
  }

  bpf_object_open_opts oo{};
  oo.sz = sizeof(oo);
  if (pinned) oo.pin_root_path = opts.bpfRoot.c_str();

  Datapath dp;
  dp.skels_ = std::make_unique<Skeletons>();
  dp.skels_->podSkel.reset(pod::open(&oo));
  if (!dp.skels_->podSkel) return libbpfError(errno, "open BPF object pod");
  if (!pinned) SL_TRY(unpinMaps(dp.skels_->podSkel->obj));
  dp.skels_->podSkel->rodata->sl_vxlan_port = opts.vxlanPort;
  if (int err = pod::load(dp.skels_->podSkel.get()); err)
    return libbpfError(err, pinned ? "load BPF object pod (maps pinned under " + opts.bpfRoot +
                                         " by an incompatible build?)"
                                   : std::string("load BPF object pod"));

  dp.skels_->overlaySkel.reset(overlay::open(&oo));
  if (!dp.skels_->overlaySkel) return libbpfError(errno, "open BPF object overlay");
  if (!pinned) SL_TRY(unpinMaps(dp.skels_->overlaySkel->obj));
  dp.skels_->overlaySkel->rodata->sl_vxlan_port = opts.vxlanPort;
  dp.skels_->nativeSkel.reset(native::open(&oo));
  if (!dp.skels_->nativeSkel) return libbpfError(errno, "open BPF object native");
  if (!pinned) SL_TRY(unpinMaps(dp.skels_->nativeSkel->obj));
  // One set of maps for every program, pinned or not.
  auto* ps = dp.skels_->podSkel.get();
  auto* os = dp.skels_->overlaySkel.get();
  auto* ns = dp.skels_->nativeSkel.get();
  std::array<std::pair<bpf_map*, bpf_map*>, 14> share = {{{os->maps.sl_endpoints, ps->maps.sl_endpoints},
                                                          {os->maps.sl_ifaces, ps->maps.sl_ifaces},
                                                          {os->maps.sl_routes, ps->maps.sl_routes},
                                                          {os->maps.sl_config, ps->maps.sl_config},
                                                          {os->maps.sl_metrics, ps->maps.sl_metrics},
                                                          {os->maps.sl_stack_flows, ps->maps.sl_stack_flows},
                                                          {os->maps.sl_stack_frags, ps->maps.sl_stack_frags},
                                                          {ns->maps.sl_endpoints, ps->maps.sl_endpoints},
                                                          {ns->maps.sl_ifaces, ps->maps.sl_ifaces},
                                                          {ns->maps.sl_routes, ps->maps.sl_routes},
                                                          {ns->maps.sl_config, ps->maps.sl_config},
                                                          {ns->maps.sl_metrics, ps->maps.sl_metrics},
                                                          {ns->maps.sl_stack_flows, ps->maps.sl_stack_flows},
                                                          {ns->maps.sl_stack_frags, ps->maps.sl_stack_frags}}};
  for (auto& [to, from] : share) {
    if (int err = bpf_map__reuse_fd(to, bpf_map__fd(from)); err)
      return libbpfError(err, std::string("share map ") + bpf_map__name(from));
  }
  if (int err = overlay::load(os); err) return libbpfError(err, "load BPF object overlay");
  if (int err = native::load(ns); err) return libbpfError(err, "load BPF object native");

  SL_ASSIGN_OR_RETURN(dp.maps_.endpoints, EndpointMap::fromFd(bpf_map__fd(ps->maps.sl_endpoints)));
  SL_ASSIGN_OR_RETURN(dp.maps_.ifaces, IfaceMap::fromFd(bpf_map__fd(ps->maps.sl_ifaces)));
  SL_ASSIGN_OR_RETURN(dp.maps_.routes, RouteMap::fromFd(bpf_map__fd(ps->maps.sl_routes)));
  SL_ASSIGN_OR_RETURN(dp.maps_.config, ConfigMap::fromFd(bpf_map__fd(ps->maps.sl_config)));
  SL_ASSIGN_OR_RETURN(dp.maps_.metrics, MetricsMap::fromFd(bpf_map__fd(ps->maps.sl_metrics)));
  SL_ASSIGN_OR_RETURN(dp.stackFlows_, StackFlowMap::fromFd(bpf_map__fd(ps->maps.sl_stack_flows)));
  SL_ASSIGN_OR_RETURN(dp.stackFrags_, StackFragMap::fromFd(bpf_map__fd(ps->maps.sl_stack_frags)));

  SL_ASSIGN_OR_RETURN(auto cfg, dp.maps_.config.lookup(0));
  sl_config c = cfg.value_or(sl_config{});
  if (c.layout_version != SL_LAYOUT_VERSION) {
    c.layout_version = SL_LAYOUT_VERSION;
    SL_TRY(dp.maps_.config.update(0, c));
  }

  if (pinned) {
    SL_TRY(pinProgram(dp.fromPodFd(), opts.bpfRoot, SL_PROG_FROM_POD));
    SL_TRY(pinProgram(dp.toPodFd(), opts.bpfRoot, SL_PROG_TO_POD));
    SL_TRY(pinProgram(dp.fromOverlayFd(), opts.bpfRoot, SL_PROG_FROM_OVERLAY));
    SL_TRY(pinProgram(dp.toOverlayFd(), opts.bpfRoot, SL_PROG_TO_OVERLAY));
    SL_TRY(pinProgram(dp.fromNativeFd(), opts.bpfRoot, SL_PROG_FROM_NATIVE));
    SL_TRY(pinProgram(dp.toNativeFd(), opts.bpfRoot, SL_PROG_TO_NATIVE));
    SL_TRY(pinProgram(dp.fromTunnelFd(), opts.bpfRoot, SL_PROG_FROM_TUNNEL));
    spdlog::info("datapath loaded and pinned under {} (conntrack lookup kfunc {})", opts.bpfRoot,
                 conntrackKfuncAvailable() ? "available" : "absent: NAT detection by flow records");
  }
  return dp;
}

bool datapathPinned(const std::string& bpfRoot) {
  for (const char* n : kMapNames)
    if (::access(pinPath(bpfRoot, n).c_str(), F_OK) != 0) return false;
  for (const char* n : kProgNames)
    if (::access(pinPath(bpfRoot, n).c_str(), F_OK) != 0) return false;
  return PinnedMaps::open(bpfRoot).ok();
}

bool conntrackKfuncAvailable() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return false;
  bool found = btf__find_by_name_kind(vmlinux, "bpf_skb_ct_lookup", BTF_KIND_FUNC) > 0;
  if (!found) {
    // nf_conntrack built as a module carries its kfuncs in its own BTF (once loaded).
    if (btf* mod = btf__load_module_btf("nf_conntrack", vmlinux); mod != nullptr) {
      found = btf__find_by_name_kind(mod, "bpf_skb_ct_lookup", BTF_KIND_FUNC) > 0;
      btf__free(mod);
    }
  }
  btf__free(vmlinux);
  return found;
}

}  // namespace sluice::bpf
