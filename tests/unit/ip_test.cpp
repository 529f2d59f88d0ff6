// SPDX-License-Identifier: Apache-2.0
#include "sluice/net/ip.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "sluice/maps.h"

namespace sluice::net {
namespace {

IpAddr ip(const char* s) {
  auto a = IpAddr::parse(s);
  EXPECT_TRUE(a.has_value()) << s;
  return a.value_or(IpAddr());
}

Cidr cidr(const char* s) {
  auto c = Cidr::parse(s);
  EXPECT_TRUE(c.has_value()) << s;
  return c.value_or(Cidr());
}

TEST(IpAddr, ParsesAndFormatsBothFamilies) {
  EXPECT_EQ(ip("10.244.1.5").str(), "10.244.1.5");
  EXPECT_TRUE(ip("10.244.1.5").isV4());
  EXPECT_EQ(ip("10.244.1.5").bits(), 32);
  EXPECT_EQ(ip("fd00::1").str(), "fd00::1");
  EXPECT_TRUE(ip("fd00::1").isV6());
  EXPECT_EQ(ip("FD00:0:0::1").str(), "fd00::1");
  EXPECT_EQ(ip("fd00::1").bits(), 128);
  EXPECT_FALSE(IpAddr::parse("10.244.1").has_value());
  EXPECT_FALSE(IpAddr::parse("10.244.1.256").has_value());
  EXPECT_FALSE(IpAddr::parse("10.244.1.5/32").has_value());
  EXPECT_FALSE(IpAddr::parse("").has_value());
  EXPECT_FALSE(IpAddr::parse("fd00:::1").has_value());
  EXPECT_FALSE(IpAddr().valid());
}

TEST(IpAddr, ByteOrders) {
  IpAddr a = IpAddr::v4(0x0af40105);
  EXPECT_EQ(a.str(), "10.244.1.5");
  EXPECT_EQ(a.v4HostOrder(), 0x0af40105u);
  EXPECT_EQ(a.v4NetOrder(), htonl(0x0af40105u));
  EXPECT_EQ(a, ip("10.244.1.5"));
}

TEST(IpAddr, PlusCarriesAndWraps) {
  EXPECT_EQ(ip("10.244.1.255").plus(1).str(), "10.244.2.0");
  EXPECT_EQ(ip("10.244.2.0").plus(-1).str(), "10.244.1.255");
  EXPECT_EQ(ip("10.0.0.0").plus(65536 + 2).str(), "10.1.0.2");
  EXPECT_EQ(ip("255.255.255.255").plus(1).str(), "0.0.0.0");
  EXPECT_EQ(ip("0.0.0.0").plus(-1).str(), "255.255.255.255");
  EXPECT_EQ(ip("fd00::ffff").plus(1).str(), "fd00::1:0");
  EXPECT_EQ(ip("fd00::1:0").plus(-1).str(), "fd00::ffff");
  EXPECT_EQ(ip("fd00::").plus(-1).str(), "fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(ip("::ffff:ffff:ffff:ffff").plus(1).str(), "0:0:0:1::");
}

TEST(IpAddr, OrdersWithinAFamilyNumerically) {
  EXPECT_LT(ip("10.244.1.9"), ip("10.244.1.10"));
  EXPECT_LT(ip("9.255.255.255"), ip("10.0.0.0"));
  EXPECT_LT(ip("fd00::9"), ip("fd00::10"));
  EXPECT_LT(ip("255.255.255.255"), ip("::"));  // IPv4 before IPv6
}

TEST(IpAddr, SharedBpfRepresentation) {
  sl_ip s;
  ip("10.244.1.5").toSl(s);
  EXPECT_EQ(s.family, SL_AF_INET);
  EXPECT_EQ(s.addr[0], htonl(0x0af40105u));
  EXPECT_EQ(s.addr[1], 0u);
  EXPECT_EQ(s.addr[3], 0u);
  EXPECT_EQ(IpAddr::fromSl(s), ip("10.244.1.5"));
  ip("fd00::1").toSl(s);
  EXPECT_EQ(s.family, SL_AF_INET6);
  EXPECT_EQ(IpAddr::fromSl(s), ip("fd00::1"));
}

TEST(Cidr, ParseKeepsHostBitsAndNetworkClearsThem) {
  Cidr c = cidr("10.244.1.5/24");
  EXPECT_EQ(c.str(), "10.244.1.5/24");
  EXPECT_EQ(c.prefix(), 24);
  EXPECT_EQ(c.network().str(), "10.244.1.0/24");
  EXPECT_EQ(c.broadcast().str(), "10.244.1.255");
  EXPECT_EQ(cidr("10.244.1.5").prefix(), 32);
  EXPECT_EQ(cidr("fd00::1").prefix(), 128);
  EXPECT_EQ(cidr("10.244.1.77/26").network().str(), "10.244.1.64/26");
  EXPECT_EQ(cidr("10.244.1.77/26").broadcast().str(), "10.244.1.127");
  EXPECT_EQ(cidr("10.1.2.3/0").network().str(), "0.0.0.0/0");
  EXPECT_EQ(cidr("10.1.2.3/0").broadcast().str(), "255.255.255.255");
  EXPECT_EQ(cidr("fd00:1:2:3:4::1/64").network().str(), "fd00:1:2:3::/64");
  EXPECT_EQ(cidr("fd00:1:2:3:4::1/64").broadcast().str(), "fd00:1:2:3:ffff:ffff:ffff:ffff");
  EXPECT_EQ(cidr("fd00::/125").broadcast().str(), "fd00::7");
}

TEST(Cidr, RejectsMalformed) {
  for (const char* bad : {"10.244.1.0/33", "10.244.1.0/", "10.244.1.0/-1", "10.244.1.0/2x",
                          "/24", "10.244.1/24", "fd00::/129", "10.244.1.0/0024", ""})
    EXPECT_FALSE(Cidr::parse(bad).has_value()) << bad;
}

TEST(Cidr, ContainmentAndOverlap) {
  Cidr c = cidr("10.244.1.0/24");
  EXPECT_TRUE(c.contains(ip("10.244.1.0")));
  EXPECT_TRUE(c.contains(ip("10.244.1.255")));
  EXPECT_FALSE(c.contains(ip("10.244.2.0")));
  EXPECT_FALSE(c.contains(ip("10.244.0.255")));
  EXPECT_FALSE(c.contains(ip("::a0f4:100")));  // other family, same low bytes
  EXPECT_TRUE(cidr("10.244.0.0/16").contains(c));
  EXPECT_FALSE(c.contains(cidr("10.244.0.0/16")));
  EXPECT_TRUE(c.contains(cidr("10.244.1.128/25")));
  EXPECT_TRUE(c.overlaps(cidr("10.244.0.0/16")));
  EXPECT_TRUE(cidr("10.244.0.0/16").overlaps(c));
  EXPECT_FALSE(c.overlaps(cidr("10.244.2.0/24")));
  EXPECT_TRUE(cidr("0.0.0.0/0").contains(ip("198.18.0.1")));
  EXPECT_TRUE(cidr("fd00::/64").contains(ip("fd00::abcd")));
  EXPECT_FALSE(cidr("fd00::/64").contains(ip("fd00:0:0:1::1")));
}

TEST(Cidr, Size) {
  EXPECT_EQ(cidr("10.244.1.0/24").size(), 256u);
  EXPECT_EQ(cidr("10.244.1.0/32").size(), 1u);
  EXPECT_EQ(cidr("0.0.0.0/0").size(), uint64_t(1) << 32);
  EXPECT_EQ(cidr("fd00::/120").size(), 256u);
  EXPECT_EQ(cidr("fd00::/64").size(), uint64_t(1) << 63);  // saturated
}

TEST(Mac, ParseAndFormat) {
  auto m = parseMac("0a:58:0A:f4:01:05");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(formatMac(m->data()), "0a:58:0a:f4:01:05");
  EXPECT_FALSE(parseMac("0a:58:0a:f4:01").has_value());
  EXPECT_FALSE(parseMac("0a:58:0a:f4:01:05:07").has_value());
  EXPECT_FALSE(parseMac("0a:58:0a:f4:01:zz").has_value());
  EXPECT_FALSE(parseMac("").has_value());
}

}  // namespace
}  // namespace sluice::net
