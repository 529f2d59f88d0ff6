// SPDX-License-Identifier: Apache-2.0
#include "nodes_file.h"

#include <poll.h>
#include <sys/inotify.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "sluice/fd.h"
#include "sluice/file.h"

namespace sluice::agent {
namespace {

using nlohmann::json;

Error invalid(const std::string& msg) { return Error(CniCode::kDecodeFailure, "nodes file: " + msg); }

Result<NodeInfo> parseNode(const json& j, size_t index) {
  const std::string where = "nodes[" + std::to_string(index) + "]";
  if (!j.is_object()) return invalid(where + " is not an object");
  NodeInfo n;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty())
    return invalid(where + ".name must be a non-empty string");
  n.name = name->get<std::string>();
  if (auto ip = j.find("internalIP"); ip != j.end() && !ip->is_null()) {
    if (!ip->is_string()) return invalid(where + ".internalIP must be a string");
    auto parsed = net::IpAddr::parse(ip->get<std::string>());
    if (!parsed) return invalid(where + ".internalIP: not an address: " + ip->get<std::string>());
    n.internalIP = *parsed;
  }
  if (auto ip6 = j.find("internalIP6"); ip6 != j.end() && !ip6->is_null()) {
    if (!ip6->is_string()) return invalid(where + ".internalIP6 must be a string");
    auto parsed = net::IpAddr::parse(ip6->get<std::string>());
    if (!parsed || !parsed->isV6())
      return invalid(where + ".internalIP6: not an IPv6 address: " + ip6->get<std::string>());
    n.internalIP6 = *parsed;
  }
  if (auto cidrs = j.find("podCIDRs"); cidrs != j.end() && !cidrs->is_null()) {
    if (!cidrs->is_array()) return invalid(where + ".podCIDRs must be an array");
    for (const auto& c : *cidrs) {
      if (!c.is_string()) return invalid(where + ".podCIDRs entries must be strings");
      const auto s = c.get<std::string>();
      auto parsed = net::Cidr::parse(s);
      if (!parsed || s.find('/') == std::string::npos) return invalid(where + ".podCIDRs: not a CIDR: " + s);
      n.podCIDRs.push_back(parsed->network());
    }
  }
  return n;
}

Result<std::vector<NodeInfo>> readNodes(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error::fromErrno(errno, "open nodes file " + path, CniCode::kIoFailure);
  std::stringstream ss;
  ss << f.rdbuf();
  auto r = parseNodes(ss.str());
  if (!r.ok()) return std::move(r).error().context(path);
  return r;
}

}  // namespace

Result<std::vector<NodeInfo>> parseNodes(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return invalid(std::string("invalid JSON: ") + e.what());
  }
  if (!doc.is_object()) return invalid("top level must be an object");
  auto nodes = doc.find("nodes");
  if (nodes == doc.end() || !nodes->is_array()) return invalid("\"nodes\" must be an array");
  std::vector<NodeInfo> out;
  std::set<std::string> names;
  for (size_t i = 0; i < nodes->size(); ++i) {
    SL_ASSIGN_OR_RETURN(auto n, parseNode((*nodes)[i], i));
    if (!names.insert(n.name).second) return invalid("duplicate node name " + n.name);
    out.push_back(std::move(n));
  }
  return out;
}

std::string nodesToJson(const std::vector<NodeInfo>& nodes) {
  json arr = json::array();
  for (const auto& n : nodes) {
    json cidrs = json::array();
    for (const auto& c : n.podCIDRs) cidrs.push_back(c.str());
    json node = {{"name", n.name},
                 {"internalIP", n.internalIP.valid() ? json(n.internalIP.str()) : json(nullptr)},
                 {"podCIDRs", cidrs}};
    if (n.internalIP6.valid()) node["internalIP6"] = n.internalIP6.str();
    arr.push_back(std::move(node));
  }
  return json{{"nodes", arr}}.dump();
}

NodesFileSource::NodesFileSource(std::string path, std::chrono::milliseconds poll)
    : path_(std::move(path)), poll_(poll) {}

Status NodesFileSource::run(std::stop_token stop,
                            const std::function<void(const std::vector<NodeInfo>&)>& onSnapshot,
                            const std::function<void(const Error&)>& onError) {
  namespace fs = std::filesystem;
  const fs::path file = fs::absolute(path_);
  const std::string dir = file.parent_path().string();
  const std::string base = file.filename().string();

  // The directory is watched, not the file: editors and `mv` replace the inode. Writes in
  // progress (IN_MODIFY) are not events: a half-written file would only count as an error.
  Fd ino(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  bool watching = false;
  auto tryWatch = [&] {
    if (!ino.valid() || watching) return;
    watching = inotify_add_watch(ino.get(), dir.c_str(),
                                 IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) >= 0;
  };
  tryWatch();

  std::optional<std::vector<NodeInfo>> last;
  FileSig lastSig;
  bool force = true;
  while (!stop.stop_requested()) {
    FileSig sig = fileSig(file.string());
    if (force || !(sig == lastSig)) {
      force = false;
      lastSig = sig;
      auto nodes = readNodes(file.string());
      if (!nodes.ok()) {
        spdlog::warn("{}", nodes.error().describe());
        onError(nodes.error());
      } else if (!last || *last != *nodes) {
        last = *nodes;
        onSnapshot(*last);
      }
    }
    tryWatch();
    if (watching) {
      pollfd p{ino.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(poll_.count())) > 0) {
        alignas(inotify_event) char buf[4096];
        ssize_t n;
        while ((n = ::read(ino.get(), buf, sizeof(buf))) > 0) {
          for (char* q = buf; q < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(q);
            if (ev->len > 0 && base == ev->name) force = true;
            if (ev->mask & (IN_IGNORED | IN_Q_OVERFLOW)) {
              force = true;
              if (ev->mask & IN_IGNORED) watching = false;  // the directory went away
            }
            q += sizeof(inotify_event) + ev->len;
          }
        }
      }
    } else {
      ::poll(nullptr, 0, static_cast<int>(poll_.count()));
    }
  }
  return okStatus();
}

}  // namespace sluice::agent
