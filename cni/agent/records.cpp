// SPDX-License-Identifier: Apache-2.0
#include "records.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace sluice::agent {
namespace {

using nlohmann::json;

Status getString(const json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return okStatus();
  if (!it->is_string()) return Error(CniCode::kDecodeFailure, std::string("record: ") + key + " must be a string");
  out = it->get<std::string>();
  return okStatus();
}

}  // namespace

std::string endpointsDir(const std::string& stateDir) { return stateDir + "/endpoints"; }

Result<EndpointRecord> parseRecord(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Error(CniCode::kDecodeFailure, std::string("record: invalid JSON: ") + e.what());
  }
  if (!j.is_object()) return Error(CniCode::kDecodeFailure, "record: not an object");
  EndpointRecord r;
  SL_TRY(getString(j, "containerID", r.containerID));
  SL_TRY(getString(j, "ifName", r.ifName));
  SL_TRY(getString(j, "netns", r.netns));
  SL_TRY(getString(j, "hostVeth", r.hostVeth));
  SL_TRY(getString(j, "podMac", r.podMac));
  SL_TRY(getString(j, "hostMac", r.hostMac));
  SL_TRY(getString(j, "podNamespace", r.podNamespace));
  SL_TRY(getString(j, "podName", r.podName));
  SL_TRY(getString(j, "podUid", r.podUid));
  SL_TRY(getString(j, "network", r.network));
  SL_TRY(getString(j, "created", r.created));
  if (auto it = j.find("hostIfindex"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Error(CniCode::kDecodeFailure, "record: hostIfindex must be an integer");
    r.hostIfindex = it->get<int>();
  }
  if (auto it = j.find("ips"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Error(CniCode::kDecodeFailure, "record: ips must be an array");
    for (const auto& ip : *it) {
      if (!ip.is_string()) return Error(CniCode::kDecodeFailure, "record: ips entries must be strings");
      auto c = net::Cidr::parse(ip.get<std::string>());
      if (!c) return Error(CniCode::kDecodeFailure, "record: bad address " + ip.get<std::string>());
      r.ips.push_back(*c);
    }
  }
  return r;
}

RecordScan scanRecords(const std::string& stateDir) {
  namespace fs = std::filesystem;
  RecordScan scan;
  std::error_code ec;
  fs::directory_iterator it(endpointsDir(stateDir), ec);
  if (ec) return scan;
  for (const auto& entry : it) {
    const auto& p = entry.path();
    if (p.extension() != ".json" || !entry.is_regular_file(ec)) continue;
    std::ifstream f(p);
    if (!f) continue;  // removed under us: DEL finished
    std::stringstream ss;
    ss << f.rdbuf();
    auto r = parseRecord(ss.str());
    if (!r.ok()) {
      scan.unreadable.push_back(p.string());
      continue;
    }
    r->path = p.string();
    scan.records.push_back(std::move(r).value());
  }
  return scan;
}

}  // namespace sluice::agent
