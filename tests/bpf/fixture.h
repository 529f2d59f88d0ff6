// SPDX-License-Identifier: Apache-2.0
// The production datapath loaded unpinned, seeded through the same map wrapper the agent and
// the plugin use, and a way to run a frame through a program with BPF_PROG_TEST_RUN.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <net/if.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "packet.h"
#include "sluice/bpf/datapath.h"
#include "sluice/net/ip.h"

namespace sluice::test {

struct RunResult {
  int err = 0;  // BPF_PROG_TEST_RUN's own result: the kernel refuses some frames up front
  int retval = -1;
  Bytes out;
};

// Runs a frame through a program with the given context (ifindex, mark, ...), which comes
// back as the program left it; the test run itself must succeed unless `mayRefuse`.
inline RunResult runProgCtx(int progFd, const Bytes& in, __sk_buff& ctx, bool mayRefuse = false) {
  RunResult r;
  r.out.resize(in.size() + 256);
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<uint32_t>(in.size());
  opts.data_out = r.out.data();
  opts.data_size_out = static_cast<uint32_t>(r.out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.ctx_out = &ctx;
  opts.ctx_size_out = sizeof(ctx);
  opts.repeat = 1;
  r.err = bpf_prog_test_run_opts(progFd, &opts);
  if (!mayRefuse) {
    EXPECT_EQ(r.err, 0) << "BPF_PROG_TEST_RUN failed: " << std::strerror(errno);
  }
  r.retval = static_cast<int>(opts.retval);
  r.out.resize(opts.data_size_out);
  return r;
}

// Runs a frame through a program as received on (or sent from) ifindex.
inline RunResult runProg(int progFd, const Bytes& in, int ifindex, bool mayRefuse = false) {
  __sk_buff ctx{};
  ctx.ifindex = static_cast<uint32_t>(ifindex);
  return runProgCtx(progFd, in, ctx, mayRefuse);
}

inline sl_ip slIp(const std::string& s) {
  auto ip = net::IpAddr::parse(s);
  EXPECT_TRUE(ip.has_value()) << s;
  sl_ip out{};
  ip->toSl(out);
  return out;
}

inline sl_endpoint_key epKey(const std::string& s) {
  sl_endpoint_key k{};
  k.ip = slIp(s);
  return k;
}

inline sl_route_key routeKey(const std::string& cidr) {
  auto c = net::Cidr::parse(cidr);
  EXPECT_TRUE(c.has_value()) << cidr;
  sl_route_key k{};
  sl_ip ip{};
  c->network().addr().toSl(ip);
  k.prefixlen = static_cast<uint32_t>(SL_ROUTE_KEY_FAMILY_BITS + c->prefix());
  k.family = ip.family;
  std::memcpy(k.addr, ip.addr, sizeof(k.addr));
  return k;
}

inline uint32_t ip4Net(const std::string& s) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, s.c_str(), &a), 1);
  return a.s_addr;
}

// A veth pair in the test's private netns: BPF_PROG_TEST_RUN needs ctx.ifindex to exist.
class VethPair {
 public:
  VethPair(const std::string& a, const std::string& b) : a_(a) {
    std::string cmd = "ip link add " + a + " type veth peer name " + b;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    aIndex_ = static_cast<int>(if_nametoindex(a.c_str()));
    bIndex_ = static_cast<int>(if_nametoindex(b.c_str()));
  }
  ~VethPair() { std::system(("ip link del " + a_ + " 2>/dev/null").c_str()); }
  int a() const { return aIndex_; }
  int b() const { return bIndex_; }

 private:
  std::string a_;
  int aIndex_ = 0, bIndex_ = 0;
};

// A suite's datapath, loaded unpinned once for the suite, and a veth pair whose ifindexes the
// frames claim to come from (b with a given MAC where the programs compare the frame's
// destination with the device's). clearMaps() empties what tests seed.
class DatapathSuite : public ::testing::Test {
 protected:
  static void loadDatapath(const std::string& a, const std::string& b, const std::string& bMac = "") {
    auto dp = bpf::Datapath::load({});
    ASSERT_TRUE(dp.ok()) << dp.error().describe();
    dp_ = new bpf::Datapath(std::move(dp).value());
    veth_ = new VethPair(a, b);
    if (!bMac.empty()) {
      const std::string cmd = "ip link set " + b + " address " + bMac;
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  static void TearDownTestSuite() {
    delete veth_;
    veth_ = nullptr;
    delete dp_;
    dp_ = nullptr;
  }

  static const bpf::PinnedMaps& maps() { return dp_->maps(); }

  // Endpoints, interface identities, routes and the stack's flow records.
  static void clearMaps() {
    auto eps = maps().endpoints.entries();
    ASSERT_TRUE(eps.ok());
    for (auto& [k, v] : *eps) ASSERT_TRUE(maps().endpoints.erase(k).ok());
    auto ifs = maps().ifaces.entries();
    ASSERT_TRUE(ifs.ok());
    for (auto& [k, v] : *ifs) ASSERT_TRUE(maps().ifaces.erase(k).ok());
    auto rts = maps().routes.entries();
    ASSERT_TRUE(rts.ok());
    for (auto& [k, v] : *rts) ASSERT_TRUE(maps().routes.erase(k).ok());
    auto fl = dp_->stackFlows().entries();
    ASSERT_TRUE(fl.ok());
    for (auto& [k, v] : *fl) ASSERT_TRUE(dp_->stackFlows().erase(k).ok());
  }

  static std::vector<sl_counter> counters() {
    auto c = maps().metrics.read();
    EXPECT_TRUE(c.ok());
    return c.ok() ? *c : std::vector<sl_counter>(SL_CNT_MAX);
  }
  // Exactly one verdict counted since before_, and it is `id`; -1: none at all.
  void expectOnlyCounter(int id) const {
    auto now = counters();
    for (int i = 0; i < SL_CNT_MAX; ++i) {
      uint64_t d = now[static_cast<size_t>(i)].packets - before_[static_cast<size_t>(i)].packets;
      EXPECT_EQ(d, i == id ? 1u : 0u) << "counter " << i << " ("
                                      << (bpf::counterName(i) ? bpf::counterName(i) : "?") << ")";
    }
  }

  static inline bpf::Datapath* dp_ = nullptr;
  static inline VethPair* veth_ = nullptr;
  std::vector<sl_counter> before_;  // the counters when the test started (SetUp)
};

}  // namespace sluice::test
