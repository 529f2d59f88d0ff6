// SPDX-License-Identifier: Apache-2.0
// The network configuration the runtime passes on stdin (DESIGN §6): typed, validated once.
// Unknown keys are ignored; a known key of the wrong type is a kInvalidConfig error that
// names the field; an unsupported cniVersion is kIncompatibleVersion.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/cni/types.h"
#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::cni {

inline constexpr std::string_view kBuiltinIpamType = "sluice-ipam";
inline constexpr int kDefaultMtu = 1450;  // 1500 underlay - 50 VXLAN
inline constexpr const char* kDefaultBpfRoot = "/sys/fs/bpf/sluice";
inline constexpr const char* kDefaultStateDir = "/var/lib/sluice";
inline constexpr const char* kValidAttachmentsKey = "cni.dev/valid-attachments";

// One range of host-local's "ranges" format. Defaults are filled in by parsing:
// start = network + 1, end = broadcast - 1 (IPv4) or the last address (IPv6).
struct IpRange {
  net::Cidr subnet;  // canonical (host bits cleared)
  net::IpAddr start;
  net::IpAddr end;
  std::optional<net::IpAddr> gateway;  // only an explicit gateway is excluded from allocation
  bool contains(const net::IpAddr& ip) const;
  bool operator==(const IpRange&) const = default;
};
using RangeSet = std::vector<IpRange>;  // one address is allocated per range set

struct IpamConfig {
  std::string type;
  std::vector<RangeSet> ranges;  // sluice-ipam only
  bool builtin() const { return type == kBuiltinIpamType; }
};

struct Attachment {
  std::string containerId;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};

// runtimeConfig.bandwidth (the bandwidth capability, in bits/s and bits), as the reference
// bandwidth plugin reads it. Sluice does not shape: it only keeps out of the way of that plugin
// chained after it (the pod's veth uses TCX, and the shaped directions take the veth's qdiscs).
struct Bandwidth {
  uint64_t ingressRate = 0;
  uint64_t ingressBurst = 0;
  uint64_t egressRate = 0;
  uint64_t egressBurst = 0;
  // The bandwidth plugin shapes a direction only when both its rate and burst are set.
  bool shapesIngress() const { return ingressRate > 0 && ingressBurst > 0; }
  bool shapesEgress() const { return egressRate > 0 && egressBurst > 0; }
};

struct NetConf {
  std::string cniVersion;
  std::string name;
  std::string type;
  int mtu = kDefaultMtu;
  std::string bpfRoot = kDefaultBpfRoot;
  std::string stateDir = kDefaultStateDir;
  std::string logFile;
  std::string logLevel = "info";
  std::optional<IpamConfig> ipam;
  Dns dns;
  std::optional<nlohmann::json> prevResult;
  nlohmann::json runtimeConfig = nlohmann::json::object();
  std::optional<Bandwidth> bandwidth;  // runtimeConfig.bandwidth
  nlohmann::json capabilities = nlohmann::json::object();
  // GC only: the attachments the runtime still knows about.
  std::optional<std::vector<Attachment>> validAttachments;
  // The exact bytes received, handed unchanged to a delegated IPAM plugin.
  std::string raw;
};

// Parses a JSON document; malformed JSON is kDecodeFailure.
Result<nlohmann::json> decodeJson(std::string_view text);
// Reads only cniVersion (for VERSION, and for the version of error replies); empty if absent.
std::string peekVersion(std::string_view stdinBytes);
// Parses and validates the whole configuration.
Result<NetConf> parseNetConf(std::string_view stdinBytes);
// Parses host-local style "ranges" (exposed for tests and the agent).
Result<std::vector<RangeSet>> parseRanges(const nlohmann::json& j, const std::string& where);

}  // namespace sluice::cni
