// SPDX-License-Identifier: Apache-2.0
// Endpoint records: <stateDir>/endpoints/<hostVeth>.json, one per attachment, written by ADD
// before the sl_endpoints entry and removed by DEL last (docs/internals.md). DEL, GC, CHECK,
// the agent's GC and the inspection CLI find an attachment's pieces through them.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::cni {

struct EndpointRecord {
  std::string containerId;
  std::string ifName;
  std::string netns;
  std::string hostVeth;
  int hostIfindex = 0;
  std::string podMac;   // "aa:bb:cc:dd:ee:ff"
  std::string hostMac;
  std::vector<net::Cidr> ips;  // "10.244.1.5/32"
  std::string podNamespace;
  std::string podName;
  std::string podUid;
  std::string network;
  std::string ipamType;
  std::string created;  // RFC 3339, UTC
  bool operator==(const EndpointRecord&) const = default;
};

nlohmann::json endpointToJson(const EndpointRecord& r);
Result<EndpointRecord> endpointFromJson(const nlohmann::json& j);

std::string endpointsDir(const std::string& stateDir);
std::string endpointRecordPath(const std::string& stateDir, const std::string& hostVeth);

// Atomic (temporary file, fsync, rename): readers never see half a record.
Status writeEndpointRecord(const std::string& stateDir, const EndpointRecord& r);
// nullopt when there is none.
Result<std::optional<EndpointRecord>> readEndpointRecord(const std::string& stateDir,
                                                         const std::string& hostVeth);
// false when there was none.
Result<bool> removeEndpointRecord(const std::string& stateDir, const std::string& hostVeth);
// Every readable record; unreadable files are reported in `skipped` (if given), not fatal.
Result<std::vector<EndpointRecord>> listEndpointRecords(const std::string& stateDir,
                                                        std::vector<std::string>* skipped = nullptr);

// Now, RFC 3339 in UTC ("2024-05-01T12:00:00Z").
std::string rfc3339Now();

}  // namespace sluice::cni
