// SPDX-License-Identifier: Apache-2.0
// The CNI configuration the agent writes once the datapath is up
// (<cni-conf-dir>/10-sluice.conflist, docs/internals.md), and the plugin binary install.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/file.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

inline constexpr const char* kConflistName = "10-sluice.conflist";

struct ConflistParams {
  net::Cidr podCidr;  // this node's pod CIDR (the IPv4 one when it has one)
  // Dual stack: this node's IPv6 pod CIDR next to an IPv4 podCidr, a second IPAM range set (one
  // address of each family per pod).
  std::optional<net::Cidr> podCidr6;
  int mtu = 0;
  std::string bpfRoot;
  std::string stateDir;
  std::string logLevel;
  // Plugins chained after "sluice" (--chain), in order. Each entry is {"type": name}, with the
  // runtimeConfig capabilities the reference plugins take (portmap: portMappings, bandwidth:
  // bandwidth) so a runtime passes the pod's hostPorts and limits to them.
  std::vector<std::string> chain;
  // Every chained plugin speaks CNI 1.1.0 (ChainVersions): the list offers it as sluice alone does.
  bool chainSpeaks11 = false;
};

// Which CNI versions the chained plugins speak, from their VERSION (run from the CNI bin
// directory, as a runtime would find them), asked again only when a binary changes (inode,
// size, modification time): the agent writes the conflist on every sync.
class ChainVersions {
 public:
  explicit ChainVersions(int timeoutMs = 5000) : timeoutMs_(timeoutMs) {}
  // Whether every plugin of `chain` in `binDir` lists `version`. One missing from the
  // directory, failing VERSION or not answering within the timeout does not.
  bool allSpeak(const std::vector<std::string>& chain, const std::string& binDir, const std::string& version);

 private:
  struct Seen {
    FileSig sig;
    std::vector<std::string> versions;
  };
  const std::vector<std::string>& versionsOf(const std::string& path, const std::string& binDir);

  int timeoutMs_;
  std::map<std::string, Seen> seen_;  // by binary path
};

// The runtimeConfig capabilities a chained plugin of that type declares ({} if none known).
nlohmann::ordered_json chainedCapabilities(const std::string& type);

// The conflist JSON text (logFile = <stateDir>/cni.log).
std::string renderConflist(const ConflistParams& p);

// Writes <dir>/10-sluice.conflist atomically and durably (writeDurably, mode 0644); an
// identical file is left alone so runtimes watching the directory see no change. Returns
// whether the file was (re)written.
Result<bool> writeConflist(const std::string& dir, const ConflistParams& p);

// Writes `content` to `path` with exactly `mode`, atomically and durably (fsynced temporary
// `.<name>.tmp-*` in the same directory, rename, fsync of the directory).
Status writeDurably(const std::string& path, const std::string& content, mode_t mode);

// Copies `src` to <binDir>/sluice.tmp, mode 0755, then renames it to <binDir>/sluice.
Status installCniBinary(const std::string& src, const std::string& binDir);

}  // namespace sluice::agent
