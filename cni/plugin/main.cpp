// SPDX-License-Identifier: Apache-2.0
// sluice: the CNI plugin. The runtime's environment and stdin in, the result (or the spec's
// error document) on stdout, logs to stderr and the configured log file, never stdout.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

#include <spdlog/spdlog.h>

#include "plugin.h"
#include "sluice/cni/config.h"
#include "sluice/cni/env.h"
#include "sluice/cni/types.h"
#include "sluice/cni/version.h"
#include "sluice/log.h"

namespace {

using sluice::Error;
using sluice::Result;
namespace cni = sluice::cni;
namespace plugin = sluice::plugin;

// The version errors are answered in: the config's own when we speak it, else our latest.
std::string replyVersion(const std::string& stdinBytes) {
  std::string v = cni::peekVersion(stdinBytes);
  return cni::versionSupported(v) ? v : std::string(cni::kLatestVersion);
}

int emitError(const Error& e, const std::string& version) {
  spdlog::error("{}", e.describe());
  std::cout << cni::errorToJson(e, version).dump() << std::endl;
  return 1;
}

Result<std::string> run(const cni::CniEnv& env, const std::string& stdinBytes) {
  if (env.command == cni::Command::kVersion)
    return cni::versionInfoJson(replyVersion(stdinBytes)).dump();

  SL_ASSIGN_OR_RETURN(cni::NetConf conf, cni::parseNetConf(stdinBytes));
  sluice::LogOptions log;
  log.file = conf.logFile.empty() ? conf.stateDir + "/cni.log" : conf.logFile;
  log.level = conf.logLevel;
  log.context = plugin::logContext(env);
  sluice::setupLogging(log);
  spdlog::info("{} ({} {}, CNI_ARGS {})", cni::commandName(env.command), conf.name,
               conf.cniVersion, env.rawArgs.empty() ? "-" : env.rawArgs);

  const cni::Command c = env.command;
  if ((c == cni::Command::kGc || c == cni::Command::kStatus) &&
      !cni::versionAtLeast(conf.cniVersion, "1.1.0"))
    return Error(sluice::CniCode::kIncompatibleVersion,
                 std::string(cni::commandName(c)) + " needs cniVersion 1.1.0 or later, the config says " +
                     conf.cniVersion);
  if (c == cni::Command::kCheck && !cni::versionAtLeast(conf.cniVersion, "0.4.0"))
    return Error(sluice::CniCode::kIncompatibleVersion,
                 "CHECK needs cniVersion 0.4.0 or later, the config says " + conf.cniVersion);

  plugin::Invocation inv{env, std::move(conf)};
  switch (c) {
    case cni::Command::kAdd:
      return plugin::cmdAdd(inv);
    case cni::Command::kDel:
      SL_TRY(plugin::cmdDel(inv));
      return std::string();
    case cni::Command::kCheck:
      SL_TRY(plugin::cmdCheck(inv));
      return std::string();
    case cni::Command::kGc:
      SL_TRY(plugin::cmdGc(inv));
      return std::string();
    case cni::Command::kStatus:
      SL_TRY(plugin::cmdStatus(inv));
      return std::string();
    case cni::Command::kVersion:
      break;
  }
  return Error(sluice::CniCode::kInvalidEnv, "unhandled CNI_COMMAND");
}

}  // namespace

int main() {
  sluice::LogOptions early;  // stderr only until the config names the log file
  sluice::setupLogging(early);

  std::string stdinBytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  const std::string version = replyVersion(stdinBytes);

  auto env = cni::parseCniEnv([](const char* k) { return std::getenv(k); });
  if (!env.ok()) return emitError(env.error(), version);
  sluice::setLogContext(plugin::logContext(*env));

  auto out = run(*env, stdinBytes);
  if (!out.ok()) return emitError(out.error(), version);
  if (!out->empty()) std::cout << *out << std::endl;
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}
