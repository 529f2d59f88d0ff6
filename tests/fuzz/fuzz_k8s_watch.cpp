// SPDX-License-Identifier: Apache-2.0
// The body of a Kubernetes watch on Nodes, as the agent reads it: a byte stream cut into
// lines (LineSplitter, fed in arbitrary pieces), each line a watch event (parseWatchEvent)
// whose object is a v1.Node (nodeInfoFromJson) or, for ERROR, a v1.Status (parseApiStatus),
// applied to the node cache like K8sNodeSource::handleEvent. Also an error response body
// (apiStatusFromBody). The first input byte picks the piece sizes.
// Invariants: the lines are those of the whole stream whatever the pieces; decode errors are
// kDecodeFailure; an accepted Node written back as a v1.Node decodes to the same NodeInfo;
// the cache's snapshot is sorted, unique and routable, and matches a plain map model.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "k8s_nodes.h"

namespace {

using namespace sluice;
using namespace sluice::agent;
using nlohmann::json;

// Reference: every non-empty line of the whole stream, without its '\r'; the last one only
// once a '\n' ends it.
std::vector<std::string> referenceLines(std::string_view s, std::string& rest) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t nl = s.find('\n', pos);
    if (nl == s.npos) break;
    std::string_view l = s.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!l.empty()) out.emplace_back(l);
    pos = nl + 1;
  }
  rest = std::string(s.substr(pos));
  return out;
}

json nodeToJson(const NodeInfo& n) {
  json cidrs = json::array();
  for (const auto& c : n.podCIDRs) cidrs.push_back(c.str());
  json j = {{"kind", "Node"}, {"metadata", {{"name", n.name}}}, {"spec", {{"podCIDRs", cidrs}}}};
  if (n.internalIP.valid())
    j["status"] = {{"addresses", json::array({{{"type", "InternalIP"}, {"address", n.internalIP.str()}}})}};
  return j;
}

void checkNode(const json& obj, std::map<std::string, NodeInfo>& model) {
  auto info = nodeInfoFromJson(obj);
  if (!info.ok()) {
    SL_FUZZ_CHECK_ERROR(info.error(), CniCode::kDecodeFailure);
    // handleEvent forgets a node that no longer parses.
    if (obj.contains("metadata") && obj["metadata"].is_object() && obj["metadata"].contains("name") &&
        obj["metadata"]["name"].is_string())
      model.erase(obj["metadata"]["name"].get<std::string>());
    return;
  }
  const NodeInfo& n = *info;
  SL_FUZZ_CHECK(!n.name.empty(), "a node without a name");
  for (const auto& c : n.podCIDRs) SL_FUZZ_CHECK(c == c.network(), n.name + ": " + c.str());
  const json again = nodeToJson(n);
  auto back = nodeInfoFromJson(again);
  SL_FUZZ_CHECK(back.ok() && *back == n, "a decoded Node written back decodes differently: " + again.dump());
  model[n.name] = n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string rest;
  const std::vector<std::string> expected = referenceLines(stream, rest);
  std::vector<std::string> lines;
  LineSplitter splitter;
  for (size_t off = 0; off < stream.size(); off += piece) {
    Status st = splitter.feed(stream.substr(off, piece), [&](std::string_view l) {
      lines.emplace_back(l);
      return okStatus();
    });
    SL_FUZZ_CHECK(st.ok(), st.ok() ? "" : st.error().message());
  }
  SL_FUZZ_CHECK(lines == expected, "the lines depend on how the stream was cut (" + std::to_string(piece) + ")");
  SL_FUZZ_CHECK(splitter.hasPartialLine() == !rest.empty(), "partial line state");

  NodeCache cache;
  std::map<std::string, NodeInfo> model;
  for (const std::string& line : lines) {
    (void)apiStatusFromBody(500, line);
    auto ev = parseWatchEvent(line);
    if (!ev.ok()) {
      SL_FUZZ_CHECK_ERROR(ev.error(), CniCode::kDecodeFailure);
      continue;
    }
    SL_FUZZ_CHECK(ev->object.is_object(), "an event without an object");
    (void)resourceVersionOf(ev->object);
    using Type = WatchEvent::Type;
    switch (ev->type) {
      case Type::kAdded:
      case Type::kModified:
        checkNode(ev->object, model);
        if (auto info = nodeInfoFromJson(ev->object); info.ok()) {
          cache.upsert(*info);
        } else if (ev->object.contains("metadata") && ev->object["metadata"].is_object() &&
                   ev->object["metadata"].contains("name") && ev->object["metadata"]["name"].is_string()) {
          cache.erase(ev->object["metadata"]["name"].get<std::string>());
        }
        break;
      case Type::kDeleted:
        if (ev->object.contains("metadata") && ev->object["metadata"].is_object() &&
            ev->object["metadata"].contains("name") && ev->object["metadata"]["name"].is_string()) {
          cache.erase(ev->object["metadata"]["name"].get<std::string>());
          model.erase(ev->object["metadata"]["name"].get<std::string>());
        }
        break;
      case Type::kError:
        if (auto st = parseApiStatus(ev->object)) (void)st->describe();
        break;
      case Type::kBookmark:
        break;
    }
  }
  const std::vector<NodeInfo> snap = cache.snapshot();
  std::vector<NodeInfo> want;
  for (const auto& [name, n] : model)
    if (n.internalIP.valid()) want.push_back(n);
  SL_FUZZ_CHECK(snap == want, "the node cache differs from the model (" + std::to_string(snap.size()) + " vs " +
                                  std::to_string(want.size()) + " nodes)");
  SL_FUZZ_CHECK(cache.size() == model.size(), "cache size");

  // A whole stream taken as an error body (it is one when the watch request fails).
  ApiStatus st = apiStatusFromBody(410, stream);
  SL_FUZZ_CHECK(st.code != 0, "a status without a code");
  return 0;
}
