// SPDX-License-Identifier: Apache-2.0
// Crafting Ethernet/IPv4/IPv6 frames for BPF_PROG_TEST_RUN, with valid checksums.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::test {

using Mac = std::array<uint8_t, 6>;
using Bytes = std::vector<uint8_t>;

struct Ip4Spec {
  std::string src = "10.244.1.2";
  std::string dst = "10.244.1.3";
  uint8_t ttl = 64;
  uint8_t proto = 17;  // UDP
  uint16_t fragOff = 0;  // host order, incl. flag bits (0x2000 = MF)
  uint16_t id = 0x1234;
  Bytes options;         // multiple of 4 bytes
  size_t payload = 32;   // bytes after the IP header (an L4 header is written when there is room:
                         // UDP 8 bytes, TCP 20, SCTP 12; ICMP 8 with icmpType/icmpCode)
  uint16_t sport = 40000;
  uint16_t dport = 5000;
  uint8_t icmpType = 8;  // echo request
  uint8_t icmpCode = 0;
};

struct Ip6Spec {
  std::string src = "fd00:10:244:1::2";
  std::string dst = "fd00:10:244:1::3";
  uint8_t hopLimit = 64;
  uint8_t nextHeader = 17;
  Bytes payload = Bytes(16, 0xab);
};

Bytes ethHeader(const Mac& dst, const Mac& src, uint16_t etherType);
Bytes ip4Frame(const Mac& dst, const Mac& src, const Ip4Spec& spec);
Bytes ip6Frame(const Mac& dst, const Mac& src, const Ip6Spec& spec);
Bytes arpRequest(const Mac& src, const std::string& senderIp, const std::string& targetIp);
// Internet checksum over the IPv4 header at offset 14 is valid.
bool ip4ChecksumValid(const Bytes& frame);
uint16_t csum16(const uint8_t* data, size_t len);
// Big-endian 16-bit field at `off`; the MAC address at `off`.
uint16_t be16(const Bytes& b, size_t off);
void put16(Bytes& b, size_t off, uint16_t v);
Mac macAt(const Bytes& b, size_t off);

}  // namespace sluice::test
