// SPDX-License-Identifier: Apache-2.0
// The nodes file ({"nodes": [{"name", "internalIP", "podCIDRs"}]}) the agent reloads on
// every change. Invariants: errors are kDecodeFailure "nodes file: ..."; an accepted file has
// unique non-empty names and canonical pod CIDRs, and nodesToJson (the agent's own state file
// and the CLI) parses back to the same nodes.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "fuzz_check.h"
#include "nodes_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string in(reinterpret_cast<const char*>(data), size);
  auto nodes = agent::parseNodes(in);
  if (!nodes.ok()) {
    SL_FUZZ_CHECK_ERROR(nodes.error(), CniCode::kDecodeFailure);
    SL_FUZZ_CHECK(nodes.error().message().rfind("nodes file: ", 0) == 0, nodes.error().message());
    return 0;
  }
  std::set<std::string> names;
  for (const auto& n : *nodes) {
    SL_FUZZ_CHECK(!n.name.empty(), "a node without a name");
    SL_FUZZ_CHECK(names.insert(n.name).second, "duplicate node " + n.name);
    for (const auto& c : n.podCIDRs) SL_FUZZ_CHECK(c == c.network(), n.name + ": " + c.str());
  }
  std::string again;
  try {
    again = agent::nodesToJson(*nodes);
  } catch (const nlohmann::json::exception& e) {
    sluice::fuzz::fail(__FILE__, __LINE__, "nodesToJson serialises", e.what());
  }
  auto back = agent::parseNodes(again);
  SL_FUZZ_CHECK(back.ok(), "nodesToJson output does not parse: " + again);
  SL_FUZZ_CHECK(*back == *nodes, "nodesToJson output parses differently: " + again);
  return 0;
}
