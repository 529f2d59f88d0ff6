// SPDX-License-Identifier: Apache-2.0
// A small YAML reader for the subset kubeconfig files use, so the agent needs no YAML
// library: block mappings, block sequences (indented or at the parent key's column, as
// kubectl writes them), plain / single-quoted / double-quoted scalars, literal and folded
// block scalars, one-line flow collections ({}, [a, b], {k: v}), comments and a leading
// "---". Anchors, aliases, tags, multi-line flow and several documents are refused with a
// clear error rather than misread.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "sluice/result.h"

namespace sluice::agent {

// Plain scalars become null (null, ~, empty), booleans (true/false), integers, or strings;
// quoted scalars are always strings. Duplicate keys are an error.
Result<nlohmann::json> parseYamlSubset(std::string_view text);

}  // namespace sluice::agent
