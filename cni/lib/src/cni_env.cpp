// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/env.h"

#include <cctype>
#include <cstdint>

namespace sluice::cni {
namespace {

Error envError(const std::string& msg) { return Error(CniCode::kInvalidEnv, msg); }

Result<bool> parseBool(std::string_view key, std::string_view v) {
  std::string lower;
  for (char c : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "1" || lower == "true") return true;
  if (lower == "0" || lower == "false") return false;
  return envError("CNI_ARGS: " + std::string(key) + "=" + std::string(v) + " is not a boolean");
}

// RFC 3629 UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). What the
// plugin takes from the environment ends up in JSON (the CNI result, the endpoint record),
// and JSON cannot carry anything else: such input is refused before anything is created.
bool isUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3fu);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

const char* commandName(Command c) {
  switch (c) {
    case Command::kAdd: return "ADD";
    case Command::kDel: return "DEL";
    case Command::kCheck: return "CHECK";
    case Command::kVersion: return "VERSION";
    case Command::kGc: return "GC";
    case Command::kStatus: return "STATUS";
  }
  return "?";
}

Result<CniArgs> parseCniArgs(std::string_view s) {
  CniArgs a;
  std::map<std::string, std::string> pairs;
  size_t pos = 0;
  while (pos <= s.size() && !s.empty()) {
    size_t semi = s.find(';', pos);
    std::string_view item = s.substr(pos, semi == s.npos ? s.npos : semi - pos);
    if (!item.empty()) {
      size_t eq = item.find('=');
      if (eq == item.npos || eq == 0)
        return envError("CNI_ARGS: \"" + std::string(item) + "\" is not KEY=VALUE");
      pairs[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
    }
    if (semi == s.npos) break;
    pos = semi + 1;
  }
  if (auto it = pairs.find("IgnoreUnknown"); it != pairs.end()) {
    SL_ASSIGN_OR_RETURN(a.ignoreUnknown, parseBool(it->first, it->second));
    pairs.erase(it);
  }
  for (auto& [k, v] : pairs) {
    if (k == "K8S_POD_NAMESPACE") a.podNamespace = v;
    else if (k == "K8S_POD_NAME") a.podName = v;
    else if (k == "K8S_POD_INFRA_CONTAINER_ID") a.podInfraContainerId = v;
    else if (k == "K8S_POD_UID") a.podUid = v;
    else if (a.ignoreUnknown) a.unknown[k] = v;
    else return envError("CNI_ARGS: unknown key \"" + k + "\" (and IgnoreUnknown is not set)");
  }
  return a;
}

Status validateContainerId(std::string_view id) {
  if (id.empty()) return envError("CNI_CONTAINERID is empty");
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(id[0])) return envError("CNI_CONTAINERID \"" + std::string(id) + "\" is invalid");
  for (char c : id)
    if (!alnum(c) && c != '_' && c != '.' && c != '-')
      return envError("CNI_CONTAINERID \"" + std::string(id) + "\" has invalid characters");
  return okStatus();
}

Status validateIfname(std::string_view name) {
  if (name.empty()) return envError("CNI_IFNAME is empty");
  if (name.size() > 15)
    return envError("CNI_IFNAME \"" + std::string(name) + "\" is longer than 15 characters");
  if (name == "." || name == "..")
    return envError("CNI_IFNAME \"" + std::string(name) + "\" is not a valid interface name");
  for (char c : name)
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || c == '\0')
      return envError("CNI_IFNAME \"" + std::string(name) + "\" has invalid characters");
  if (!isUtf8(name)) return envError("CNI_IFNAME \"" + std::string(name) + "\" is not valid UTF-8");
  return okStatus();
}

Result<CniEnv> parseCniEnv(const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* k) -> std::string {
    const char* v = getenv(k);
    return v ? std::string(v) : std::string();
  };
  CniEnv env;
  std::string cmd = get("CNI_COMMAND");
  if (cmd.empty()) return envError("CNI_COMMAND is not set");
  if (cmd == "ADD") env.command = Command::kAdd;
  else if (cmd == "DEL") env.command = Command::kDel;
  else if (cmd == "CHECK") env.command = Command::kCheck;
  else if (cmd == "VERSION") env.command = Command::kVersion;
  else if (cmd == "GC") env.command = Command::kGc;
  else if (cmd == "STATUS") env.command = Command::kStatus;
  else return envError("CNI_COMMAND \"" + cmd + "\" is not one of ADD, DEL, CHECK, VERSION, GC, STATUS");

  env.containerId = get("CNI_CONTAINERID");
  env.netns = get("CNI_NETNS");
  env.ifname = get("CNI_IFNAME");
  env.path = get("CNI_PATH");
  env.rawArgs = get("CNI_ARGS");

  const bool perAttachment = env.command == Command::kAdd || env.command == Command::kDel ||
                             env.command == Command::kCheck;
  if (perAttachment) {
    if (env.containerId.empty()) return envError("CNI_CONTAINERID is not set");
    SL_TRY(validateContainerId(env.containerId));
    if (env.ifname.empty()) return envError("CNI_IFNAME is not set");
    SL_TRY(validateIfname(env.ifname));
    if (env.command != Command::kDel && env.netns.empty())
      return envError(std::string("CNI_NETNS is not set (required for ") + cmd + ")");
    if (!isUtf8(env.netns)) return envError("CNI_NETNS \"" + env.netns + "\" is not valid UTF-8");
    if (!isUtf8(env.rawArgs)) return envError("CNI_ARGS \"" + env.rawArgs + "\" is not valid UTF-8");
    SL_ASSIGN_OR_RETURN(env.args, parseCniArgs(env.rawArgs));
  }
  return env;
}

}  // namespace sluice::cni
