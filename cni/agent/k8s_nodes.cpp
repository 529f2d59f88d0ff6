// SPDX-License-Identifier: Apache-2.0
#include "k8s_nodes.h"

#include <utility>

namespace sluice::agent {
namespace {

using nlohmann::json;

Error decodeError(const std::string& msg) { return Error(CniCode::kDecodeFailure, msg); }

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string stringMember(const json& obj, const char* key) {
  const json* v = member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace

Result<NodeInfo> nodeInfoFromJson(const json& node) {
  if (!node.is_object()) return decodeError("node is not an object");
  const json* meta = member(node, "metadata");
  NodeInfo info;
  if (meta) info.name = stringMember(*meta, "name");
  if (info.name.empty()) return decodeError("node without metadata.name");
  const std::string where = "node " + info.name + ": ";

  std::vector<std::string> cidrs;
  if (const json* spec = member(node, "spec")) {
    if (const json* list = member(*spec, "podCIDRs")) {
      if (!list->is_array()) return decodeError(where + "spec.podCIDRs is not a list");
      for (const json& c : *list) {
        if (!c.is_string()) return decodeError(where + "spec.podCIDRs has a non-string entry");
        cidrs.push_back(c.get<std::string>());
      }
    }
    // Older API servers and some tooling only set the singular field.
    if (cidrs.empty()) {
      std::string single = stringMember(*spec, "podCIDR");
      if (!single.empty()) cidrs.push_back(std::move(single));
    }
  }
  for (const std::string& c : cidrs) {
    auto cidr = net::Cidr::parse(c);
    if (!cidr) return decodeError(where + "invalid pod CIDR '" + c + "'");
    info.podCIDRs.push_back(cidr->network());
  }

  std::optional<net::IpAddr> v4, v6;
  if (const json* status = member(node, "status")) {
    if (const json* addrs = member(*status, "addresses"); addrs && addrs->is_array()) {
      for (const json& a : *addrs) {
        if (stringMember(a, "type") != "InternalIP") continue;
        auto ip = net::IpAddr::parse(stringMember(a, "address"));
        if (!ip) continue;
        if (ip->isV4() && !v4) v4 = *ip;
        if (ip->isV6() && !v6) v6 = *ip;
      }
    }
  }
  if (v4) {
    info.internalIP = *v4;
    if (v6) info.internalIP6 = *v6;
  } else if (v6) {
    info.internalIP = *v6;
  }
  return info;
}

std::string resourceVersionOf(const json& obj) {
  const json* meta = member(obj, "metadata");
  return meta ? stringMember(*meta, "resourceVersion") : std::string();
}

std::string ApiStatus::describe() const {
  std::string s = std::to_string(code);
  if (!reason.empty()) s += " " + reason;
  if (!message.empty()) s += ": " + message;
  return s;
}

std::optional<ApiStatus> parseApiStatus(const json& obj) {
  if (!obj.is_object() || stringMember(obj, "kind") != "Status") return std::nullopt;
  ApiStatus st;
  if (const json* code = member(obj, "code"); code && code->is_number_integer()) st.code = code->get<int>();
  st.reason = stringMember(obj, "reason");
  st.message = stringMember(obj, "message");
  return st;
}

ApiStatus apiStatusFromBody(long httpStatus, std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded()) {
    if (auto st = parseApiStatus(j)) {
      if (st->code == 0) st->code = static_cast<int>(httpStatus);
      return *st;
    }
  }
  ApiStatus st;
  st.code = static_cast<int>(httpStatus);
  std::string text(body.substr(0, 200));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  st.message = std::move(text);
  return st;
}

Result<WatchEvent> parseWatchEvent(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return decodeError("watch event is not a JSON object");
  const std::string type = stringMember(j, "type");
  WatchEvent ev;
  if (type == "ADDED") ev.type = WatchEvent::Type::kAdded;
  else if (type == "MODIFIED") ev.type = WatchEvent::Type::kModified;
  else if (type == "DELETED") ev.type = WatchEvent::Type::kDeleted;
  else if (type == "BOOKMARK") ev.type = WatchEvent::Type::kBookmark;
  else if (type == "ERROR") ev.type = WatchEvent::Type::kError;
  else return decodeError("watch event of unknown type '" + type + "'");
  auto obj = j.find("object");
  if (obj == j.end() || !obj->is_object()) return decodeError("watch event " + type + " without an object");
  ev.object = std::move(*obj);
  return ev;
}

Status LineSplitter::feed(std::string_view data, const std::function<Status(std::string_view)>& onLine) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + data.size() > maxLine_)
        return Error(CniCode::kDecodeFailure, "watch event longer than " + std::to_string(maxLine_) + " bytes");
      partial_.append(data);
      return okStatus();
    }
    std::string_view piece = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    std::string_view line = piece;
    if (!partial_.empty()) {
      partial_.append(piece);
      line = partial_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Status st = line.empty() ? okStatus() : onLine(line);
    partial_.clear();
    if (!st.ok()) return st;
  }
  return okStatus();
}

void NodeCache::replace(std::vector<NodeInfo> nodes) {
  nodes_.clear();
  for (NodeInfo& n : nodes) {
    std::string name = n.name;
    nodes_[std::move(name)] = std::move(n);
  }
}

void NodeCache::upsert(NodeInfo node) {
  std::string name = node.name;
  nodes_[std::move(name)] = std::move(node);
}

void NodeCache::erase(const std::string& name) { nodes_.erase(name); }

std::vector<NodeInfo> NodeCache::snapshot() const {
  std::vector<NodeInfo> out;
  out.reserve(nodes_.size());
  for (const auto& [name, node] : nodes_)
    if (node.internalIP.valid()) out.push_back(node);
  return out;
}

}  // namespace sluice::agent
