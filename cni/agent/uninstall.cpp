// SPDX-License-Identifier: Apache-2.0
#include "uninstall.h"

#include <net/if.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "conflist.h"
#include "instance_lock.h"
#include "kernel_routes.h"
#include "masquerade.h"
#include "nl.h"
#include "node_setup.h"
#include "sluice/bpf/maps.h"
#include "vxlan.h"

namespace sluice::agent {
namespace {

Result<bool> removeFile(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  return Error::fromErrno(errno, "remove " + path, CniCode::kIoFailure);
}

// sl_from_tunnel, sl_from_native and sl_to_native off every interface that has them (the
// underlay, found by program name: the state file may be gone). Returns how many interfaces.
Result<int> detachUnderlayPrograms() {
  std::unique_ptr<struct if_nameindex, decltype(&if_freenameindex)> ifs(if_nameindex(), &if_freenameindex);
  if (!ifs) return Error::fromErrno(errno, "list interfaces", CniCode::kIoFailure);
  int detached = 0;
  for (const struct if_nameindex* i = ifs.get(); i->if_index != 0; ++i) {
    SL_ASSIGN_OR_RETURN(bool any, detachUnderlayFrom(static_cast<int>(i->if_index), /*tunnelToo=*/true));
    if (any) ++detached;
  }
  return detached;
}

// Unlinks every sl_* pin under root, then root itself when it is empty and not a mount point.
Result<int> removePins(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(root, ec)) return 0;
  int removed = 0;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("sl_", 0) != 0) continue;
    if (::unlink(e.path().c_str()) != 0 && errno != ENOENT)
      return Error::fromErrno(errno, "unpin " + e.path().string(), CniCode::kIoFailure);
    ++removed;
  }
  if (ec) return Error::fromErrno(ec.value(), "list " + root, CniCode::kIoFailure);
  ::rmdir(root.c_str());  // fails harmlessly when not empty or a mount point
  return removed;
}

}  // namespace

Result<UninstallReport> uninstallNode(const AgentOptions& o) {
  // Held to the end, so no agent starts midway (instance_lock.h). Where there is no state dir no
  // agent runs, and none is made for the lock: uninstall leaves nothing of its own behind.
  std::optional<InstanceLock> lock;
  if (std::error_code ec; std::filesystem::exists(o.stateDir, ec)) {
    int holder = 0;
    SL_ASSIGN_OR_RETURN(lock, InstanceLock::tryAcquire(o.stateDir, &holder));
    if (!lock)
      return Error(CniCode::kInvalidConfig,
                   "sluice-agent (pid " + std::to_string(holder) +
                       ") is still running and would reinstall everything: stop it first");
  }
  UninstallReport r;
  // The conflist first: from here on the runtime no longer hands pods to Sluice.
  const std::string conflist = o.cniConfDir + "/" + kConflistName;
  SL_ASSIGN_OR_RETURN(r.conflistRemoved, removeFile(conflist));
  SL_TRY(removeFile(conflist + ".tmp"));
  if (auto maps = bpf::PinnedMaps::open(o.bpfRoot); maps.ok()) {
    if (auto eps = maps->endpoints.entries(); eps.ok())
      r.endpointsLeft = static_cast<int>(eps->size());
  }
  SL_ASSIGN_OR_RETURN(auto routes, listOwnedRoutes());
  r.routesRemoved = static_cast<int>(routes.size());
  SL_TRY(syncKernelRoutes({}));
  SL_TRY(syncPodSourceRule(std::nullopt));
  SL_TRY(removeMasquerade());
  r.masqueradeRemoved = true;
  SL_ASSIGN_OR_RETURN(r.vxlanRemoved, removeVxlan());
  SL_ASSIGN_OR_RETURN(r.nativeDetached, detachUnderlayPrograms());
  SL_ASSIGN_OR_RETURN(r.pinsRemoved, removePins(o.bpfRoot));
  return r;
}

int runUninstall(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto r = uninstallNode(o);
  if (!r.ok()) {
    err << "sluice-agent uninstall: " << r.error().describe() << "\n";
    return 1;
  }
  if (o.json) {
    nlohmann::ordered_json j = {
        {"conflistRemoved", r->conflistRemoved}, {"masqueradeRemoved", r->masqueradeRemoved},
        {"vxlanRemoved", r->vxlanRemoved},       {"nativeDetached", r->nativeDetached},
        {"routesRemoved", r->routesRemoved},
        {"pinsRemoved", r->pinsRemoved},         {"endpointsLeft", r->endpointsLeft}};
    out << j.dump(2) << "\n";
    return 0;
  }
  out << "conflist:   " << (r->conflistRemoved ? "removed" : "already gone") << " (" << o.cniConfDir
      << "/" << kConflistName << ")\n";
  out << "masquerade: nft tables ip " << kNftTable << " and ip6 " << kNftTable << " removed\n";
  out << "routes:     " << r->routesRemoved << " removed\n";
  out << "overlay:    " << kVxlanName << " " << (r->vxlanRemoved ? "removed" : "already gone")
      << "\n";
  out << "underlay:   Sluice programs detached from " << r->nativeDetached << " interface"
      << (r->nativeDetached == 1 ? "" : "s") << "\n";
  out << "pins:       " << r->pinsRemoved << " removed under " << o.bpfRoot << "\n";
  if (r->endpointsLeft > 0)
    err << "sluice-agent uninstall: " << r->endpointsLeft
        << " pods were still plumbed: their veths keep the datapath program until they are "
           "deleted\n";
  return 0;
}

}  // namespace sluice::agent
