// SPDX-License-Identifier: Apache-2.0
// sluice-agent: the DaemonSet agent, its --load-only init step and the inspection CLI.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "datapath_setup.h"
#include "flags.h"
#include "sluice/log.h"

namespace {

using sluice::agent::AgentOptions;
using sluice::agent::Command;

int fail(const sluice::Error& e) {
  spdlog::error("{}", e.describe());
  return 1;
}

int loadOnly(const AgentOptions& o) {
  auto dp = sluice::agent::loadDatapath(o.bpfRoot);
  if (!dp.ok()) return fail(dp.error());
  sluice::agent::ConfigUpdate u;
  u.mode = o.mode == sluice::agent::DatapathMode::kNative ? SL_MODE_NATIVE : SL_MODE_VXLAN;
  u.vni = o.vni;
  auto cfg = sluice::agent::updateConfig(dp->maps().config, u);
  if (!cfg.ok()) return fail(cfg.error());
  spdlog::info("datapath ready under {} (layout version {})", o.bpfRoot, cfg->layout_version);
  return 0;
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
  switch (o.command) {
    case Command::kHelp:
      std::fputs(sluice::agent::usage().c_str(), stdout);
      return 0;
    case Command::kVersion:
      std::printf("sluice-agent %s\n", SLUICE_VERSION);
      return 0;
    default:
      break;
  }
  sluice::LogOptions log;
  log.file = o.logFile;
  log.level = o.logLevel;
  sluice::setupLogging(log);
  switch (o.command) {
    case Command::kLoadOnly:
      return loadOnly(o);
    default:
      spdlog::error("this build of sluice-agent only supports --load-only");
      return 1;
  }
}
