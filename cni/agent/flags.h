// SPDX-License-Identifier: Apache-2.0
// The agent's command line (docs/internals.md "The agent"): the daemon's flags, --load-only
// and the inspection subcommands, parsed into one value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

enum class Command {
  kDaemon,     // the DaemonSet agent
  kLoadOnly,   // load + pin (or reuse) the datapath, write sl_config, exit
  kStatus,     // inspection subcommands
  kEndpoints,
  kRoutes,
  kNodes,
  kCounters,
  kUninstall,  // take Sluice off the node (conflist, masquerade, routes, vxlan, pins)
  kHelp,
  kVersion,
};

enum class DatapathMode { kVxlan, kNative };

// How the datapath finds flows the host stack translated (docs/internals.md "NAT detection").
enum class NatDetect {
  kAuto,       // the conntrack lookup kfunc where the kernel has it, else flow records
  kConntrack,  // the kfunc, or refuse to start
  kRecords,    // flow records even where the kfunc exists
  kOff,        // none: replies of translated flows break (tests' control runs only)
};

struct AgentOptions {
  Command command = Command::kDaemon;
  std::string nodeName;        // --node-name, default $NODE_NAME
  std::string nodesFile;       // --nodes-file
  std::string kubeconfig;      // --kubeconfig (neither: in-cluster)
  std::string bpfRoot = "/sys/fs/bpf/sluice";
  std::string stateDir = "/var/lib/sluice";
  std::string cniConfDir = "/etc/cni/net.d";
  std::string cniBinDir = "/opt/cni/bin";
  // --cluster-cidr, default 10.244.0.0/16; "V4,V6" (as kube-proxy takes it) for dual stack:
  // at most one CIDR per family, IPv4 first when both.
  std::vector<net::Cidr> clusterCidrs;
  std::string metricsAddr = "127.0.0.1:9962";
  std::string logLevel = "info";
  std::string logFile;
  int mtu = 0;                 // 0: underlay MTU - overhead
  uint32_t vni = 1;
  uint16_t vxlanPort = 8472;
  DatapathMode mode = DatapathMode::kVxlan;
  NatDetect natDetect = NatDetect::kAuto;
  std::string installCniBin;   // --install-cni-bin PATH
  std::vector<std::string> chain;  // --chain a,b: plugins chained after sluice in the conflist
  bool json = false;           // -o json (inspection)
  // How often GC and the self-healing resync run; not in the docs, for tests and tuning.
  int gcIntervalMs = 1000;
};

// Parses argv (argv[0] excluded). `nodeNameEnv` is $NODE_NAME (may be null).
Result<AgentOptions> parseArgs(const std::vector<std::string>& args, const char* nodeNameEnv);

// Usage text for --help.
std::string usage();

const char* modeName(DatapathMode m);

}  // namespace sluice::agent
