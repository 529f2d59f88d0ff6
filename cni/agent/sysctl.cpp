// SPDX-License-Identifier: Apache-2.0
#include "sysctl.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace sluice::agent {
namespace {

std::string pathOf(const std::string& key) {
  std::string p = "/proc/sys/";
  for (char c : key) p += c == '.' ? '/' : c;
  return p;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

std::optional<std::string> readSysctl(const std::string& key) {
  std::ifstream f(pathOf(key));
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return trim(ss.str());
}

Result<bool> writeSysctl(const std::string& key, const std::string& value) {
  auto cur = readSysctl(key);
  if (!cur) return Error(CniCode::kIoFailure, "sysctl " + key + " does not exist", ENOENT);
  if (*cur == value) return false;
  std::ofstream f(pathOf(key));
  f << value << "\n";
  f.flush();
  if (!f) return Error::fromErrno(errno, "write sysctl " + key + "=" + value, CniCode::kIoFailure);
  spdlog::info("sysctl {}={} (was {})", key, value, *cur);
  return true;
}

Status applyDatapathSysctls(const std::string& overlayDev) {
  auto r = writeSysctl("net.ipv4.ip_forward", "1");
  if (!r.ok()) return std::move(r).error();
  if (auto all = readSysctl("net.ipv4.conf.all.rp_filter"); all && *all == "1") {
    auto w = writeSysctl("net.ipv4.conf.all.rp_filter", "2");
    if (!w.ok()) return std::move(w).error();
  }
  if (!overlayDev.empty()) {
    // Names with dots would be ambiguous in the key; ours has none.
    auto w = writeSysctl("net.ipv4.conf." + overlayDev + ".rp_filter", "0");
    if (!w.ok()) return std::move(w).error();
    w = writeSysctl("net.ipv4.conf." + overlayDev + ".accept_local", "1");
    if (!w.ok()) return std::move(w).error();
  }
  return okStatus();
}

}  // namespace sluice::agent
