// SPDX-License-Identifier: Apache-2.0
#include "sluice/net/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "sluice/maps.h"

namespace sluice::net {

IpAddr IpAddr::v4(uint32_t hostOrder) {
  IpAddr a;
  a.family_ = 4;
  a.b_[0] = static_cast<uint8_t>(hostOrder >> 24);
  a.b_[1] = static_cast<uint8_t>(hostOrder >> 16);
  a.b_[2] = static_cast<uint8_t>(hostOrder >> 8);
  a.b_[3] = static_cast<uint8_t>(hostOrder);
  return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  // inet_pton reads a C string: "10.0.0.1\0junk" (a JSON "\u0000") must not pass for 10.0.0.1.
  if (s.find('\0') != std::string_view::npos) return std::nullopt;
  std::string str(s);
  IpAddr a;
  if (inet_pton(AF_INET, str.c_str(), a.b_.data()) == 1) {
    a.family_ = 4;
    return a;
  }
  if (inet_pton(AF_INET6, str.c_str(), a.b_.data()) == 1) {
    a.family_ = 6;
    return a;
  }
  return std::nullopt;
}

IpAddr IpAddr::fromBytes(int family, const uint8_t* bytes) {
  IpAddr a;
  a.family_ = family;
  std::memcpy(a.b_.data(), bytes, family == 6 ? 16 : 4);
  return a;
}

int IpAddr::afFamily() const { return family_ == 6 ? AF_INET6 : AF_INET; }

uint32_t IpAddr::v4HostOrder() const {
  return (uint32_t(b_[0]) << 24) | (uint32_t(b_[1]) << 16) | (uint32_t(b_[2]) << 8) | b_[3];
}

uint32_t IpAddr::v4NetOrder() const { return htonl(v4HostOrder()); }

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family_ == 0) return "<invalid>";
  inet_ntop(afFamily(), b_.data(), buf, sizeof(buf));
  return buf;
}

IpAddr IpAddr::plus(int64_t n) const {
  IpAddr r = *this;
  int len = family_ == 6 ? 16 : 4;
  // Two's complement add of a sign-extended 128-bit value, byte by byte from the end.
  uint64_t carry = 0;
  uint64_t un = static_cast<uint64_t>(n);
  for (int i = len - 1; i >= 0; --i) {
    int shift = (len - 1 - i) * 8;
    uint64_t addend = shift < 64 ? (un >> shift) & 0xff : (n < 0 ? 0xff : 0);
    uint64_t sum = uint64_t(r.b_[i]) + addend + carry;
    r.b_[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
  return r;
}

void IpAddr::toSl(sl_ip& out) const {
  std::memset(&out, 0, sizeof(out));
  out.family = static_cast<__u8>(family_ == 6 ? SL_AF_INET6 : SL_AF_INET);
  std::memcpy(out.addr, b_.data(), family_ == 6 ? 16 : 4);
}

IpAddr IpAddr::fromSl(const sl_ip& in) {
  return fromBytes(in.family == SL_AF_INET6 ? 6 : 4, reinterpret_cast<const uint8_t*>(in.addr));
}

std::optional<Cidr> Cidr::parse(std::string_view s) {
  auto slash = s.find('/');
  auto ip = IpAddr::parse(s.substr(0, slash));
  if (!ip) return std::nullopt;
  int prefix = ip->bits();
  if (slash != std::string_view::npos) {
    std::string_view p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    prefix = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > ip->bits()) return std::nullopt;
  }
  return Cidr(*ip, prefix);
}

static std::array<uint8_t, 16> maskBytes(int prefix) {
  std::array<uint8_t, 16> m{};
  for (int i = 0; i < 16; ++i) {
    int bits = prefix - i * 8;
    m[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
  return m;
}

Cidr Cidr::network() const {
  auto m = maskBytes(prefix_);
  auto b = addr_.bytes();
  for (int i = 0; i < 16; ++i) b[i] &= m[i];
  return Cidr(IpAddr::fromBytes(addr_.family(), b.data()), prefix_);
}

IpAddr Cidr::broadcast() const {
  auto m = maskBytes(prefix_);
  auto b = addr_.bytes();
  int len = addr_.isV6() ? 16 : 4;
  for (int i = 0; i < len; ++i) b[i] |= static_cast<uint8_t>(~m[i]);
  return IpAddr::fromBytes(addr_.family(), b.data());
}

bool Cidr::contains(const IpAddr& ip) const {
  if (ip.family() != addr_.family()) return false;
  auto m = maskBytes(prefix_);
  for (int i = 0; i < 16; ++i)
    if ((ip.bytes()[i] & m[i]) != (addr_.bytes()[i] & m[i])) return false;
  return true;
}

bool Cidr::contains(const Cidr& other) const {
  return other.prefix_ >= prefix_ && contains(other.addr_);
}

bool Cidr::overlaps(const Cidr& other) const { return contains(other) || other.contains(*this); }

uint64_t Cidr::size() const {
  int host = addr_.bits() - prefix_;
  return host >= 63 ? (uint64_t(1) << 63) : (uint64_t(1) << host);
}

std::string Cidr::str() const { return addr_.str() + "/" + std::to_string(prefix_); }

std::optional<std::array<uint8_t, 6>> parseMac(std::string_view s) {
  std::array<uint8_t, 6> mac{};
  unsigned v[6];
  std::string str(s);
  char trail;
  if (std::sscanf(str.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5], &trail) != 6)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
  return mac;
}

std::string formatMac(const uint8_t* mac) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

}  // namespace sluice::net
