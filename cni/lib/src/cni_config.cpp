// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/config.h"

#include <algorithm>

#include "sluice/cni/version.h"

namespace sluice::cni {
namespace {

using nlohmann::json;

Error fieldError(const std::string& field, const std::string& what) {
  return Error(CniCode::kInvalidConfig, "invalid network configuration: " + field + ": " + what);
}

// A present, non-null key; wrong types are reported by the callers.
const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> optString(const json& obj, const char* key,
                                              const std::string& where) {
  const json* v = find(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return fieldError(where + key, "must be a string");
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<net::IpAddr>> optAddress(const json& obj, const char* key,
                                              const std::string& where) {
  SL_ASSIGN_OR_RETURN(auto s, optString(obj, key, where));
  if (!s) return std::optional<net::IpAddr>();
  auto ip = net::IpAddr::parse(*s);
  if (!ip) return fieldError(where + key, "\"" + *s + "\" is not an IP address");
  return std::optional<net::IpAddr>(*ip);
}

// Network names become directory names under stateDir: keep them to the spec's alphabet.
Status validateNetworkName(const std::string& name) {
  if (name.empty()) return fieldError("name", "must not be empty");
  if (name.size() > 128) return fieldError("name", "longer than 128 characters");
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  };
  if (!std::all_of(name.begin(), name.end(), ok) || name[0] == '.' || name[0] == '-' ||
      name[0] == '_')
    return fieldError("name", "\"" + name + "\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*");
  return okStatus();
}

Status validateAbsolutePath(const std::string& field, const std::string& p) {
  if (p.empty() || p[0] != '/') return fieldError(field, "must be an absolute path");
  return okStatus();
}

Result<IpRange> parseRange(const json& j, const std::string& where) {
  if (!j.is_object()) return fieldError(where, "must be an object");
  const std::string w = where + ".";
  SL_ASSIGN_OR_RETURN(auto subnet, optString(j, "subnet", w));
  if (!subnet) return fieldError(w + "subnet", "missing");
  auto cidr = net::Cidr::parse(*subnet);
  if (!cidr || subnet->find('/') == std::string::npos)
    return fieldError(w + "subnet", "\"" + *subnet + "\" is not a CIDR");
  IpRange r;
  r.subnet = cidr->network();
  const auto& net = r.subnet;
  const bool v4 = net.addr().isV4();
  // Like host-local: at least two usable addresses besides network (and broadcast).
  if (net.prefix() > net.addr().bits() - 2)
    return fieldError(w + "subnet", "\"" + *subnet + "\" is too small to allocate from");
  r.start = net.addr().plus(1);
  r.end = v4 ? net.broadcast().plus(-1) : net.broadcast();
  SL_ASSIGN_OR_RETURN(auto start, optAddress(j, "rangeStart", w));
  SL_ASSIGN_OR_RETURN(auto end, optAddress(j, "rangeEnd", w));
  SL_ASSIGN_OR_RETURN(r.gateway, optAddress(j, "gateway", w));
  if (start) {
    if (!net.contains(*start))
      return fieldError(w + "rangeStart", start->str() + " is not in " + net.str());
    r.start = *start;
  }
  if (end) {
    if (!net.contains(*end))
      return fieldError(w + "rangeEnd", end->str() + " is not in " + net.str());
    r.end = *end;
  }
  if (r.end < r.start)
    return fieldError(w + "rangeEnd", r.end.str() + " is before rangeStart " + r.start.str());
  if (r.gateway && r.gateway->family() != net.addr().family())
    return fieldError(w + "gateway", "address family differs from the subnet's");
  return r;
}

}  // namespace

bool IpRange::contains(const net::IpAddr& ip) const {
  return ip.family() == start.family() && !(ip < start) && !(end < ip);
}

Result<std::vector<RangeSet>> parseRanges(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array() || j.empty()) return fieldError(where, "must be a non-empty array of arrays");
  std::vector<RangeSet> sets;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string ws = where + "[" + std::to_string(i) + "]";
    if (!j[i].is_array() || j[i].empty()) return fieldError(ws, "must be a non-empty array");
    RangeSet set;
    for (size_t k = 0; k < j[i].size(); ++k) {
      const std::string wr = ws + "[" + std::to_string(k) + "]";
      SL_ASSIGN_OR_RETURN(IpRange r, parseRange(j[i][k], wr));
      if (!set.empty() && set.front().subnet.addr().family() != r.subnet.addr().family())
        return fieldError(wr, "mixes address families within one range set");
      for (const auto& s : sets)
        for (const auto& other : s)
          if (other.contains(r.start) || other.contains(r.end) || r.contains(other.start))
            return fieldError(wr, "overlaps another range");
      for (const auto& other : set)
        if (other.contains(r.start) || other.contains(r.end) || r.contains(other.start))
          return fieldError(wr, "overlaps another range");
      set.push_back(std::move(r));
    }
    sets.push_back(std::move(set));
  }
  return sets;
}

Result<nlohmann::json> decodeJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(CniCode::kDecodeFailure, "malformed JSON on stdin");
  return j;
}

std::string peekVersion(std::string_view stdinBytes) {
  json j = json::parse(stdinBytes, nullptr, false);
  if (j.is_object())
    if (auto it = j.find("cniVersion"); it != j.end() && it->is_string())
      return it->get<std::string>();
  return {};
}

Result<NetConf> parseNetConf(std::string_view stdinBytes) {
  SL_ASSIGN_OR_RETURN(json j, decodeJson(stdinBytes));
  if (!j.is_object())
    return Error(CniCode::kDecodeFailure, "network configuration must be a JSON object");
  NetConf c;
  c.raw = std::string(stdinBytes);

  const json* v = find(j, "cniVersion");
  if (!v)
    return Error(CniCode::kIncompatibleVersion,
                 "network configuration has no cniVersion; supported: " + supportedVersionList());
  if (!v->is_string()) return fieldError("cniVersion", "must be a string");
  c.cniVersion = v->get<std::string>();
  if (!versionSupported(c.cniVersion))
    return Error(CniCode::kIncompatibleVersion, "incompatible CNI version \"" + c.cniVersion +
                                                    "\"; supported: " + supportedVersionList());

  SL_ASSIGN_OR_RETURN(auto name, optString(j, "name", ""));
  if (!name) return fieldError("name", "missing");
  SL_TRY(validateNetworkName(*name));
  c.name = *name;
  SL_ASSIGN_OR_RETURN(auto type, optString(j, "type", ""));
  if (!type) return fieldError("type", "missing");
  c.type = *type;

  if (const json* mtu = find(j, "mtu")) {
    if (!mtu->is_number_integer()) return fieldError("mtu", "must be an integer");
    int64_t m = mtu->get<int64_t>();
    if (m != 0 && (m < 68 || m > 65535)) return fieldError("mtu", "must be within 68..65535");
    if (m != 0) c.mtu = static_cast<int>(m);
  }
  SL_ASSIGN_OR_RETURN(auto bpfRoot, optString(j, "bpfRoot", ""));
  if (bpfRoot) {
    SL_TRY(validateAbsolutePath("bpfRoot", *bpfRoot));
    c.bpfRoot = *bpfRoot;
  }
  SL_ASSIGN_OR_RETURN(auto stateDir, optString(j, "stateDir", ""));
  if (stateDir) {
    SL_TRY(validateAbsolutePath("stateDir", *stateDir));
    c.stateDir = *stateDir;
  }
  SL_ASSIGN_OR_RETURN(auto logFile, optString(j, "logFile", ""));
  if (logFile && !logFile->empty()) {
    SL_TRY(validateAbsolutePath("logFile", *logFile));
    c.logFile = *logFile;
  }
  SL_ASSIGN_OR_RETURN(auto logLevel, optString(j, "logLevel", ""));
  if (logLevel) {
    static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                   "warning", "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), *logLevel) == std::end(kLevels))
      return fieldError("logLevel", "\"" + *logLevel + "\" is not one of trace, debug, info, "
                                                       "warn, error, critical, off");
    c.logLevel = *logLevel == "warning" ? "warn" : *logLevel;
  }

  if (const json* ipam = find(j, "ipam")) {
    if (!ipam->is_object()) return fieldError("ipam", "must be an object");
    IpamConfig ic;
    SL_ASSIGN_OR_RETURN(auto itype, optString(*ipam, "type", "ipam."));
    if (!itype || itype->empty()) return fieldError("ipam.type", "missing");
    if (itype->find('/') != std::string::npos || *itype == "." || *itype == "..")
      return fieldError("ipam.type", "\"" + *itype + "\" is not a plugin name");
    ic.type = *itype;
    if (ic.builtin()) {
      const json* ranges = find(*ipam, "ranges");
      if (!ranges) return fieldError("ipam.ranges", "missing");
      SL_ASSIGN_OR_RETURN(ic.ranges, parseRanges(*ranges, "ipam.ranges"));
    }
    c.ipam = std::move(ic);
  }

  if (const json* dns = find(j, "dns")) {
    auto d = dnsFromJson(*dns, "dns");
    if (!d.ok()) return Error(CniCode::kInvalidConfig, "invalid network configuration: " +
                                                           d.error().message());
    c.dns = std::move(d).value();
  }
  if (const json* prev = find(j, "prevResult")) {
    if (!prev->is_object()) return fieldError("prevResult", "must be an object");
    c.prevResult = *prev;
  }
  if (const json* rc = find(j, "runtimeConfig")) {
    if (!rc->is_object()) return fieldError("runtimeConfig", "must be an object");
    c.runtimeConfig = *rc;
    if (const json* bw = find(*rc, "bandwidth")) {
      if (!bw->is_object()) return fieldError("runtimeConfig.bandwidth", "must be an object");
      Bandwidth b;
      for (auto [key, field] : {std::pair{"ingressRate", &Bandwidth::ingressRate},
                                std::pair{"ingressBurst", &Bandwidth::ingressBurst},
                                std::pair{"egressRate", &Bandwidth::egressRate},
                                std::pair{"egressBurst", &Bandwidth::egressBurst}}) {
        const json* v = find(*bw, key);
        if (!v) continue;
        if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<int64_t>() >= 0))
          return fieldError(std::string("runtimeConfig.bandwidth.") + key, "must be a non-negative integer");
        b.*field = v->get<uint64_t>();
      }
      c.bandwidth = b;
    }
  }
  if (const json* caps = find(j, "capabilities")) {
    if (!caps->is_object()) return fieldError("capabilities", "must be an object");
    c.capabilities = *caps;
  }
  if (const json* va = find(j, kValidAttachmentsKey)) {
    const std::string w = kValidAttachmentsKey;
    if (!va->is_array()) return fieldError(w, "must be an array");
    std::vector<Attachment> list;
    for (size_t i = 0; i < va->size(); ++i) {
      const std::string wi = w + "[" + std::to_string(i) + "].";
      const json& e = (*va)[i];
      if (!e.is_object()) return fieldError(w + "[" + std::to_string(i) + "]", "must be an object");
      SL_ASSIGN_OR_RETURN(auto cid, optString(e, "containerID", wi));
      SL_ASSIGN_OR_RETURN(auto ifname, optString(e, "ifname", wi));
      if (!cid) return fieldError(wi + "containerID", "missing");
      if (!ifname) return fieldError(wi + "ifname", "missing");
      list.push_back({*cid, *ifname});
    }
    c.validAttachments = std::move(list);
  }
  return c;
}

}  // namespace sluice::cni
