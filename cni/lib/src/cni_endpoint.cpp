// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/endpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>

#include "sluice/fd.h"
#include "sluice/file.h"

namespace sluice::cni {
namespace {

using nlohmann::json;

constexpr const char* kSuffix = ".json";

Error ioError(int err, const std::string& what) {
  return Error::fromErrno(err, "endpoint record: " + what, CniCode::kIoFailure);
}

}  // namespace

nlohmann::json endpointToJson(const EndpointRecord& r) {
  json ips = json::array();
  for (const auto& c : r.ips) ips.push_back(c.str());
  return json{{"containerID", r.containerId}, {"ifName", r.ifName},
              {"netns", r.netns},             {"hostVeth", r.hostVeth},
              {"hostIfindex", r.hostIfindex}, {"podMac", r.podMac},
              {"hostMac", r.hostMac},         {"ips", ips},
              {"podNamespace", r.podNamespace}, {"podName", r.podName},
              {"podUid", r.podUid},           {"network", r.network},
              {"ipamType", r.ipamType},       {"created", r.created}};
}

Result<EndpointRecord> endpointFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Error(CniCode::kDecodeFailure, "endpoint record is not an object");
  EndpointRecord r;
  auto str = [&](const char* k, std::string& out) -> Status {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) return okStatus();
    if (!it->is_string())
      return Error(CniCode::kDecodeFailure, std::string("endpoint record: ") + k + " is not a string");
    out = it->get<std::string>();
    return okStatus();
  };
  SL_TRY(str("containerID", r.containerId));
  SL_TRY(str("ifName", r.ifName));
  SL_TRY(str("netns", r.netns));
  SL_TRY(str("hostVeth", r.hostVeth));
  SL_TRY(str("podMac", r.podMac));
  SL_TRY(str("hostMac", r.hostMac));
  SL_TRY(str("podNamespace", r.podNamespace));
  SL_TRY(str("podName", r.podName));
  SL_TRY(str("podUid", r.podUid));
  SL_TRY(str("network", r.network));
  SL_TRY(str("ipamType", r.ipamType));
  SL_TRY(str("created", r.created));
  if (auto it = j.find("hostIfindex"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer())
      return Error(CniCode::kDecodeFailure, "endpoint record: hostIfindex is not an integer");
    r.hostIfindex = it->get<int>();
  }
  if (auto it = j.find("ips"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Error(CniCode::kDecodeFailure, "endpoint record: ips is not an array");
    for (const auto& e : *it) {
      auto c = e.is_string() ? net::Cidr::parse(e.get<std::string>()) : std::nullopt;
      if (!c) return Error(CniCode::kDecodeFailure, "endpoint record: bad address in ips");
      r.ips.push_back(*c);
    }
  }
  return r;
}

std::string endpointsDir(const std::string& stateDir) { return stateDir + "/endpoints"; }

std::string endpointRecordPath(const std::string& stateDir, const std::string& hostVeth) {
  return endpointsDir(stateDir) + "/" + hostVeth + kSuffix;
}

Status writeEndpointRecord(const std::string& stateDir, const EndpointRecord& r) {
  const std::string dir = endpointsDir(stateDir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ioError(ec.value(), "create " + dir);
  const std::string path = endpointRecordPath(stateDir, r.hostVeth);
  // The temporary's prefix is what removeEndpointRecord sweeps after a killed writer.
  SL_TRY(writeFileAtomic(path, "." + r.hostVeth + ".tmp-", endpointToJson(r).dump(2) + "\n", 0644,
                         Durability::kAtomic));
  return okStatus();
}

Result<std::optional<EndpointRecord>> readEndpointRecord(const std::string& stateDir,
                                                         const std::string& hostVeth) {
  const std::string path = endpointRecordPath(stateDir, hostVeth);
  SL_ASSIGN_OR_RETURN(auto text, readFileIfExists(path));
  if (!text) return std::optional<EndpointRecord>();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Error(CniCode::kDecodeFailure, path + " is not valid JSON");
  auto r = endpointFromJson(j);
  if (!r.ok()) return std::move(r).error().context(path);
  return std::optional<EndpointRecord>(std::move(r).value());
}

Result<bool> removeEndpointRecord(const std::string& stateDir, const std::string& hostVeth) {
  const std::string path = endpointRecordPath(stateDir, hostVeth);
  // Half-written records of this attachment (a plugin killed inside writeEndpointRecord).
  const std::string tmpPrefix = "." + hostVeth + ".tmp-";
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(endpointsDir(stateDir), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (it->path().filename().string().rfind(tmpPrefix, 0) == 0) std::filesystem::remove(it->path(), ec);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    return ioError(errno, "remove " + path);
  }
  return true;
}

Result<std::vector<EndpointRecord>> listEndpointRecords(const std::string& stateDir,
                                                        std::vector<std::string>* skipped) {
  std::vector<EndpointRecord> out;
  const std::string dir = endpointsDir(stateDir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return ioError(errno, "open " + dir);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n[0] != '.' && n.compare(n.size() - 5, 5, kSuffix) == 0) names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    auto r = readEndpointRecord(stateDir, n.substr(0, n.size() - 5));
    if (!r.ok()) {
      if (skipped) skipped->push_back(r.error().message());
      continue;
    }
    if (r->has_value()) out.push_back(std::move(**r));
  }
  return out;
}

std::string rfc3339Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sluice::cni
