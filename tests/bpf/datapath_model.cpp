// SPDX-License-Identifier: Apache-2.0
#include "datapath_model.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <variant>

#include "packet.h"
#include "sluice/bpf/datapath.h"
#include "sluice/bpf/tc.h"
#include "sluice/fd.h"

namespace sluice::test::model {
namespace {

constexpr size_t kEth = 14;
constexpr uint16_t kVxlanPort = 8472;

std::string ipStr(const sl_ip& ip) {
  char buf[INET6_ADDRSTRLEN] = "?";
  inet_ntop(ip.family == SL_AF_INET6 ? AF_INET6 : AF_INET, ip.addr, buf, sizeof(buf));
  return buf;
}

std::string macStr(const uint8_t* m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

std::string ip4Str(uint32_t netOrder) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &netOrder, buf, sizeof(buf));
  return buf;
}

// Whether the first `prefix` bits of a and b agree.
bool prefixMatch(const uint8_t* a, const uint8_t* b, int prefix) {
  for (int i = 0; i < prefix / 8; ++i)
    if (a[i] != b[i]) return false;
  if (prefix % 8) {
    const uint8_t mask = static_cast<uint8_t>(0xff << (8 - prefix % 8));
    if ((a[prefix / 8] & mask) != (b[prefix / 8] & mask)) return false;
  }
  return true;
}

// The kernel's ip_decrease_ttl(): TTL - 1 and the checksum adjusted incrementally (RFC 1624),
// with the end-around carry it does, in network byte order.
void decrementTtl(Bytes& b, bool ip4) {
  if (!ip4) {
    b[kEth + 7]--;
    return;
  }
  b[kEth + 8]--;
  uint32_t check = be16(b, kEth + 10) + 0x0100u;
  put16(b, kEth + 10, static_cast<uint16_t>(check + (check >= 0xffff)));
}

// What lib/vxlan.h makes of a frame for node `nodeIp4` (network order): outer MACs kept from
// the pod's frame, IPv4 with the inner ECN (CE as ECT(0)), TTL 64, DF clear; UDP to 8472 with
// checksum 0; the I flag and the VNI; the frame. ID, IPv4 checksum and UDP source port are left
// 0: the runner takes them from the program's output after checking them.
Bytes vxlanEncap(const Bytes& frame, bool ip4, uint32_t nodeIp4, const sl_config& c) {
  uint8_t ecn = ip4 ? frame[kEth + 1] & 3 : (frame[kEth + 1] >> 4) & 3;
  if (ecn == 3) ecn = 2;
  const size_t ipLen = frame.size() + 36;  // outer IPv4 + UDP + VXLAN + the frame
  Bytes o(frame.begin(), frame.begin() + 12);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(&c.node_ip4);
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&nodeIp4);
  const Bytes hdr = {0x08, 0x00,                                                          // Ethernet
                     0x45, ecn, static_cast<uint8_t>(ipLen >> 8), static_cast<uint8_t>(ipLen),  // IPv4
                     0, 0, 0, 0, 64, 17, 0, 0, src[0], src[1], src[2], src[3], dst[0], dst[1], dst[2], dst[3],
                     0, 0, kVxlanPort >> 8, kVxlanPort & 0xff,                             // UDP
                     static_cast<uint8_t>((ipLen - 20) >> 8), static_cast<uint8_t>(ipLen - 20), 0, 0,
                     0x08, 0, 0, 0,                                                        // VXLAN
                     static_cast<uint8_t>(c.vni >> 16), static_cast<uint8_t>(c.vni >> 8), static_cast<uint8_t>(c.vni), 0};
  o.insert(o.end(), hdr.begin(), hdr.end());
  o.insert(o.end(), frame.begin(), frame.end());
  return o;
}

}  // namespace

bool kernelHasConntrackKfunc() {
  static const bool has = [] {
    std::ifstream in("/proc/kallsyms");
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find(" bpf_skb_ct_lookup");
      if (at != std::string::npos && (at + 18 == line.size() || line[at + 18] == '\t')) return true;
    }
    return false;
  }();
  return has;
}

std::string hex(const Bytes& b, size_t max) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size() && i < max; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", b[i]);
    s += buf;
  }
  if (b.size() > max) s += "... (" + std::to_string(b.size()) + " bytes)";
  return s;
}

std::string TunnelKey::str() const {
  std::ostringstream o;
  o << "{id " << id << ", ttl " << int(ttl) << ", remote ";
  if (ipv6) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, remote6.data(), buf, sizeof(buf));
    o << buf;
  } else {
    o << ip4Str(htonl(remote4));
  }
  o << "}";
  return o.str();
}

std::string State::describe() const {
  std::ostringstream o;
  o << "config: mode " << config.mode << ", overlay_ifindex " << config.overlay_ifindex << ", underlay_ifindex "
    << config.underlay_ifindex << ", vni " << config.vni << ", overlay_mtu " << config.overlay_mtu << "\n";
  for (const auto& [idx, id] : ifaces) {
    sl_ip v6{};
    v6.family = SL_AF_INET6;
    std::memcpy(v6.addr, id.ip6, 16);
    o << "  iface " << idx << ": flags " << id.flags << " " << ip4Str(id.ip4) << " " << ipStr(v6) << "\n";
  }
  for (const auto& e : endpoints)
    o << "  endpoint " << ipStr(e.ip) << " -> ifindex " << e.ep.ifindex << " pod " << macStr(e.ep.pod_mac)
      << " host " << macStr(e.ep.host_mac) << "\n";
  for (const auto& r : routes) {
    sl_ip n{};
    n.family = r.family;
    std::memcpy(n.addr, r.net.data(), 16);
    sl_ip v6{};
    v6.family = SL_AF_INET6;
    std::memcpy(v6.addr, r.route.node_ip6, 16);
    o << "  route " << ipStr(n) << "/" << r.prefix << " -> " << ip4Str(r.route.node_ip4) << " / " << ipStr(v6)
      << "\n";
  }
  return o.str();
}

Decision decideFromPod(const State& s, const Frame& f) {
  const Bytes& b = f.bytes;
  const size_t len = b.size();
  Decision d;
  d.out = b;
  auto toStack = [&](const char* why) {
    d.retval = TC_ACT_OK;
    d.counter = SL_CNT_TO_STACK;
    d.why = why;
    return d;
  };
  auto drop = [&](int reason, const char* why) {
    d.retval = TC_ACT_SHOT;
    d.counter = SL_CNT_DROP(reason);
    d.why = why;
    return d;
  };

  // 1. Parse: Ethernet, then a sane IPv4 or IPv6 header; anything else is not ours to judge.
  if (len < kEth) {
    d.kernelMayRefuse = true;
    return drop(SL_DROP_MALFORMED, "shorter than an Ethernet header");
  }
  const uint16_t proto = be16(b, 12);
  bool ip4 = false, ip6 = false;
  size_t hl = 0;
  uint8_t l4 = 0;
  if (proto == 0x0800) {
    if (len < kEth + 20) {
      d.kernelMayRefuse = true;
      return drop(SL_DROP_MALFORMED, "truncated IPv4 header");
    }
    if ((b[kEth] >> 4) != 4 || (b[kEth] & 0x0f) < 5) return drop(SL_DROP_MALFORMED, "IPv4 version/ihl");
    hl = (b[kEth] & 0x0fu) * 4;
    if (kEth + hl > len) return drop(SL_DROP_MALFORMED, "IPv4 options beyond the frame");
    if (be16(b, kEth + 2) < hl) return drop(SL_DROP_MALFORMED, "IPv4 total length below the header length");
    ip4 = true;
    l4 = b[kEth + 9];
  } else if (proto == 0x86dd) {
    if (len < kEth + 40) {
      d.kernelMayRefuse = true;
      return drop(SL_DROP_MALFORMED, "truncated IPv6 header");
    }
    if ((b[kEth] >> 4) != 6) return drop(SL_DROP_MALFORMED, "IPv6 version");
    ip6 = true;
    hl = 40;
    l4 = b[kEth + 6];
  }
  if (!ip4 && !ip6) return toStack("not IP (ARP, LLDP, ...)");

  // 2. Neighbour discovery (as a receiver accepts it: hop limit 255, to a multicast group or a
  // link-local address) and link-local/unspecified IPv6 sources belong to the host.
  if (ip6) {
    const uint8_t* src = &b[kEth + 8];
    const uint8_t* dst = &b[kEth + 24];
    const bool linkScopedDst = dst[0] == 0xff || (dst[0] == 0xfe && (dst[1] & 0xc0) == 0x80);
    const bool ndisc = l4 == 58 && b[kEth + 7] == 255 && linkScopedDst && len >= kEth + 40 + 8 &&
                       b[kEth + 40] >= 133 && b[kEth + 40] <= 137;
    const bool linkLocal = src[0] == 0xfe && (src[1] & 0xc0) == 0x80;
    const bool unspecified = std::all_of(src, src + 16, [](uint8_t c) { return c == 0; });
    if (ndisc) return toStack("IPv6 neighbour discovery / router solicitation");
    if (linkLocal || unspecified) return toStack("IPv6 link-local or unspecified source");
  }

  // 3. Anti-spoofing: the source must be the address this veth's pod owns.
  const auto id = std::find_if(s.ifaces.begin(), s.ifaces.end(), [&](const auto& e) { return e.first == f.ifindex; });
  if (id == s.ifaces.end()) return drop(SL_DROP_UNKNOWN_IFACE, "veth without identity");
  if (ip4 && (!(id->second.flags & SL_IFACE_F_HAS_V4) || std::memcmp(&b[kEth + 12], &id->second.ip4, 4) != 0))
    return drop(SL_DROP_SPOOFED_SRC, "IPv4 source is not the pod's");
  if (ip6 && (!(id->second.flags & SL_IFACE_F_HAS_V6) || std::memcmp(&b[kEth + 8], id->second.ip6, 16) != 0))
    return drop(SL_DROP_SPOOFED_SRC, "IPv6 source is not the pod's");

  // 3b. IPv6 behind extension headers: the stack forwards it (the NAT check cannot see the
  // upper layer). Shaped pods (SL_IFACE_F_QDISC_EGRESS) are never generated here.
  if (ip6 && (l4 == 0 || l4 == 43 || l4 == 44 || l4 == 51 || l4 == 60 || l4 == 135 || l4 == 139 || l4 == 140))
    return toStack("IPv6 extension headers: the stack forwards it");

  sl_ip dst{};
  dst.family = ip4 ? SL_AF_INET : SL_AF_INET6;
  std::memcpy(dst.addr, &b[ip4 ? kEth + 16 : kEth + 24], ip4 ? 4 : 16);
  const uint8_t ttl = ip4 ? b[kEth + 8] : b[kEth + 7];

  const EndpointEntry* ep = nullptr;
  for (const auto& e : s.endpoints)
    if (std::memcmp(&e.ip, &dst, sizeof(dst)) == 0) ep = &e;
  const RouteEntry* best = nullptr;
  if (!ep) {
    // The longest matching remote pod CIDR.
    for (const auto& r : s.routes)
      if (r.family == dst.family && prefixMatch(r.net.data(), reinterpret_cast<const uint8_t*>(dst.addr), r.prefix) &&
          (!best || r.prefix > best->prefix))
        best = &r;
    if (!best) return toStack("no endpoint, no route: services, host, outside");
  }

#ifdef SL_CFG_F_NAT_OFF
  // 4. Replies of flows the stack translated go back through it (lib/nat.h). The test's
  // namespace has no conntrack entries and the flow maps are empty, so what remains of the
  // check is what it cannot judge: ICMP errors, L4 headers cut short, and SCTP where
  // conntrack is the method.
  if (!(s.config.flags & SL_CFG_F_NAT_OFF)) {
    const bool conntrack = !(s.config.flags & SL_CFG_F_NAT_RECORDS) && kernelHasConntrackKfunc();
    const bool laterFragment = ip4 && (be16(b, kEth + 6) & 0x1fff) != 0;
    const size_t l4off = kEth + hl;
    const bool icmpError =
        !laterFragment && l4off < len &&
        ((ip4 && l4 == 1 && (b[l4off] == 3 || b[l4off] == 4 || b[l4off] == 5 || b[l4off] == 11 || b[l4off] == 12)) ||
         (ip6 && l4 == 58 && b[l4off] < 128));
    if (icmpError) return toStack("an ICMP error: the stack translates its quote if it must");
    const bool ports = l4 == 6 || l4 == 17 || l4 == 132;
    if (!laterFragment && ports) {
      if (l4off + 4 > len) return toStack("L4 ports cut short: the stack judges");
      if (conntrack && l4 == 132) return toStack("SCTP: conntrack cannot be asked");
    }
  }
#endif

  // 5. A local endpoint: routed hop, L2 rewritten to the target pod's MACs, redirect_peer.
  if (ep) {
    const EndpointEntry& e = *ep;
    if (ttl <= 1) return toStack("local endpoint, but the TTL expires: the stack answers");
    decrementTtl(d.out, ip4);
    std::memcpy(&d.out[0], e.ep.pod_mac, 6);
    std::memcpy(&d.out[6], e.ep.host_mac, 6);
    d.retval = TC_ACT_REDIRECT;
    d.counter = SL_CNT_REDIRECT_LOCAL;
    d.why = "local endpoint";
    return d;
  }

  // 6. A remote node's pod CIDR: through the overlay, or natively over the underlay. Either
  // way a packet larger than the path carries (overlay_mtu: sluice_vxlan's IP MTU, or the
  // underlay's) goes to the stack.
  const sl_config& c = s.config;
  const bool native = c.mode == SL_MODE_NATIVE;
  if (native) {
    const bool v6NextHop = std::any_of(std::begin(best->route.node_ip6), std::end(best->route.node_ip6),
                                       [](uint32_t w) { return w != 0; });
    if (!c.underlay_ifindex || (ip4 && !best->route.node_ip4) || (ip6 && !v6NextHop))
      return toStack("native routing without underlay/next hop of the packet's family");
  }
  if (!native && !c.overlay_ifindex) return toStack("remote, but no overlay device yet");
  if (c.overlay_mtu) {
    bool fits;
    const uint32_t gso = f.gsoSize & 0xffff;  // skb_shared_info::gso_size is 16 bits
    if (!gso) {
      fits = len - kEth <= c.overlay_mtu;
    } else {
      uint32_t seg = gso + static_cast<uint32_t>(hl);
      if (l4 == 6) {
        fits = kEth + hl + 20 <= len;
        if (fits) seg += (b[kEth + hl + 12] >> 4) * 4u;
      } else if (l4 == 17) {
        fits = true;
        seg += 8;
      } else {
        fits = false;
      }
      fits = fits && seg <= c.overlay_mtu;
    }
    if (!fits) return toStack("remote, too big for the path: the stack fragments or answers PMTU");
  }
  if (ttl <= 1) return toStack("remote, but the TTL expires");
  decrementTtl(d.out, ip4);
  if (native) {
    d.retval = TC_ACT_REDIRECT;
    d.counter = SL_CNT_NATIVE;
    d.why = "remote pod, native routing";
    return d;
  }
  // VXLAN pushed in BPF for a node with an IPv4 address once the underlay is known. A GSO frame
  // of no TCP type, all a test run can make, is refused the headroom: the device path takes it.
  if (best->route.node_ip4 && c.node_ip4 && c.underlay_ifindex && (f.gsoSize & 0xffff) == 0) {
    d.out = vxlanEncap(d.out, ip4, best->route.node_ip4, c);
    d.directEncap = true;
    d.retval = TC_ACT_REDIRECT;
    d.counter = SL_CNT_ENCAP_DIRECT;
    d.why = "remote pod, VXLAN pushed in BPF";
    return d;
  }
  TunnelKey k;
  k.id = c.vni;
  k.ttl = 64;
  if (best->route.node_ip4) {
    k.remote4 = ntohl(best->route.node_ip4);
  } else {
    k.ipv6 = true;
    std::memcpy(k.remote6.data(), best->route.node_ip6, 16);
  }
  d.tunnel = k;
  d.retval = TC_ACT_REDIRECT;
  d.counter = SL_CNT_ENCAP;
  d.why = "remote pod, VXLAN through the device";
  return d;
}

// ---------------------------------------------------------------------------------------
// Generation

namespace {

sl_ip v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  sl_ip ip{};
  ip.family = SL_AF_INET;
  const uint8_t bytes[4] = {a, b, c, d};
  std::memcpy(ip.addr, bytes, 4);
  return ip;
}

sl_ip v6(uint16_t node, uint16_t host) {
  sl_ip ip{};
  ip.family = SL_AF_INET6;
  uint8_t* p = reinterpret_cast<uint8_t*>(ip.addr);
  const uint8_t prefix[6] = {0xfd, 0x00, 0x00, 0x10, 0x02, 0x44};  // fd00:10:244::/48
  std::memcpy(p, prefix, 6);
  p[6] = static_cast<uint8_t>(node >> 8);
  p[7] = static_cast<uint8_t>(node);
  p[14] = static_cast<uint8_t>(host >> 8);
  p[15] = static_cast<uint8_t>(host);
  return ip;
}

sl_iface identity(const sl_ip& a4, const sl_ip& a6, uint32_t flags) {
  sl_iface id{};
  id.flags = flags;
  std::memcpy(&id.ip4, a4.addr, 4);
  std::memcpy(id.ip6, a6.addr, 16);
  return id;
}

sl_endpoint endpoint(uint32_t ifindex, uint8_t tag) {
  sl_endpoint ep{};
  ep.ifindex = ifindex;
  const uint8_t pod[6] = {0x02, 0xaa, 0, 0, 0, tag};
  const uint8_t host[6] = {0x02, 0xbb, 0, 0, 0, tag};
  std::memcpy(ep.pod_mac, pod, 6);
  std::memcpy(ep.host_mac, host, 6);
  return ep;
}

RouteEntry route(const sl_ip& net, int prefix, uint32_t nodeIp4, const sl_ip* nodeIp6 = nullptr) {
  RouteEntry r;
  r.family = net.family;
  r.prefix = prefix;
  std::memcpy(r.net.data(), net.addr, 16);
  // host bits clear, as the agent writes them
  for (int bit = prefix; bit < 128; ++bit) r.net[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  r.route.node_ip4 = nodeIp4;
  if (nodeIp6) std::memcpy(r.route.node_ip6, nodeIp6->addr, 16);
  return r;
}

uint32_t netOrder(const sl_ip& ip) { return ip.addr[0]; }

}  // namespace

State scenario(unsigned index, const std::vector<uint32_t>& ifindexes) {
  if (index >= kFixedScenarios) return Generator(index, ifindexes).state();
  // The datapath tests' node: pod A on veth 0 (10.244.1.2, fd00:10:244:1::2), pod B on veth 1
  // (10.244.1.3), node-2 owns 10.244.2.0/24 and fd00:10:244:2::/64 (IPv6 underlay), node-3
  // fd00:10:244:3::/64 over the IPv4 underlay (dual stack as the agent plumbs it), a /16
  // catch-all to node-3, and veth 2 has no identity.
  State s;
  s.ifaces.emplace_back(ifindexes.at(0), identity(v4(10, 244, 1, 2), v6(1, 2), SL_IFACE_F_HAS_V4 | SL_IFACE_F_HAS_V6));
  s.ifaces.emplace_back(ifindexes.at(1), identity(v4(10, 244, 1, 3), v6(1, 3), SL_IFACE_F_HAS_V4));
  s.endpoints.push_back({v4(10, 244, 1, 3), endpoint(ifindexes.at(1), 3)});
  s.endpoints.push_back({v6(1, 3), endpoint(ifindexes.at(1), 3)});
  s.endpoints.push_back({v4(10, 244, 1, 2), endpoint(ifindexes.at(0), 2)});
  const sl_ip node2v6 = v6(0xff, 2);
  s.routes.push_back(route(v4(10, 244, 2, 0), 24, netOrder(v4(198, 18, 0, 2))));
  s.routes.push_back(route(v6(2, 0), 64, 0, &node2v6));
  s.routes.push_back(route(v6(3, 0), 64, netOrder(v4(198, 18, 0, 3))));
  s.routes.push_back(route(v4(10, 244, 0, 0), 16, netOrder(v4(198, 18, 0, 3))));
  s.config.layout_version = SL_LAYOUT_VERSION;
  s.config.mode = SL_MODE_VXLAN;
  s.config.node_ip4 = netOrder(v4(198, 18, 0, 1));
  s.config.overlay_ifindex = ifindexes.at(3);
  s.config.vni = 1;
  s.config.overlay_mtu = 1450;
  switch (index) {
    case 1:
      s.config.mode = SL_MODE_NATIVE;
      s.config.underlay_ifindex = ifindexes.at(3);
      break;
    case 2:
      s.config.overlay_ifindex = 0;
      break;
    case 3:
      s.config.overlay_mtu = 200;
      s.config.vni = 0xabcdef;
      break;
    default:
      break;
  }
  return s;
}

Generator::Generator(uint64_t seed, std::vector<uint32_t> ifindexes)
    : rng_(seed * 0x9e3779b97f4a7c15ull + 1), ifindexes_(std::move(ifindexes)) {}

State Generator::state() {
  State s;
  // A pod per veth but one (the last has no identity), addresses from a few /24s so that
  // sources, endpoints and routes collide often.
  for (size_t i = 0; i + 1 < ifindexes_.size(); ++i) {
    uint32_t flags = (chance(0.85) ? SL_IFACE_F_HAS_V4 : 0) | (chance(0.6) ? SL_IFACE_F_HAS_V6 : 0);
    const uint8_t node = static_cast<uint8_t>(1 + below(3));
    const uint8_t host = static_cast<uint8_t>(2 + below(8));
    s.ifaces.emplace_back(ifindexes_[i], identity(v4(10, 244, node, host), v6(node, host), flags));
  }
  auto addEndpoint = [&](const sl_ip& ip) {
    for (const auto& e : s.endpoints)
      if (std::memcmp(&e.ip, &ip, sizeof(ip)) == 0) return;
    const uint32_t ifindex = chance(0.7) ? ifindexes_[below(ifindexes_.size())] : 1000 + u32() % 1000;
    s.endpoints.push_back({ip, endpoint(ifindex, static_cast<uint8_t>(s.endpoints.size() + 1))});
  };
  for (size_t n = below(7); n > 0; --n) {
    const uint8_t node = static_cast<uint8_t>(1 + below(3));
    const uint8_t host = static_cast<uint8_t>(2 + below(8));
    addEndpoint(chance(0.6) ? v4(10, 244, node, host) : v6(node, host));
  }
  auto addRoute = [&](RouteEntry r) {
    for (const auto& o : s.routes)
      if (o.family == r.family && o.prefix == r.prefix && o.net == r.net) return;
    s.routes.push_back(r);
  };
  for (size_t n = below(6); n > 0; --n) {
    const uint8_t node = static_cast<uint8_t>(1 + below(4));
    const sl_ip under6 = v6(0xff, static_cast<uint16_t>(below(5)));
    const uint32_t under4 = chance(0.8) ? netOrder(v4(198, 18, 0, static_cast<uint8_t>(below(5)))) : 0;
    if (chance(0.6)) {
      static const int kPrefixes[] = {0, 8, 16, 20, 24, 24, 24, 25, 30, 32};
      addRoute(route(v4(10, 244, node, static_cast<uint8_t>(u32())), kPrefixes[below(10)], under4, &under6));
    } else {
      static const int kPrefixes[] = {0, 48, 56, 64, 64, 64, 112, 127, 128};
      addRoute(route(v6(node, static_cast<uint16_t>(u32())), kPrefixes[below(9)], under4, &under6));
    }
  }
  s.config.layout_version = SL_LAYOUT_VERSION;
  s.config.mode = chance(0.7) ? SL_MODE_VXLAN : chance(0.8) ? SL_MODE_NATIVE : 7u;
  s.config.node_ip4 = netOrder(v4(198, 18, 0, 1));
  s.config.overlay_ifindex = chance(0.85) ? ifindexes_.back() : 0;
  s.config.underlay_ifindex = chance(0.85) ? ifindexes_.back() : 0;
  s.config.vni = u32() & 0xffffff;
  s.config.overlay_mtu = chance(0.15) ? 0 : chance(0.6) ? 1450 : 68 + u32() % 1500;
#ifdef SL_CFG_F_NAT_OFF
  s.config.flags = chance(0.5) ? 0 : chance(0.5) ? SL_CFG_F_NAT_RECORDS : SL_CFG_F_NAT_OFF;
#endif
  return s;
}

Frame Generator::frame(const State& s) {
  Frame f;
  // The veth it arrives on: mostly one with a pod, sometimes the one without.
  const bool useIdentity = !s.ifaces.empty() && chance(0.85);
  const auto* id = useIdentity ? &s.ifaces[below(s.ifaces.size())] : nullptr;
  f.ifindex = id ? id->first : ifindexes_[below(ifindexes_.size())];
  f.gsoSize = chance(0.15) ? 1 + u32() % 1500 : 0;

  Bytes& b = f.bytes;
  b.resize(kEth);
  for (size_t i = 0; i < 12; ++i) b[i] = static_cast<uint8_t>(u32());
  b[0] &= 0xfe;  // unicast

  const double kind = std::uniform_real_distribution<double>(0, 1)(rng_);
  if (kind >= 0.80) {
    // ARP, other EtherTypes, 802.3 lengths, or plain noise.
    static const uint16_t kTypes[] = {0x0806, 0x88cc, 0x8100, 0x0000, 0x05dc, 0x86dd, 0x0800, 0xffff};
    put16(b, 12, kTypes[below(8)]);
    const size_t n = below(120);
    for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(u32()));
    return f;
  }
  const bool want6 = kind >= 0.45;

  // Source: the pod's own address mostly; another pod's, a link-local or a random one.
  auto ownOrOther = [&](bool family6) -> sl_ip {
    if (id && chance(0.75)) {
      sl_ip ip{};
      ip.family = family6 ? SL_AF_INET6 : SL_AF_INET;
      if (family6) std::memcpy(ip.addr, id->second.ip6, 16);
      else ip.addr[0] = id->second.ip4;
      return ip;
    }
    const uint8_t node = static_cast<uint8_t>(1 + below(3));
    const uint8_t host = static_cast<uint8_t>(2 + below(8));
    return family6 ? v6(node, host) : v4(10, 244, node, host);
  };
  sl_ip src = ownOrOther(want6);
  if (want6 && chance(0.06)) {
    std::memset(src.addr, 0, 16);
    if (chance(0.6)) {
      reinterpret_cast<uint8_t*>(src.addr)[0] = 0xfe;
      reinterpret_cast<uint8_t*>(src.addr)[1] = static_cast<uint8_t>(0x80 | (u32() & 0x3f));
      reinterpret_cast<uint8_t*>(src.addr)[15] = static_cast<uint8_t>(u32());
    }
  }
  // Destination: a local endpoint, somewhere in a route, the pod itself, or elsewhere.
  sl_ip dst{};
  const double where = std::uniform_real_distribution<double>(0, 1)(rng_);
  std::vector<const EndpointEntry*> eps;
  for (const auto& e : s.endpoints)
    if ((e.ip.family == SL_AF_INET6) == want6) eps.push_back(&e);
  std::vector<const RouteEntry*> rts;
  for (const auto& r : s.routes)
    if ((r.family == SL_AF_INET6) == want6) rts.push_back(&r);
  if (where < 0.35 && !eps.empty()) {
    dst = eps[below(eps.size())]->ip;
  } else if (where < 0.7 && !rts.empty()) {
    const RouteEntry* r = rts[below(rts.size())];
    dst.family = r->family;
    uint8_t* p = reinterpret_cast<uint8_t*>(dst.addr);
    const int bytes = want6 ? 16 : 4;
    for (int i = 0; i < bytes; ++i) {
      const int fixedBits = std::clamp(r->prefix - i * 8, 0, 8);
      const uint8_t mask = static_cast<uint8_t>(fixedBits ? 0xff << (8 - fixedBits) : 0);
      p[i] = static_cast<uint8_t>((r->net[static_cast<size_t>(i)] & mask) | (u32() & ~mask));
    }
  } else if (where < 0.8) {
    dst = src;
  } else {
    dst = want6 ? v6(static_cast<uint16_t>(below(6)), static_cast<uint16_t>(below(12))) : v4(10, 244, static_cast<uint8_t>(below(6)), static_cast<uint8_t>(below(12)));
    if (chance(0.3)) {
      dst.addr[0] = u32();
      if (want6) dst.addr[3] = u32();
    }
  }

  static const uint8_t kTtls[] = {0, 1, 2, 64, 255};
  const uint8_t ttl = chance(0.7) ? kTtls[below(5)] : static_cast<uint8_t>(u32());
  static const uint8_t kProtos[] = {6, 17, 1, 58, 47, 132};
  uint8_t l4 = kProtos[below(6)];

  // Payload size: mostly small, some near and beyond the overlay MTU.
  const double sz = std::uniform_real_distribution<double>(0, 1)(rng_);
  size_t payload = sz < 0.6 ? below(200) : sz < 0.9 ? 200 + below(1200) : 1400 + below(200);

  if (!want6) {
    put16(b, 12, 0x0800);
    size_t opts = chance(0.15) ? 4 * (1 + below(10)) : 0;
    const size_t hlen = 20 + opts;
    b.resize(kEth + hlen + payload, 0);
    b[kEth] = static_cast<uint8_t>(0x40 | (hlen / 4));
    const size_t total = hlen + payload;
    put16(b, kEth + 2, chance(0.9) ? static_cast<uint16_t>(total) : static_cast<uint16_t>(u32()));
    put16(b, kEth + 4, static_cast<uint16_t>(u32()));
    put16(b, kEth + 6, chance(0.9) ? 0x4000 : static_cast<uint16_t>(u32()));
    b[kEth + 8] = ttl;
    b[kEth + 9] = l4 == 58 ? 1 : l4;
    std::memcpy(&b[kEth + 12], src.addr, 4);
    std::memcpy(&b[kEth + 16], dst.addr, 4);
    for (size_t i = 0; i < opts; ++i) b[kEth + 20 + i] = static_cast<uint8_t>(u32());
    // a valid header checksum most of the time, so the TTL arithmetic starts from real values
    if (chance(0.8)) {
      uint32_t sum = 0;
      for (size_t i = 0; i < hlen; i += 2) sum += be16(b, kEth + i);
      while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
      put16(b, kEth + 10, static_cast<uint16_t>(~sum));
    } else {
      put16(b, kEth + 10, static_cast<uint16_t>(u32()));
    }
    l4 = b[kEth + 9];
    const size_t l4off = kEth + hlen;
    for (size_t i = 0; i < payload; ++i) b[l4off + i] = static_cast<uint8_t>(u32());
    if (l4 == 6 && payload >= 20) b[l4off + 12] = static_cast<uint8_t>((chance(0.8) ? 5 + below(11) : below(16)) << 4);
    static const uint8_t kIcmpTypes[] = {0, 8, 3, 11, 5, 4, 12, 13};
    if (l4 == 1 && payload >= 1) b[l4off] = chance(0.8) ? kIcmpTypes[below(8)] : static_cast<uint8_t>(u32());
  } else {
    put16(b, 12, 0x86dd);
    if (l4 == 1) l4 = 58;
    if (l4 == 58 && chance(0.5)) payload = std::max<size_t>(payload % 64, chance(0.9) ? 8 : 0);
    b.resize(kEth + 40 + payload, 0);
    b[kEth] = 0x60;
    put16(b, kEth + 4, static_cast<uint16_t>(payload));
    b[kEth + 6] = l4;
    b[kEth + 7] = ttl;
    std::memcpy(&b[kEth + 8], src.addr, 16);
    std::memcpy(&b[kEth + 24], dst.addr, 16);
    const size_t l4off = kEth + 40;
    for (size_t i = 0; i < payload; ++i) b[l4off + i] = static_cast<uint8_t>(u32());
    if (l4 == 58 && payload >= 1) b[l4off] = static_cast<uint8_t>(chance(0.6) ? 128 + below(12) : u32());
    if (l4 == 6 && payload >= 20) b[l4off + 12] = static_cast<uint8_t>((5 + below(11)) << 4);
    // Extension headers (a fragment header most often) in front of the upper layer.
    if (chance(0.12)) {
      static const uint8_t kExt[] = {44, 44, 0, 43, 60, 51};
      b[kEth + 6] = kExt[below(6)];
      if (payload >= 1) b[l4off] = l4;
    }
    // Neighbour discovery as a host sends it: hop limit 255, to a link-local or multicast address.
    if (l4 == 58 && payload >= 1 && b[l4off] >= 133 && b[l4off] <= 137 && chance(0.7)) {
      b[kEth + 7] = 255;
      b[kEth + 24] = chance(0.5) ? 0xff : 0xfe;
      b[kEth + 25] = b[kEth + 24] == 0xff ? 0x02 : 0x80;
    }
  }

  // Damage: flipped bytes (often in the headers), or a cut anywhere.
  if (chance(0.15)) {
    for (size_t n = 1 + below(4); n > 0; --n) {
      const size_t at = chance(0.7) ? below(std::min<size_t>(b.size(), kEth + 60)) : below(b.size());
      b[at] ^= static_cast<uint8_t>(1 + below(255));
    }
  }
  if (chance(0.08)) b.resize(below(b.size() + 1));
  return f;
}

FuzzCase fuzzCase(const uint8_t* data, size_t size, const std::vector<uint32_t>& ifindexes) {
  FuzzCase c;
  if (size < 4) {
    c.frame.bytes.assign(data, data + size);
    c.frame.ifindex = ifindexes.at(0);
    return c;
  }
  c.scenario = data[0] % kFuzzScenarios;
  c.frame.ifindex = ifindexes.at(data[1] % ifindexes.size());
  c.frame.gsoSize = (data[2] & 0x80) ? static_cast<uint32_t>((data[2] & 0x7f) << 8 | data[3]) : 0;
  c.frame.bytes.assign(data + 4, data + size);
  return c;
}

// ---------------------------------------------------------------------------------------
// Running the real program

struct Runner::Impl {
  std::unique_ptr<bpf::Datapath> dp;
  std::vector<std::string> links;
  std::vector<sl_counter> counters;
  // The real path for tunnel keys (BPF_PROG_TEST_RUN cannot show them): sl_from_pod on the
  // ingress of each pod veth, frames sent from its peer, the redirect to a real collect-md
  // VXLAN device, and the encapsulated packet captured on the underlay.
  std::vector<std::pair<uint32_t, uint32_t>> podPeers;  // (host veth, its peer we send from)
  uint32_t overlay = 0;
  Fd sendSock, captureSock;
  ~Impl() {
    for (const auto& l : links) std::system(("ip link del " + l + " 2>/dev/null").c_str());
  }

  uint32_t peerOf(uint32_t hostVeth) const {
    for (const auto& [h, p] : podPeers)
      if (h == hostVeth) return p;
    return 0;
  }

  // Sends a frame into a pod veth and returns the tunnel key of the VXLAN packet that carries
  // `inner` out of the underlay, or an error text.
  std::variant<TunnelKey, std::string> encapsulate(uint32_t peer, const Bytes& frame, const Bytes& inner) {
    uint8_t buf[65536];
    while (::recv(captureSock.get(), buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = static_cast<int>(peer);
    to.sll_halen = 6;
    std::memcpy(to.sll_addr, frame.data(), 6);
    if (::sendto(sendSock.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
      return std::string("send into the pod veth: ") + std::strerror(errno);
    for (int waited = 0; waited < 3000; waited += 20) {
      pollfd pfd{captureSock.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) continue;
      ssize_t n;
      while ((n = ::recv(captureSock.get(), buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        const Bytes pkt(buf, buf + n);
        TunnelKey k;
        size_t udp;
        if (pkt.size() >= kEth + 20 && be16(pkt, 12) == 0x0800 && pkt[kEth + 9] == 17) {
          udp = kEth + (pkt[kEth] & 0x0fu) * 4;
          k.ttl = pkt[kEth + 8];
          k.remote4 = static_cast<uint32_t>(pkt[kEth + 16]) << 24 | pkt[kEth + 17] << 16 | pkt[kEth + 18] << 8 | pkt[kEth + 19];
        } else if (pkt.size() >= kEth + 40 && be16(pkt, 12) == 0x86dd && pkt[kEth + 6] == 17) {
          udp = kEth + 40;
          k.ipv6 = true;
          k.ttl = pkt[kEth + 7];
          std::memcpy(k.remote6.data(), &pkt[kEth + 24], 16);
        } else {
          continue;
        }
        if (pkt.size() < udp + 16 || be16(pkt, udp + 2) != kVxlanPort) continue;
        const size_t vx = udp + 8;
        k.id = static_cast<uint32_t>(pkt[vx + 4]) << 16 | pkt[vx + 5] << 8 | pkt[vx + 6];
        if (Bytes(pkt.begin() + static_cast<std::ptrdiff_t>(vx + 8), pkt.end()) == inner) return k;
      }
    }
    return std::string("no VXLAN packet carrying the frame left the underlay within 3 s");
  }
};

Runner::Runner() : impl_(std::make_unique<Impl>()) {}
Runner::~Runner() = default;

Result<std::unique_ptr<Runner>> Runner::create() {
  // Never in the host's namespace: the veths this creates must die with the process, so
  // the namespace must be a fresh one (nothing but lo in it).
  if (struct if_nameindex* all = if_nameindex()) {
    std::string others;
    for (struct if_nameindex* i = all; i->if_index != 0; ++i)
      if (std::strcmp(i->if_name, "lo") != 0) others += std::string(" ") + i->if_name;
    if_freenameindex(all);
    if (!others.empty())
      return Error(CniCode::kInternal, "the datapath model runner needs a fresh network namespace; this one has" + others);
  }

  std::unique_ptr<Runner> r(new Runner());
  Impl& im = *r->impl_;
  auto run = [&](const std::string& cmd) -> Status {
    if (std::system((cmd + " >/dev/null").c_str()) != 0) return Error(CniCode::kInternal, "failed: " + cmd);
    return okStatus();
  };
  auto index = [&](const std::string& name) -> Result<uint32_t> {
    const unsigned idx = if_nametoindex(name.c_str());
    if (!idx) return Error::fromErrno(errno, "if_nametoindex " + name);
    return idx;
  };
  // No IPv6 on the pod veths: their own router solicitations and MLD reports would pass
  // through the program between two checks and spoil the exact counter comparison.
  SL_TRY(run("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1"));
  auto dp = bpf::Datapath::load({});
  if (!dp.ok()) return std::move(dp).error();
  im.dp = std::make_unique<bpf::Datapath>(std::move(dp).value());

  for (int i = 0; i < 3; ++i) {
    const std::string a = "slfz" + std::to_string(i) + "a", b = "slfz" + std::to_string(i) + "b";
    SL_TRY(run("ip link add " + a + " mtu 9000 type veth peer name " + b + " mtu 9000"));
    im.links.push_back(a);
    SL_TRY(run("ip link set " + a + " up"));
    SL_TRY(run("ip link set " + b + " up"));
    SL_ASSIGN_OR_RETURN(uint32_t ai, index(a));
    SL_ASSIGN_OR_RETURN(uint32_t bi, index(b));
    SL_TRY(bpf::attachTcIngress(static_cast<int>(ai), im.dp->fromPodFd()));
    im.podPeers.emplace_back(ai, bi);
    r->ifindexes_.push_back(ai);
  }
  // The overlay: collect-metadata VXLAN like sluice_vxlan; the underlay: a veth pair whose far
  // end captures, with permanent neighbours for the node addresses the states use.
  SL_TRY(run("ip link add slfzvx mtu 8000 type vxlan external dstport " + std::to_string(kVxlanPort)));
  im.links.push_back("slfzvx");
  SL_TRY(run("ip link add slfzu0 mtu 9000 type veth peer name slfzu1 mtu 9000"));
  im.links.push_back("slfzu0");
  SL_TRY(run("sysctl -qw net.ipv6.conf.slfzu0.disable_ipv6=0"));
  SL_TRY(run("ip addr add 198.18.0.100/24 dev slfzu0"));
  SL_TRY(run("ip addr add fd00:10:244:ff::100/64 dev slfzu0 nodad"));
  for (const char* dev : {"slfzu0", "slfzu1", "slfzvx"}) SL_TRY(run(std::string("ip link set ") + dev + " up"));
  for (int n = 0; n <= 4; ++n) {
    SL_TRY(run("ip neigh replace 198.18.0." + std::to_string(n) + " lladdr 02:00:5e:00:00:01 nud permanent dev slfzu0"));
    SL_TRY(run("ip neigh replace fd00:10:244:ff::" + std::to_string(n) + " lladdr 02:00:5e:00:00:01 nud permanent dev slfzu0"));
  }
  SL_ASSIGN_OR_RETURN(im.overlay, index("slfzvx"));
  r->ifindexes_.push_back(im.overlay);
  SL_ASSIGN_OR_RETURN(uint32_t capture, index("slfzu1"));

  im.sendSock = Fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  im.captureSock = Fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  if (!im.sendSock.valid() || !im.captureSock.valid()) return Error::fromErrno(errno, "packet sockets");
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = static_cast<int>(capture);
  if (::bind(im.captureSock.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0)
    return Error::fromErrno(errno, "bind the capture socket to slfzu1");
  return r;
}

Status Runner::apply(const State& s) {
  const auto& m = impl_->dp->maps();
  SL_ASSIGN_OR_RETURN(auto eps, m.endpoints.entries());
  for (const auto& [k, v] : eps) SL_TRY(m.endpoints.erase(k));
  SL_ASSIGN_OR_RETURN(auto ifs, m.ifaces.entries());
  for (const auto& [k, v] : ifs) SL_TRY(m.ifaces.erase(k));
  SL_ASSIGN_OR_RETURN(auto rts, m.routes.entries());
  for (const auto& [k, v] : rts) SL_TRY(m.routes.erase(k));
  for (const auto& [idx, id] : s.ifaces) SL_TRY(m.ifaces.update(idx, id));
  for (const auto& e : s.endpoints) {
    sl_endpoint_key k{};
    k.ip = e.ip;
    SL_TRY(m.endpoints.update(k, e.ep));
  }
  for (const auto& r : s.routes) {
    sl_route_key k{};
    k.prefixlen = static_cast<uint32_t>(SL_ROUTE_KEY_FAMILY_BITS + r.prefix);
    k.family = r.family;
    std::memcpy(k.addr, r.net.data(), 16);
    SL_TRY(m.routes.update(k, r.route));
  }
  SL_TRY(m.config.update(0, s.config));
  SL_ASSIGN_OR_RETURN(impl_->counters, m.metrics.read());
  return okStatus();
}

std::string Runner::check(const State& s, const Frame& f) {
  const Decision d = decideFromPod(s, f);
  Bytes out(f.bytes.size() + 256);
  __sk_buff ctx{};
  ctx.ifindex = f.ifindex;
  ctx.gso_size = f.gsoSize;
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = f.bytes.data();
  opts.data_size_in = static_cast<uint32_t>(f.bytes.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = 1;
  const int err = bpf_prog_test_run_opts(impl_->dp->fromPodFd(), &opts);
  const int savedErrno = errno;

  std::ostringstream why;
  auto context = [&] {
    std::ostringstream o;
    o << "  model: " << d.why << "\n  frame (" << f.bytes.size() << " bytes, ifindex " << f.ifindex << ", gso_size "
      << f.gsoSize << "): " << hex(f.bytes) << "\n  state: " << s.describe();
    return o.str();
  };
  if (err != 0) {
    ++refused_;
    if (d.kernelMayRefuse && savedErrno == EINVAL) return "";
    why << "BPF_PROG_TEST_RUN refused a frame it must run: " << std::strerror(savedErrno) << "\n" << context();
    return why.str();
  }
  ++ran_;
  out.resize(opts.data_size_out);

  if (static_cast<int>(opts.retval) != d.retval)
    why << "verdict " << opts.retval << ", the model says " << d.retval << "\n";
  Bytes want = d.out;
  if (d.directEncap && out.size() == want.size()) {
    // What the model cannot know: the outer ID, hence the checksum, and the UDP source port.
    uint32_t sum = 0;
    for (size_t i = kEth; i < kEth + 20; i += 2) sum += be16(out, i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    if (sum != 0xffff) why << "outer IPv4 checksum invalid\n";
    const uint16_t sport = be16(out, kEth + 20);
    if (sport < 32768 || sport > 60999) why << "UDP source port " << sport << " outside 32768-60999\n";
    for (size_t at : {kEth + 4, kEth + 5, kEth + 10, kEth + 11, kEth + 20, kEth + 21}) want[at] = out[at];
  }
  if (out != want) {
    size_t at = 0;
    while (at < out.size() && at < want.size() && out[at] == want[at]) ++at;
    why << "output differs from byte " << at << " on\n    got  " << hex(out) << "\n    want " << hex(want) << "\n";
  }
  auto now = impl_->dp->maps().metrics.read();
  if (!now.ok()) return "reading the metrics map: " + now.error().describe();
  for (size_t i = 0; i < now->size(); ++i) {
    const uint64_t packets = (*now)[i].packets - impl_->counters[i].packets;
    const uint64_t bytes = (*now)[i].bytes - impl_->counters[i].bytes;
    const bool mine = static_cast<int>(i) == d.counter;
    if (packets != (mine ? 1u : 0u) || bytes != (mine ? f.bytes.size() : 0u)) {
      const char* name = bpf::counterName(static_cast<int>(i));
      why << "counter " << i << " (" << (name ? name : "?") << ") +" << packets << " packets +" << bytes
          << " bytes; the model counts the packet in " << d.counter << "\n";
    }
  }
  impl_->counters = std::move(*now);

  // The tunnel key, on the real path: only for frames the program encapsulates that can be
  // sent for real (no GSO metadata; into a veth that carries the program; the overlay is our
  // VXLAN device).
  if (d.tunnel && why.str().empty() && f.gsoSize == 0 && s.config.overlay_ifindex == impl_->overlay) {
    if (const uint32_t peer = impl_->peerOf(f.ifindex)) {
      auto got = impl_->encapsulate(peer, f.bytes, d.out);
      if (auto* err = std::get_if<std::string>(&got)) {
        why << *err << "; the model wants tunnel key " << d.tunnel->str() << "\n";
      } else {
        TunnelKey want = *d.tunnel;
        want.id &= 0xffffff;  // a VNI has 24 bits
        ++tunnelsChecked_;
        if (!(std::get<TunnelKey>(got) == want))
          why << "tunnel key " << std::get<TunnelKey>(got).str() << ", the model wants " << want.str() << "\n";
      }
      auto again = impl_->dp->maps().metrics.read();  // the real run counted too
      if (!again.ok()) return "reading the metrics map: " + again.error().describe();
      impl_->counters = std::move(*again);
    }
  }

  if (why.str().empty()) return "";
  return why.str() + context();
}

}  // namespace sluice::test::model
