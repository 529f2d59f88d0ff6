// SPDX-License-Identifier: Apache-2.0
#include "packet.h"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>

namespace sluice::test {

uint16_t be16(const Bytes& b, size_t off) { return static_cast<uint16_t>(b[off] << 8 | b[off + 1]); }

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

Mac macAt(const Bytes& b, size_t off) {
  Mac m{};
  std::memcpy(m.data(), b.data() + off, 6);
  return m;
}

uint16_t csum16(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

Bytes ethHeader(const Mac& dst, const Mac& src, uint16_t etherType) {
  Bytes b(14);
  std::memcpy(b.data(), dst.data(), 6);
  std::memcpy(b.data() + 6, src.data(), 6);
  put16(b, 12, etherType);
  return b;
}

Bytes ip4Frame(const Mac& dst, const Mac& src, const Ip4Spec& s) {
  if (s.options.size() % 4) throw std::invalid_argument("IPv4 options must be a multiple of 4 bytes");
  Bytes b = ethHeader(dst, src, 0x0800);
  size_t hl = 20 + s.options.size();
  size_t total = hl + s.payload;
  b.resize(14 + total, 0);
  uint8_t* ip = b.data() + 14;
  ip[0] = static_cast<uint8_t>(0x40 | (hl / 4));
  put16(b, 14 + 2, static_cast<uint16_t>(total));
  put16(b, 14 + 4, s.id);
  put16(b, 14 + 6, s.fragOff);
  ip[8] = s.ttl;
  ip[9] = s.proto;
  if (inet_pton(AF_INET, s.src.c_str(), ip + 12) != 1 || inet_pton(AF_INET, s.dst.c_str(), ip + 16) != 1)
    throw std::invalid_argument("bad IPv4 address");
  if (!s.options.empty()) std::memcpy(ip + 20, s.options.data(), s.options.size());  // data() may be null
  uint16_t c = csum16(ip, hl);
  put16(b, 14 + 10, c);
  const size_t u = 14 + hl;
  const bool firstFragment = (s.fragOff & 0x1fff) == 0;
  if (s.proto == 17 && s.payload >= 8 && firstFragment) {
    put16(b, u, s.sport);
    put16(b, u + 2, s.dport);
    put16(b, u + 4, static_cast<uint16_t>(s.payload));
    for (size_t i = 8; i < s.payload; ++i) b[u + i] = static_cast<uint8_t>(i);
  } else if (s.proto == 6 && s.payload >= 20 && firstFragment) {
    put16(b, u, s.sport);
    put16(b, u + 2, s.dport);
    put16(b, u + 4, 0x0001);   // sequence number
    put16(b, u + 8, 0x0001);   // acknowledgment number
    b[u + 12] = 5 << 4;        // data offset
    b[u + 13] = 0x12;          // SYN|ACK
    put16(b, u + 14, 0xffff);  // window
  } else if (s.proto == 132 && s.payload >= 12 && firstFragment) {
    put16(b, u, s.sport);
    put16(b, u + 2, s.dport);
  } else if (s.proto == 1 && s.payload >= 8 && firstFragment) {
    b[u] = s.icmpType;
    b[u + 1] = s.icmpCode;
    put16(b, u + 2, csum16(b.data() + u, s.payload));
  }
  return b;
}

Bytes ip6Frame(const Mac& dst, const Mac& src, const Ip6Spec& s) {
  Bytes b = ethHeader(dst, src, 0x86DD);
  b.resize(14 + 40, 0);
  uint8_t* ip = b.data() + 14;
  ip[0] = 0x60;
  put16(b, 14 + 4, static_cast<uint16_t>(s.payload.size()));
  ip[6] = s.nextHeader;
  ip[7] = s.hopLimit;
  if (inet_pton(AF_INET6, s.src.c_str(), ip + 8) != 1 || inet_pton(AF_INET6, s.dst.c_str(), ip + 24) != 1)
    throw std::invalid_argument("bad IPv6 address");
  b.insert(b.end(), s.payload.begin(), s.payload.end());
  return b;
}

Bytes arpRequest(const Mac& src, const std::string& senderIp, const std::string& targetIp) {
  Mac bcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  Bytes b = ethHeader(bcast, src, 0x0806);
  b.resize(14 + 28, 0);
  put16(b, 14, 1);       // Ethernet
  put16(b, 16, 0x0800);  // IPv4
  b[18] = 6;
  b[19] = 4;
  put16(b, 20, 1);  // request
  std::memcpy(b.data() + 22, src.data(), 6);
  if (inet_pton(AF_INET, senderIp.c_str(), b.data() + 28) != 1 ||
      inet_pton(AF_INET, targetIp.c_str(), b.data() + 38) != 1)
    throw std::invalid_argument("bad ARP address");
  return b;
}

bool ip4ChecksumValid(const Bytes& frame) {
  if (frame.size() < 34) return false;
  size_t hl = (frame[14] & 0x0f) * 4u;
  if (frame.size() < 14 + hl) return false;
  return csum16(frame.data() + 14, hl) == 0;
}

}  // namespace sluice::test
