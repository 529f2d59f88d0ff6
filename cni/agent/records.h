// SPDX-License-Identifier: Apache-2.0
// Endpoint records written by the plugin: <stateDir>/endpoints/<hostVeth>.json
// (docs/internals.md "State under stateDir"). The agent only reads and, on GC, removes them.
#pragma once

#include <string>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::agent {

struct EndpointRecord {
  std::string path;  // the file it came from
  std::string containerID;
  std::string ifName;
  std::string netns;
  std::string hostVeth;
  int hostIfindex = 0;
  std::string podMac;
  std::string hostMac;
  std::vector<net::Cidr> ips;
  std::string podNamespace;
  std::string podName;
  std::string podUid;
  std::string network;
  std::string created;
};

std::string endpointsDir(const std::string& stateDir);

// Parses one record; unknown keys are ignored, wrong types are errors.
Result<EndpointRecord> parseRecord(const std::string& text);

struct RecordScan {
  std::vector<EndpointRecord> records;
  std::vector<std::string> unreadable;  // files that could not be parsed (left alone)
};

// Every *.json record under <stateDir>/endpoints (a missing directory is an empty scan).
RecordScan scanRecords(const std::string& stateDir);

}  // namespace sluice::agent
