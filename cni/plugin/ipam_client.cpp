// SPDX-License-Identifier: Apache-2.0
#include "ipam_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "sluice/cni/exec.h"
#include "sluice/cni/ipam.h"
#include "sluice/cni/version.h"

namespace sluice::plugin {

using nlohmann::json;

IpamClient::IpamClient(const Invocation& inv)
    : conf_(inv.conf), env_(inv.env), containerId_(inv.env.containerId), ifname_(inv.env.ifname) {}

IpamClient::IpamClient(const Invocation& inv, NetworkWide)
    : conf_(inv.conf), env_(inv.env), forGc_(true) {}

IpamClient::IpamClient(const IpamClient& network, std::string containerId, std::string ifname)
    : conf_(network.conf_),
      env_(network.env_),
      containerId_(std::move(containerId)),
      ifname_(std::move(ifname)),
      forGc_(true),
      delegate_(network.delegate_) {}

Result<std::string> IpamClient::delegateBinary() {
  if (!delegate_->binary) {
    SL_ASSIGN_OR_RETURN(std::string binary, cni::findPlugin(type(), env_.path));
    delegate_->binary = std::move(binary);
  }
  return *delegate_->binary;
}

Result<std::string> IpamClient::exec(const std::string& command, const std::string& config) {
  SL_ASSIGN_OR_RETURN(std::string binary, delegateBinary());
  cni::PluginCall call;
  call.command = command;
  call.containerId = containerId_;
  call.netns = forGc_ ? std::string() : env_.netns;
  call.ifname = ifname_;
  call.args = forGc_ ? std::string() : env_.rawArgs;
  call.path = env_.path;
  spdlog::debug("ipam: exec {} {}", binary, command);
  auto out = cni::execPlugin(binary, call, config);
  if (!out.ok()) return std::move(out).error().context("ipam " + type() + " " + command);
  return out;
}

Result<std::vector<std::string>> IpamClient::delegateVersions() {
  if (delegate_->versions) return *delegate_->versions;
  SL_ASSIGN_OR_RETURN(std::string binary, delegateBinary());
  SL_ASSIGN_OR_RETURN(auto versions, cni::pluginVersions(binary, env_.path, conf_.cniVersion));
  delegate_->versions = versions;
  return versions;
}

Result<bool> IpamClient::delegateSpeaksOurVersion() {
  SL_ASSIGN_OR_RETURN(auto versions, delegateVersions());
  return std::find(versions.begin(), versions.end(), conf_.cniVersion) != versions.end();
}

Result<std::string> IpamClient::delegatedConfig() {
  if (!forGc_) return conf_.raw;
  // GC runs with cniVersion 1.1.0; a delegate that predates it (Debian's host-local speaks up to
  // 1.0.0) is given the newest version both of us speak.
  SL_ASSIGN_OR_RETURN(auto versions, delegateVersions());
  std::string best;
  for (const auto& v : versions)
    if (cni::versionSupported(v) && cni::versionAtLeast(conf_.cniVersion, v) &&
        (best.empty() || cni::versionAtLeast(v, best)))
      best = v;
  if (best.empty())
    return Error(CniCode::kIncompatibleVersion,
                 "ipam plugin " + type() + " speaks no CNI version we can use for DEL");
  json c = json::parse(conf_.raw, nullptr, false);
  c["cniVersion"] = best;
  c.erase(cni::kValidAttachmentsKey);
  c.erase("prevResult");
  return c.dump();
}

Result<IpamLease> IpamClient::add() {
  IpamLease lease;
  if (builtin()) {
    cni::LocalIpam ipam(cni::LocalIpam::directory(conf_.stateDir, conf_.name), conf_.ipam->ranges);
    SL_ASSIGN_OR_RETURN(auto allocs, ipam.allocate(containerId_, ifname_));
    for (const auto& a : allocs) {
      cni::IpConfig ip;
      ip.address = net::Cidr(a.ip, a.range.subnet.prefix());
      ip.gateway = a.range.gateway;
      lease.ips.push_back(ip);
      spdlog::info("ipam: {} {} {}", a.reused ? "reusing" : "reserved", a.ip.str(),
                   a.range.subnet.str());
    }
    return lease;
  }
  SL_ASSIGN_OR_RETURN(std::string out, exec("ADD", conf_.raw));
  json j = json::parse(out, nullptr, false);
  if (!j.is_object())
    return Error(CniCode::kInternal, "ipam " + type() + " ADD returned no JSON result")
        .details(out.substr(0, 512));
  auto r = cni::resultFromJson(j, "ipam result");
  if (!r.ok()) return Error(CniCode::kInternal, r.error().message());
  lease.ips = r->ips;
  lease.dns = r->dns;
  for (const auto& ip : lease.ips) spdlog::info("ipam: {} gave {}", type(), ip.address.str());
  return lease;
}

Status IpamClient::del() {
  if (builtin()) {
    cni::LocalIpam ipam(cni::LocalIpam::directory(conf_.stateDir, conf_.name), conf_.ipam->ranges);
    SL_ASSIGN_OR_RETURN(auto freed, ipam.release(containerId_, ifname_));
    for (const auto& ip : freed) spdlog::info("ipam: released {}", ip.str());
    return okStatus();
  }
  SL_ASSIGN_OR_RETURN(std::string config, delegatedConfig());
  SL_TRY(exec("DEL", config));
  spdlog::info("ipam: {} released the lease of {}/{}", type(), containerId_, ifname_);
  return okStatus();
}

Status IpamClient::check(const std::vector<net::IpAddr>& ips) {
  if (builtin()) {
    SL_ASSIGN_OR_RETURN(auto held, this->held());
    for (const auto& ip : ips)
      if (std::find(held.begin(), held.end(), ip) == held.end())
        return Error(CniCode::kInternal, "ipam: " + ip.str() + " is not reserved for this attachment");
    return okStatus();
  }
  SL_TRY(exec("CHECK", conf_.raw));
  return okStatus();
}

Status IpamClient::status() {
  if (builtin()) return okStatus();
  if (auto found = delegateBinary(); !found.ok())
    return Error(CniCode::kPluginNotAvailable, found.error().message());
  SL_ASSIGN_OR_RETURN(bool speaks, delegateSpeaksOurVersion());
  if (!speaks) return okStatus();  // found in CNI_PATH (it answered VERSION), no STATUS to ask
  SL_TRY(exec("STATUS", conf_.raw));  // its code (50, 51, ...) is passed on unchanged
  return okStatus();
}

Result<bool> IpamClient::gc() {
  if (builtin()) return false;
  SL_ASSIGN_OR_RETURN(bool speaks, delegateSpeaksOurVersion());
  if (!speaks) {
    spdlog::info("GC: ipam {} predates GC (no cniVersion {}): only the attachments above were "
                 "released through it",
                 type(), conf_.cniVersion);
    return false;
  }
  SL_TRY(exec("GC", conf_.raw));
  spdlog::info("GC: forwarded to ipam {}", type());
  return true;
}

Result<std::vector<net::IpAddr>> IpamClient::held() {
  if (!builtin()) return std::vector<net::IpAddr>();
  cni::LocalIpam ipam(cni::LocalIpam::directory(conf_.stateDir, conf_.name), conf_.ipam->ranges);
  return ipam.find(containerId_, ifname_);
}

}  // namespace sluice::plugin
