// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/types.h"

#include <climits>

#include "sluice/cni/version.h"

namespace sluice::cni {
namespace {

using nlohmann::json;

Error fieldError(const std::string& field, const std::string& what) {
  return Error(CniCode::kInvalidConfig, field + ": " + what);
}

Result<std::string> getString(const json& obj, const char* key, const std::string& where,
                              bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return fieldError(where + "." + key, "missing");
    return std::string();
  }
  if (!it->is_string()) return fieldError(where + "." + key, "must be a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> getStringList(const json& obj, const char* key,
                                               const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return fieldError(where + "." + key, "must be an array of strings");
  for (const auto& e : *it) {
    if (!e.is_string()) return fieldError(where + "." + key, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// An integer an int holds: get<int>() would silently wrap 4294967296 to 0.
bool fitsInt(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(INT_MAX);
  if (!v.is_number_integer()) return false;
  const int64_t n = v.get<int64_t>();
  return n >= INT_MIN && n <= INT_MAX;
}

Result<const json*> getArray(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_array()) return fieldError(where + "." + key, "must be an array");
  return &*it;
}

}  // namespace

nlohmann::json dnsToJson(const Dns& d) {
  json j = json::object();
  if (!d.nameservers.empty()) j["nameservers"] = d.nameservers;
  if (!d.domain.empty()) j["domain"] = d.domain;
  if (!d.search.empty()) j["search"] = d.search;
  if (!d.options.empty()) j["options"] = d.options;
  return j;
}

Result<Dns> dnsFromJson(const nlohmann::json& j, const std::string& where) {
  Dns d;
  if (j.is_null()) return d;
  if (!j.is_object()) return fieldError(where, "must be an object");
  SL_ASSIGN_OR_RETURN(d.nameservers, getStringList(j, "nameservers", where));
  SL_ASSIGN_OR_RETURN(d.domain, getString(j, "domain", where, false));
  SL_ASSIGN_OR_RETURN(d.search, getStringList(j, "search", where));
  SL_ASSIGN_OR_RETURN(d.options, getStringList(j, "options", where));
  return d;
}

nlohmann::json resultToJson(const CniResult& r, std::string_view version) {
  const bool legacy = usesLegacyResult(version);
  json j = json::object();
  j["cniVersion"] = std::string(version);
  if (!r.interfaces.empty()) {
    json ifs = json::array();
    for (const auto& i : r.interfaces) {
      json e = {{"name", i.name}};
      if (!i.mac.empty()) e["mac"] = i.mac;
      if (i.mtu && versionAtLeast(version, "1.1.0")) e["mtu"] = *i.mtu;
      if (!i.sandbox.empty()) e["sandbox"] = i.sandbox;
      ifs.push_back(std::move(e));
    }
    j["interfaces"] = std::move(ifs);
  }
  if (!r.ips.empty()) {
    json ips = json::array();
    for (const auto& ip : r.ips) {
      json e = json::object();
      if (legacy) e["version"] = ip.address.addr().isV6() ? "6" : "4";
      e["address"] = ip.address.str();
      if (ip.gateway) e["gateway"] = ip.gateway->str();
      if (ip.interface) e["interface"] = *ip.interface;
      ips.push_back(std::move(e));
    }
    j["ips"] = std::move(ips);
  }
  if (!r.routes.empty()) {
    json routes = json::array();
    for (const auto& rt : r.routes) {
      json e = {{"dst", rt.dst.str()}};
      if (rt.gw) e["gw"] = rt.gw->str();
      routes.push_back(std::move(e));
    }
    j["routes"] = std::move(routes);
  }
  j["dns"] = dnsToJson(r.dns);
  return j;
}

Result<CniResult> resultFromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return fieldError(where, "must be an object");
  CniResult r;
  SL_ASSIGN_OR_RETURN(const json* ifs, getArray(j, "interfaces", where));
  if (ifs) {
    for (size_t i = 0; i < ifs->size(); ++i) {
      const json& e = (*ifs)[i];
      std::string w = where + ".interfaces[" + std::to_string(i) + "]";
      if (!e.is_object()) return fieldError(w, "must be an object");
      Interface itf;
      SL_ASSIGN_OR_RETURN(itf.name, getString(e, "name", w, true));
      SL_ASSIGN_OR_RETURN(itf.mac, getString(e, "mac", w, false));
      SL_ASSIGN_OR_RETURN(itf.sandbox, getString(e, "sandbox", w, false));
      if (auto m = e.find("mtu"); m != e.end() && !m->is_null()) {
        if (!fitsInt(*m)) return fieldError(w + ".mtu", "must be an integer within the range of int");
        itf.mtu = m->get<int>();
      }
      r.interfaces.push_back(std::move(itf));
    }
  }
  SL_ASSIGN_OR_RETURN(const json* ips, getArray(j, "ips", where));
  if (ips) {
    for (size_t i = 0; i < ips->size(); ++i) {
      const json& e = (*ips)[i];
      std::string w = where + ".ips[" + std::to_string(i) + "]";
      if (!e.is_object()) return fieldError(w, "must be an object");
      IpConfig ip;
      SL_ASSIGN_OR_RETURN(std::string addr, getString(e, "address", w, true));
      auto cidr = net::Cidr::parse(addr);
      if (!cidr || addr.find('/') == std::string::npos)
        return fieldError(w + ".address", "\"" + addr + "\" is not an address/prefix");
      ip.address = *cidr;
      SL_ASSIGN_OR_RETURN(std::string gw, getString(e, "gateway", w, false));
      if (!gw.empty()) {
        auto g = net::IpAddr::parse(gw);
        if (!g) return fieldError(w + ".gateway", "\"" + gw + "\" is not an address");
        ip.gateway = *g;
      }
      if (auto it = e.find("interface"); it != e.end() && !it->is_null()) {
        if (!fitsInt(*it) || it->get<int64_t>() < 0)
          return fieldError(w + ".interface", "must be a non-negative integer");
        ip.interface = it->get<int>();
        if (*ip.interface >= static_cast<int>(r.interfaces.size()))
          return fieldError(w + ".interface", "refers to no interface");
      }
      SL_ASSIGN_OR_RETURN(std::string version, getString(e, "version", w, false));
      if (!version.empty() && version != (ip.address.addr().isV6() ? "6" : "4"))
        return fieldError(w + ".version", "\"" + version + "\" does not match the address");
      r.ips.push_back(std::move(ip));
    }
  }
  SL_ASSIGN_OR_RETURN(const json* routes, getArray(j, "routes", where));
  if (routes) {
    for (size_t i = 0; i < routes->size(); ++i) {
      const json& e = (*routes)[i];
      std::string w = where + ".routes[" + std::to_string(i) + "]";
      if (!e.is_object()) return fieldError(w, "must be an object");
      Route rt;
      SL_ASSIGN_OR_RETURN(std::string dst, getString(e, "dst", w, true));
      auto c = net::Cidr::parse(dst);
      if (!c) return fieldError(w + ".dst", "\"" + dst + "\" is not a CIDR");
      rt.dst = *c;
      SL_ASSIGN_OR_RETURN(std::string gw, getString(e, "gw", w, false));
      if (!gw.empty()) {
        auto g = net::IpAddr::parse(gw);
        if (!g) return fieldError(w + ".gw", "\"" + gw + "\" is not an address");
        rt.gw = *g;
      }
      r.routes.push_back(std::move(rt));
    }
  }
  if (auto d = j.find("dns"); d != j.end()) {
    SL_ASSIGN_OR_RETURN(r.dns, dnsFromJson(*d, where + ".dns"));
  }
  return r;
}

// Error messages quote what was received (CNI_ARGS, container IDs, interface names), which
// need not be UTF-8; the error document must still serialise (nlohmann's dump() throws on
// invalid UTF-8), so invalid sequences become U+FFFD.
static std::string validUtf8(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

nlohmann::json errorToJson(const Error& e, std::string_view version) {
  return json{{"cniVersion", validUtf8(std::string(version))},
              {"code", static_cast<uint32_t>(e.code())},
              {"msg", validUtf8(e.message())},
              {"details", validUtf8(e.detailText())}};
}

std::optional<Error> errorFromJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto code = j.find("code");
  auto msg = j.find("msg");
  if (code == j.end() || !code->is_number_unsigned() || msg == j.end() || !msg->is_string())
    return std::nullopt;
  Error e(static_cast<CniCode>(code->get<uint32_t>()), msg->get<std::string>());
  if (auto d = j.find("details"); d != j.end() && d->is_string() && !d->get<std::string>().empty())
    e.details(d->get<std::string>());
  return e;
}

nlohmann::json versionInfoJson(std::string_view version) {
  json versions = json::array();
  for (auto v : kSupportedVersions) versions.push_back(std::string(v));
  return json{{"cniVersion", std::string(version)}, {"supportedVersions", versions}};
}

}  // namespace sluice::cni
