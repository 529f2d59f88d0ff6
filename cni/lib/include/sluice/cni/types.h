// SPDX-License-Identifier: Apache-2.0
// The CNI result and error documents, in every spec version the plugin speaks. Addresses are
// typed (sluice::net), so IPv6 entries need no new fields when dual stack lands.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/net/ip.h"
#include "sluice/result.h"

namespace sluice::cni {

struct Interface {
  std::string name;
  std::string mac;      // "aa:bb:..", may be empty
  std::string sandbox;  // netns path for container-side interfaces, empty on the host
  std::optional<int> mtu;  // 1.1.0+
  bool operator==(const Interface&) const = default;
};

struct IpConfig {
  net::Cidr address;                  // address with its prefix ("10.244.1.5/32")
  std::optional<net::IpAddr> gateway;
  std::optional<int> interface;       // index into CniResult::interfaces
  bool operator==(const IpConfig&) const = default;
};

struct Route {
  net::Cidr dst;
  std::optional<net::IpAddr> gw;
  bool operator==(const Route&) const = default;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
  bool operator==(const Dns&) const = default;
};

struct CniResult {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
  bool operator==(const CniResult&) const = default;
};

// Serialises a result in the format of `version` (0.3.x/0.4.0: ips[].version "4"|"6").
nlohmann::json resultToJson(const CniResult& r, std::string_view version);
// Parses a result of any supported version (a prevResult, or a delegated IPAM plugin's
// answer). Malformed fields are kInvalidConfig errors naming the field under `where`.
Result<CniResult> resultFromJson(const nlohmann::json& j, const std::string& where = "result");

nlohmann::json dnsToJson(const Dns& d);
Result<Dns> dnsFromJson(const nlohmann::json& j, const std::string& where);

// The spec's error document: {"cniVersion", "code", "msg", "details"}.
nlohmann::json errorToJson(const Error& e, std::string_view version);
// Parses a delegated plugin's error document back into an Error; nullopt if `text` is not one.
std::optional<Error> errorFromJson(std::string_view text);

// The VERSION verb's answer.
nlohmann::json versionInfoJson(std::string_view version);

}  // namespace sluice::cni
