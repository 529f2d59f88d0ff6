// SPDX-License-Identifier: Apache-2.0
#include "flags.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>
#include <optional>

namespace sluice::agent {
namespace {

Error badFlag(const std::string& msg) { return Error(CniCode::kInvalidConfig, msg); }

template <typename T>
std::optional<T> parseNumber(const std::string& s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Command> subcommand(const std::string& word) {
  static const std::map<std::string, Command> kWords = {
      {"status", Command::kStatus}, {"endpoints", Command::kEndpoints},
      {"routes", Command::kRoutes}, {"nodes", Command::kNodes},
      {"counters", Command::kCounters}, {"uninstall", Command::kUninstall}, {"help", Command::kHelp},
      {"version", Command::kVersion}};
  auto it = kWords.find(word);
  if (it == kWords.end()) return std::nullopt;
  return it->second;
}

using Setter = std::function<Status(AgentOptions&, const std::string&)>;

Setter str(std::string AgentOptions::*field) {
  return [field](AgentOptions& o, const std::string& v) -> Status {
    o.*field = v;
    return okStatus();
  };
}

const std::map<std::string, Setter>& valueFlags() {
  static const std::map<std::string, Setter> kFlags = {
      {"--node-name", str(&AgentOptions::nodeName)},
      {"--nodes-file", str(&AgentOptions::nodesFile)},
      {"--kubeconfig", str(&AgentOptions::kubeconfig)},
      {"--bpf-root", str(&AgentOptions::bpfRoot)},
      {"--state-dir", str(&AgentOptions::stateDir)},
      {"--cni-conf-dir", str(&AgentOptions::cniConfDir)},
      {"--cni-bin-dir", str(&AgentOptions::cniBinDir)},
      {"--metrics-addr", str(&AgentOptions::metricsAddr)},
      {"--log-file", str(&AgentOptions::logFile)},
      {"--install-cni-bin", str(&AgentOptions::installCniBin)},
      {"--log-level",
       [](AgentOptions& o, const std::string& v) -> Status {
         static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
         for (const char* l : kLevels)
           if (v == l) {
             o.logLevel = v;
             return okStatus();
           }
         return badFlag("--log-level: unknown level '" + v + "'");
       }},
      {"--cluster-cidr",
       [](AgentOptions& o, const std::string& v) -> Status {
         std::vector<net::Cidr> cidrs;
         size_t start = 0;
         for (;;) {
           const size_t comma = v.find(',', start);
           const std::string one = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
           auto c = net::Cidr::parse(one);
           if (!c || one.find('/') == std::string::npos)
             return badFlag("--cluster-cidr: not a CIDR: '" + one + "' (expected CIDR or IPv4CIDR,IPv6CIDR)");
           for (const auto& have : cidrs)
             if (have.addr().family() == c->addr().family())
               return badFlag("--cluster-cidr: two IPv" + std::to_string(c->addr().family()) +
                              " CIDRs in '" + v + "' (at most one per family)");
           cidrs.push_back(c->network());
           if (comma == std::string::npos) break;
           start = comma + 1;
         }
         std::stable_sort(cidrs.begin(), cidrs.end(),
                          [](const net::Cidr& a, const net::Cidr& b) { return a.addr().isV4() && b.addr().isV6(); });
         o.clusterCidrs = std::move(cidrs);
         return okStatus();
       }},
      {"--mtu",
       [](AgentOptions& o, const std::string& v) -> Status {
         auto n = parseNumber<int>(v);
         if (!n || *n < 576 || *n > 65535) return badFlag("--mtu: expected 576..65535, got '" + v + "'");
         o.mtu = *n;
         return okStatus();
       }},
      {"--vni",
       [](AgentOptions& o, const std::string& v) -> Status {
         auto n = parseNumber<uint32_t>(v);
         if (!n || *n < 1 || *n > 0xffffff) return badFlag("--vni: expected 1..16777215, got '" + v + "'");
         o.vni = *n;
         return okStatus();
       }},
      {"--vxlan-port",
       [](AgentOptions& o, const std::string& v) -> Status {
         auto n = parseNumber<uint32_t>(v);
         if (!n || *n < 1 || *n > 65535) return badFlag("--vxlan-port: expected 1..65535, got '" + v + "'");
         o.vxlanPort = static_cast<uint16_t>(*n);
         return okStatus();
       }},
      {"--mode",
       [](AgentOptions& o, const std::string& v) -> Status {
         if (v == "vxlan") o.mode = DatapathMode::kVxlan;
         else if (v == "native") o.mode = DatapathMode::kNative;
         else return badFlag("--mode: expected vxlan or native, got '" + v + "'");
         return okStatus();
       }},
      {"--nat-detect",
       [](AgentOptions& o, const std::string& v) -> Status {
         if (v == "auto") o.natDetect = NatDetect::kAuto;
         else if (v == "conntrack") o.natDetect = NatDetect::kConntrack;
         else if (v == "records") o.natDetect = NatDetect::kRecords;
         else if (v == "off") o.natDetect = NatDetect::kOff;
         else return badFlag("--nat-detect: expected auto, conntrack, records or off, got '" + v + "'");
         return okStatus();
       }},
      {"--chain",
       [](AgentOptions& o, const std::string& v) -> Status {
         o.chain.clear();
         size_t start = 0;
         while (start <= v.size() && !v.empty()) {
           size_t comma = v.find(',', start);
           std::string type = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
           if (type.empty() || type.size() > 64 ||
               type.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos)
             return badFlag("--chain: '" + type + "' is not a plugin type (expected e.g. portmap,bandwidth)");
           if (type == "sluice") return badFlag("--chain: sluice is always the first plugin");
           if (std::find(o.chain.begin(), o.chain.end(), type) != o.chain.end())
             return badFlag("--chain: " + type + " named twice");
           o.chain.push_back(type);
           if (comma == std::string::npos) break;
           start = comma + 1;
         }
         return okStatus();
       }},
      {"--gc-interval-ms",
       [](AgentOptions& o, const std::string& v) -> Status {
         auto n = parseNumber<int>(v);
         if (!n || *n < 50 || *n > 3600000) return badFlag("--gc-interval-ms: expected 50..3600000");
         o.gcIntervalMs = *n;
         return okStatus();
       }},
      {"-o",
       [](AgentOptions& o, const std::string& v) -> Status {
         if (v == "json") o.json = true;
         else if (v == "table" || v == "wide") o.json = false;
         else return badFlag("-o: expected json or table, got '" + v + "'");
         return okStatus();
       }},
  };
  return kFlags;
}

}  // namespace

const char* modeName(DatapathMode m) { return m == DatapathMode::kNative ? "native" : "vxlan"; }

Result<AgentOptions> parseArgs(const std::vector<std::string>& args, const char* nodeNameEnv) {
  AgentOptions o;
  o.clusterCidrs = {*net::Cidr::parse("10.244.0.0/16")};
  if (nodeNameEnv != nullptr) o.nodeName = nodeNameEnv;
  bool haveSub = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--load-only") {
      if (haveSub) return badFlag("--load-only cannot be combined with a subcommand");
      o.command = Command::kLoadOnly;
      continue;
    }
    if (a == "-h" || a == "--help") {
      o.command = Command::kHelp;
      return o;
    }
    if (a == "--version") {
      o.command = Command::kVersion;
      return o;
    }
    if (a.rfind("-", 0) != 0) {
      auto sub = subcommand(a);
      if (!sub) return badFlag("unknown subcommand '" + a + "' (try --help)");
      if (haveSub || o.command == Command::kLoadOnly)
        return badFlag("only one subcommand at a time ('" + a + "')");
      haveSub = true;
      o.command = *sub;
      continue;
    }
    std::string name = a, value;
    bool inlineValue = false;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inlineValue = true;
    } else if (a == "--output") {
      name = "-o";
    }
    if (name == "--output") name = "-o";
    auto it = valueFlags().find(name);
    if (it == valueFlags().end()) return badFlag("unknown flag '" + name + "' (try --help)");
    if (!inlineValue) {
      if (i + 1 >= args.size()) return badFlag(name + " needs a value");
      value = args[++i];
    }
    SL_TRY(it->second(o, value));
  }
  if (!o.nodesFile.empty() && !o.kubeconfig.empty())
    return badFlag("--nodes-file and --kubeconfig are mutually exclusive");
  if (o.command == Command::kDaemon && o.nodeName.empty())
    return badFlag("--node-name (or $NODE_NAME) is required");
  if (o.bpfRoot.empty() || o.bpfRoot[0] != '/') return badFlag("--bpf-root must be an absolute path");
  return o;
}

std::string usage() {
  return R"(Usage:
  sluice-agent [flags]                      run the node agent (DaemonSet)
  sluice-agent --load-only --bpf-root DIR   load + pin (or reuse) the datapath and exit
  sluice-agent status|endpoints|routes|nodes|counters [--bpf-root DIR] [--state-dir DIR] [-o json]
  sluice-agent uninstall [--bpf-root DIR] [--state-dir DIR] [--cni-conf-dir DIR] [-o json]
                                            take Sluice off the node (agent stopped first)

Flags:
  --node-name NAME        this node (default $NODE_NAME)
  --nodes-file PATH       read nodes from a JSON file, reloaded on change
  --kubeconfig PATH       watch Nodes through this kubeconfig (neither: in-cluster)
  --bpf-root DIR          BPF pins (default /sys/fs/bpf/sluice)
  --state-dir DIR         plugin/agent state (default /var/lib/sluice)
  --cni-conf-dir DIR      where 10-sluice.conflist goes (default /etc/cni/net.d)
  --cni-bin-dir DIR       CNI binaries (default /opt/cni/bin)
  --cluster-cidr CIDR[,CIDR]  pod network of the whole cluster (default 10.244.0.0/16);
                          dual stack: an IPv4 and an IPv6 CIDR, comma separated
  --metrics-addr H:P      /healthz and /metrics (default 127.0.0.1:9962)
  --log-level L           trace|debug|info|warn|error (default info)
  --log-file PATH         also log to this file
  --mtu N                 pod MTU (default underlay MTU - 50)
  --vni N                 VXLAN network identifier (default 1)
  --vxlan-port N          VXLAN UDP port (default 8472)
  --mode vxlan|native     overlay or native routing (default vxlan)
  --nat-detect MODE       how replies of NATed flows (Services) are kept on the host stack:
                          auto (conntrack kfunc if the kernel has it, else flow records),
                          conntrack, records, off (breaks Services; tests only)
  --install-cni-bin PATH  install PATH as <cni-bin-dir>/sluice first (atomic rename)
  --chain A,B             chain these CNI plugins after sluice in the conflist (e.g.
                          portmap,bandwidth; they must be in --cni-bin-dir)
  -o json                 JSON output for the inspection subcommands
)";
}

}  // namespace sluice::agent
