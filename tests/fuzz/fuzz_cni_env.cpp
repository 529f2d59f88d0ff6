// SPDX-License-Identifier: Apache-2.0
// The CNI environment: parseCniEnv with an injected getenv, parseCniArgs, and the container
// ID / interface name validators. The input is an environment block, one KEY=VALUE a line
// (as a runtime's exec would pass), and the whole input is also taken as a CNI_ARGS string.
// Invariants: errors are kInvalidEnv and serialise as the spec's error document; accepted
// CNI_ARGS written back in the same convention parse to the same arguments; an accepted
// per-attachment environment is valid (container ID, ifname, netns) and everything the
// plugin will write into JSON (result, endpoint record) can be serialised.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sluice/cni/env.h"
#include "sluice/cni/types.h"
#include "sluice/cni/version.h"

namespace {

using namespace sluice;
using namespace sluice::cni;
using nlohmann::json;

void checkErrorDocument(const Error& e) {
  try {
    (void)errorToJson(e, kLatestVersion).dump();
  } catch (const json::exception& ex) {
    sluice::fuzz::fail(__FILE__, __LINE__, "the error document serialises",
                       std::string(ex.what()) + " for " + sluice::fuzz::show(e.message()));
  }
}

std::string argsToString(const CniArgs& a) {
  std::string s;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!s.empty()) s += ';';
    s += k + "=" + v;
  };
  if (a.ignoreUnknown) add("IgnoreUnknown", "1");
  if (!a.podNamespace.empty()) add("K8S_POD_NAMESPACE", a.podNamespace);
  if (!a.podName.empty()) add("K8S_POD_NAME", a.podName);
  if (!a.podInfraContainerId.empty()) add("K8S_POD_INFRA_CONTAINER_ID", a.podInfraContainerId);
  if (!a.podUid.empty()) add("K8S_POD_UID", a.podUid);
  for (const auto& [k, v] : a.unknown) add(k, v);
  return s;
}

bool sameArgs(const CniArgs& a, const CniArgs& b) {
  return a.ignoreUnknown == b.ignoreUnknown && a.podNamespace == b.podNamespace && a.podName == b.podName &&
         a.podInfraContainerId == b.podInfraContainerId && a.podUid == b.podUid && a.unknown == b.unknown;
}

void checkArgs(std::string_view s) {
  auto a = parseCniArgs(s);
  if (!a.ok()) {
    SL_FUZZ_CHECK_ERROR(a.error(), CniCode::kInvalidEnv);
    SL_FUZZ_CHECK(a.error().message().rfind("CNI_ARGS", 0) == 0, a.error().message());
    checkErrorDocument(a.error());
    return;
  }
  SL_FUZZ_CHECK(a->ignoreUnknown || a->unknown.empty(), "unknown keys kept without IgnoreUnknown");
  for (const auto& [k, v] : a->unknown)
    SL_FUZZ_CHECK(!k.empty() && k.find_first_of("=;") == std::string::npos && v.find(';') == std::string::npos,
                  sluice::fuzz::show(k));
  const std::string again = argsToString(*a);
  auto b = parseCniArgs(again);
  SL_FUZZ_CHECK(b.ok(), "CNI_ARGS written back do not parse: " + sluice::fuzz::show(again));
  SL_FUZZ_CHECK(sameArgs(*a, *b), "CNI_ARGS written back parse differently: " + sluice::fuzz::show(again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  checkArgs(in);

  std::map<std::string, std::string> env;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    std::string_view line = in.substr(pos, nl == in.npos ? in.npos : nl - pos);
    size_t eq = line.find('=');
    if (eq != line.npos) env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    if (nl == in.npos) break;
    pos = nl + 1;
  }
  // getenv semantics: a C string, cut at the first NUL like the real environment.
  auto getenv = [&](const char* k) -> const char* {
    auto it = env.find(k);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto e = parseCniEnv(getenv);
  if (!e.ok()) {
    SL_FUZZ_CHECK_ERROR(e.error(), CniCode::kInvalidEnv);
    checkErrorDocument(e.error());
    return 0;
  }
  const std::string cmd = getenv("CNI_COMMAND");
  SL_FUZZ_CHECK(cmd == commandName(e->command), cmd);
  const bool perAttachment = e->command == Command::kAdd || e->command == Command::kDel || e->command == Command::kCheck;
  if (perAttachment) {
    SL_FUZZ_CHECK(validateContainerId(e->containerId).ok(), sluice::fuzz::show(e->containerId));
    SL_FUZZ_CHECK(validateIfname(e->ifname).ok(), sluice::fuzz::show(e->ifname));
    SL_FUZZ_CHECK(e->ifname.size() >= 1 && e->ifname.size() <= 15, sluice::fuzz::show(e->ifname));
    SL_FUZZ_CHECK(e->command == Command::kDel || !e->netns.empty(), "ADD/CHECK without CNI_NETNS");
    auto direct = parseCniArgs(e->rawArgs);
    SL_FUZZ_CHECK(direct.ok() && sameArgs(*direct, e->args), sluice::fuzz::show(e->rawArgs));
    // These end up in the CNI result and the endpoint record (JSON): they must serialise.
    for (const std::string* s : {&e->containerId, &e->ifname, &e->netns, &e->args.podNamespace,
                                 &e->args.podName, &e->args.podUid, &e->args.podInfraContainerId})
      SL_FUZZ_CHECK(sluice::fuzz::jsonSerialisable(*s), "accepted but not representable in JSON: " +
                                                             sluice::fuzz::show(*s));
  }
  return 0;
}
