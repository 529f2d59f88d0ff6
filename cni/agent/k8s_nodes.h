// SPDX-License-Identifier: Apache-2.0
// The Kubernetes wire formats the node source reads: v1.Node -> NodeInfo, v1.Status, and
// watch events (one JSON object per line), plus the cache the events are applied to.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node_source.h"
#include "sluice/result.h"

namespace sluice::agent {

// name = metadata.name; podCIDRs = spec.podCIDRs, else spec.podCIDR; internalIP = the
// status.addresses entry of type InternalIP, the first IPv4 one if there is any, else the
// first IPv6 one (left invalid when the node reports none yet); internalIP6 = a dual-stack
// node's first IPv6 InternalIP next to its IPv4 one.
Result<NodeInfo> nodeInfoFromJson(const nlohmann::json& node);

// metadata.resourceVersion of any object ("" when absent).
std::string resourceVersionOf(const nlohmann::json& obj);

struct ApiStatus {
  int code = 0;         // HTTP-like code: 410 = Gone/Expired
  std::string reason;   // "Expired", "Unauthorized", ...
  std::string message;  // "too old resource version: 1 (2)"
  bool gone() const { return code == 410 || reason == "Expired" || reason == "Gone"; }
  std::string describe() const;
};

// A v1.Status object, or nullopt if obj is not one.
std::optional<ApiStatus> parseApiStatus(const nlohmann::json& obj);
// The body of an error response; when it is no Status the text itself is the message.
ApiStatus apiStatusFromBody(long httpStatus, std::string_view body);

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kAdded;
  nlohmann::json object;
};

Result<WatchEvent> parseWatchEvent(std::string_view line);

// Splits a byte stream into lines (the watch body is newline-delimited JSON).
class LineSplitter {
 public:
  explicit LineSplitter(size_t maxLine = 64u << 20) : maxLine_(maxLine) {}
  // Calls onLine for every complete non-empty line in data; stops at the first error
  // (from onLine, or a line longer than maxLine).
  Status feed(std::string_view data, const std::function<Status(std::string_view)>& onLine);
  bool hasPartialLine() const { return !partial_.empty(); }

 private:
  std::string partial_;
  size_t maxLine_;
};

// The current node set, by name.
class NodeCache {
 public:
  void replace(std::vector<NodeInfo> nodes);
  void upsert(NodeInfo node);
  void erase(const std::string& name);
  size_t size() const { return nodes_.size(); }
  // Nodes usable for routing (with an InternalIP), sorted by name.
  std::vector<NodeInfo> snapshot() const;

 private:
  std::map<std::string, NodeInfo> nodes_;
};

}  // namespace sluice::agent
