// SPDX-License-Identifier: Apache-2.0
// A reference model of sl_from_pod's decision, written from DESIGN §2 and the program's
// documented order (malformed, not IP, neighbour discovery, spoofed, local endpoint, remote
// route: VXLAN pushed in BPF or the device's tunnel key, stack), and a runner that feeds frames to the real program through
// BPF_PROG_TEST_RUN and compares every verdict, output byte, counter and tunnel key with the
// model. Shared by the seeded gtest (datapath_fuzz_test.cpp) and the libFuzzer target
// (tests/fuzz/fuzz_datapath.cpp). No gtest in here: mismatches come back as text.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sluice/maps.h"
#include "sluice/result.h"

namespace sluice::test::model {

using Bytes = std::vector<uint8_t>;

struct EndpointEntry {
  sl_ip ip{};
  sl_endpoint ep{};
};

struct RouteEntry {
  uint8_t family = SL_AF_INET;  // SL_AF_INET / SL_AF_INET6
  std::array<uint8_t, 16> net{};  // network address, host bits clear
  int prefix = 0;
  sl_route route{};
};

// What the maps hold. Keys are unique (the generator guarantees it).
struct State {
  std::vector<std::pair<uint32_t, sl_iface>> ifaces;
  std::vector<EndpointEntry> endpoints;
  std::vector<RouteEntry> routes;
  sl_config config{};
  std::string describe() const;
};

struct Frame {
  Bytes bytes;
  uint32_t ifindex = 0;  // ctx.ifindex: the host veth the frame arrives on
  uint32_t gsoSize = 0;  // ctx.gso_size
};

struct TunnelKey {
  uint32_t id = 0;
  bool ipv6 = false;
  uint32_t remote4 = 0;  // host byte order, as struct bpf_tunnel_key has it
  std::array<uint32_t, 4> remote6{};
  uint8_t ttl = 0;
  bool operator==(const TunnelKey&) const = default;
  std::string str() const;
};

struct Decision {
  int retval = 0;    // TC_ACT_*
  int counter = 0;   // the one SL_CNT_* that counts this packet
  Bytes out;         // the frame as the program leaves it
  std::optional<TunnelKey> tunnel;  // set by bpf_skb_set_tunnel_key, exactly once
  // VXLAN pushed in BPF (lib/vxlan.h): `out` is the encapsulated frame but for the outer IPv4
  // ID and checksum and the UDP source port, which come from a random number and the flow
  // hash (the runner checks the checksum and the port's range instead).
  bool directEncap = false;
  bool kernelMayRefuse = false;     // shorter than its EtherType's header: the test run may refuse it
  std::string why;
};

Decision decideFromPod(const State& s, const Frame& f);

// Whether the kernel has the conntrack lookup kfunc (the datapath's default NAT detection).
bool kernelHasConntrackKfunc();

// Random states and frames aimed at the interesting cases (own/spoofed sources, local and
// remote destinations, TTL 0-2, options, truncation, GSO, neighbour discovery, garbage).
class Generator {
 public:
  Generator(uint64_t seed, std::vector<uint32_t> ifindexes);
  State state();
  Frame frame(const State& s);

 private:
  uint32_t u32() { return static_cast<uint32_t>(rng_()); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t below(size_t n) { return n ? static_cast<size_t>(rng_() % n) : 0; }
  std::mt19937_64 rng_;
  std::vector<uint32_t> ifindexes_;
};

// A fixed, hand-written state (the datapath tests' topology) and some variants of it, for
// seeds a person can read: 0 = VXLAN, 1 = native routing, 2 = no overlay device yet,
// 3 = a small overlay MTU. Others come from Generator(index).
State scenario(unsigned index, const std::vector<uint32_t>& ifindexes);
inline constexpr unsigned kFixedScenarios = 4;

// The production datapath loaded unpinned, in the calling process's network namespace (which
// must be a fresh one: it creates veths, a VXLAN device and an underlay there). Every frame
// runs through BPF_PROG_TEST_RUN; those the model encapsulates are also sent for real through
// a pod veth carrying the program, and the tunnel key is read off the VXLAN packet that leaves
// the underlay (a test run cannot show tunnel metadata; tracing programs that could are not
// allowed everywhere).
class Runner {
 public:
  static Result<std::unique_ptr<Runner>> create();
  ~Runner();
  const std::vector<uint32_t>& ifindexes() const { return ifindexes_; }
  Status apply(const State& s);
  // Runs f through sl_from_pod and compares with the model; "" when everything matches.
  std::string check(const State& s, const Frame& f);
  uint64_t ran() const { return ran_; }
  uint64_t refused() const { return refused_; }
  // Encapsulated frames whose tunnel key was checked on the real path.
  uint64_t tunnelsChecked() const { return tunnelsChecked_; }

 private:
  Runner();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<uint32_t> ifindexes_;
  uint64_t ran_ = 0, refused_ = 0, tunnelsChecked_ = 0;
};

// For the fuzzer: input bytes -> (scenario, frame).
struct FuzzCase {
  unsigned scenario = 0;
  Frame frame;
};
FuzzCase fuzzCase(const uint8_t* data, size_t size, const std::vector<uint32_t>& ifindexes);
inline constexpr unsigned kFuzzScenarios = 16;

std::string hex(const Bytes& b, size_t max = 96);

}  // namespace sluice::test::model
