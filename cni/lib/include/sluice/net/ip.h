// SPDX-License-Identifier: Apache-2.0
// IPv4/IPv6 addresses and CIDRs: parsing, formatting, containment, host arithmetic.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/result.h"

struct sl_ip;

namespace sluice::net {

class IpAddr {
 public:
  IpAddr() = default;
  static IpAddr v4(uint32_t hostOrder);
  static std::optional<IpAddr> parse(std::string_view s);
  static IpAddr fromBytes(int family, const uint8_t* bytes);  // family: 4 or 6

  bool isV4() const { return family_ == 4; }
  bool isV6() const { return family_ == 6; }
  bool valid() const { return family_ != 0; }
  int family() const { return family_; }     // 4 or 6 (0 if invalid)
  int afFamily() const;                      // AF_INET / AF_INET6
  int bits() const { return family_ == 6 ? 128 : 32; }
  const std::array<uint8_t, 16>& bytes() const { return b_; }  // v4 in b_[0..3]
  uint32_t v4HostOrder() const;
  uint32_t v4NetOrder() const;
  std::string str() const;

  // Adds a (possibly negative) offset to the address, wrapping within its family.
  IpAddr plus(int64_t n) const;
  // Fills the shared BPF representation.
  void toSl(sl_ip& out) const;
  static IpAddr fromSl(const sl_ip& in);

  auto operator<=>(const IpAddr&) const = default;

 private:
  int family_ = 0;
  std::array<uint8_t, 16> b_{};
};

class Cidr {
 public:
  Cidr() = default;
  Cidr(IpAddr addr, int prefix) : addr_(addr), prefix_(prefix) {}
  // "10.244.1.0/24"; a bare address means /32 or /128. Host bits are kept in addr().
  static std::optional<Cidr> parse(std::string_view s);

  const IpAddr& addr() const { return addr_; }
  int prefix() const { return prefix_; }
  Cidr network() const;         // host bits cleared
  IpAddr broadcast() const;     // all host bits set (last address)
  bool contains(const IpAddr& ip) const;
  bool contains(const Cidr& other) const;
  bool overlaps(const Cidr& other) const;
  // Number of addresses, saturated at 2^63.
  uint64_t size() const;
  std::string str() const;  // keeps host bits: "10.244.1.5/24"
  auto operator<=>(const Cidr&) const = default;

 private:
  IpAddr addr_;
  int prefix_ = 0;
};

std::optional<std::array<uint8_t, 6>> parseMac(std::string_view s);
std::string formatMac(const uint8_t* mac);

}  // namespace sluice::net
