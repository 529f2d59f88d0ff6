// SPDX-License-Identifier: Apache-2.0
// sluice-agent: the DaemonSet agent, its --load-only init step and the inspection CLI.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent.h"
#include "cli.h"
#include "conflist.h"
#include "datapath_setup.h"
#include "flags.h"
#include "instance_lock.h"
#include "sluice/log.h"
#include "uninstall.h"

namespace {

using sluice::agent::AgentOptions;
using sluice::agent::Command;

int fail(const sluice::Error& e) {
  spdlog::error("{}", e.describe());
  return 1;
}

int loadOnly(const AgentOptions& o) {
  // Like the daemon, after any agent still running on the node (instance_lock.h).
  auto lock = sluice::agent::InstanceLock::acquire(o.stateDir, [] {
    ::usleep(200'000);
    return true;
  });
  if (!lock.ok()) return fail(lock.error());
  if (!o.installCniBin.empty()) {
    if (auto st = sluice::agent::installCniBinary(o.installCniBin, o.cniBinDir); !st.ok()) return fail(st.error());
  }
  auto dp = sluice::agent::loadDatapath(o.bpfRoot, o.vxlanPort);
  if (!dp.ok()) return fail(dp.error());
  sluice::agent::ConfigUpdate u;
  u.mode = o.mode == sluice::agent::DatapathMode::kNative ? SL_MODE_NATIVE : SL_MODE_VXLAN;
  u.vni = o.vni;
  auto nat = sluice::agent::natFlagsFor(o.natDetect);
  if (!nat.ok()) return fail(nat.error());
  u.natFlags = *nat;
  auto cfg = sluice::agent::updateConfig(dp->maps().config, u);
  if (!cfg.ok()) return fail(cfg.error());
  spdlog::info("datapath ready under {} (layout version {})", o.bpfRoot, cfg->layout_version);
  return 0;
}

bool isInspection(Command c) {
  return c == Command::kStatus || c == Command::kEndpoints || c == Command::kRoutes || c == Command::kNodes ||
         c == Command::kCounters;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto opts = sluice::agent::parseArgs(args, std::getenv("NODE_NAME"));
  if (!opts.ok()) {
    std::fprintf(stderr, "sluice-agent: %s\n", opts.error().message().c_str());
    return 2;
  }
  const AgentOptions& o = *opts;
  if (o.command == Command::kHelp) {
    std::fputs(sluice::agent::usage().c_str(), stdout);
    return 0;
  }
  if (o.command == Command::kVersion) {
    std::printf("sluice-agent %s\n", SLUICE_VERSION);
    return 0;
  }
  sluice::LogOptions log;
  log.level = o.logLevel;
  if (isInspection(o.command)) {
    // The CLI's output is stdout; only warnings and worse go to stderr.
    log.level = o.logLevel == "info" ? "warn" : o.logLevel;
    sluice::setupLogging(log);
    return sluice::agent::runCli(o, std::cout, std::cerr);
  }
  if (o.command == Command::kUninstall) {
    sluice::setupLogging(log);
    return sluice::agent::runUninstall(o, std::cout, std::cerr);
  }
  log.file = o.logFile;
  sluice::setupLogging(log);
  if (o.command == Command::kLoadOnly) return loadOnly(o);
  // Refused up front rather than by every reconcile: a node must not turn Ready without it.
  if (auto nat = sluice::agent::natFlagsFor(o.natDetect); !nat.ok()) return fail(nat.error());
  sluice::agent::Agent agent(o);
  return agent.run();
}
