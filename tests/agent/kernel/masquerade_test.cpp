// SPDX-License-Identifier: Apache-2.0
// The masquerade table against the real kernel (the test's own network namespace): the
// ruleset generation nfnetlink reports, and Masquerade::ensure's periodic check, which runs
// `nft` only when that generation moved since the table was last found intact, and puts the
// table back when it was changed. The agent's `nft` is found through PATH, so the test puts a
// wrapper in front of the real one that logs every run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../agent_test_util.h"
#include "masquerade.h"

namespace sluice::agent {
namespace {

namespace fs = std::filesystem;
using testutil::cidr;
using testutil::ip;
using testutil::sh;

uint32_t generation() {
  auto g = nftRulesetGeneration();
  EXPECT_TRUE(g.ok()) << g.error().describe();
  return g.ok() ? *g : 0;
}

class MasqueradeKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin"})
      if (::access((std::string(dir) + "/nft").c_str(), X_OK) == 0) realNft_ = std::string(dir) + "/nft";
    ASSERT_FALSE(realNft_.empty()) << "nft is not installed";
    char tmpl[] = "/tmp/sluice-masq-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ + "/nft-runs";
    {
      std::ofstream w(dir_ + "/nft");
      w << "#!/bin/sh\necho \"$*\" >> " << log_ << "\nexec " << realNft_ << " \"$@\"\n";
    }
    fs::permissions(dir_ + "/nft", fs::perms::owner_all);
    const char* path = std::getenv("PATH");
    oldPath_ = path ? path : "";
    ::setenv("PATH", (dir_ + ":" + oldPath_).c_str(), 1);
  }
  void TearDown() override {
    ::setenv("PATH", oldPath_.c_str(), 1);
    std::system((realNft_ + " delete table ip sluice 2>/dev/null; " + realNft_ +
                 " delete table inet sluice_test 2>/dev/null")
                    .c_str());
    fs::remove_all(dir_);
  }
  // How many times the agent ran nft so far.
  int nftRuns() const {
    std::ifstream in(log_);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
  // A change the agent does not make, with the real nft (not logged).
  void nft(const std::string& args) { sh(realNft_ + " " + args); }

  std::string realNft_, dir_, log_, oldPath_;
};

TEST_F(MasqueradeKernelTest, TheGenerationMovesWithEveryCommittedChangeAndOnlyThen) {
  const uint32_t before = generation();
  EXPECT_EQ(generation(), before) << "asking changes nothing";
  nft("add table inet sluice_test");
  const uint32_t after = generation();
  EXPECT_NE(after, before);
  EXPECT_EQ(generation(), after);
  nft("list ruleset > /dev/null");
  EXPECT_EQ(generation(), after) << "listing is no change";
  nft("delete table inet sluice_test");
  EXPECT_NE(generation(), after);
}

TEST_F(MasqueradeKernelTest, AQuietRulesetIsCheckedWithoutNftAndAChangedTableIsPutBack) {
  const std::vector<net::Cidr> cidrs{cidr("10.244.0.0/16")};
  const std::vector<net::IpAddr> nodes{ip("198.18.0.1"), ip("198.18.0.2")};
  Masquerade m(std::chrono::seconds(0));  // every ensure() is a periodic check

  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 1) << "applied";
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 2) << "the first check lists the table, at a generation it then knows";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 2) << "nothing changed anywhere: no nft run";

  nft("add table inet sluice_test");
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 3) << "someone else's change: listed, found intact, not rewritten";
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 3);

  nft("flush chain ip sluice postrouting");
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 5) << "listed, found flushed, applied again";
  EXPECT_EQ(std::system((realNft_ + " list chain ip sluice postrouting | grep -q masquerade").c_str()), 0)
      << "the masquerade rule is back";

  nft("delete table ip sluice");
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 7) << "listed, found gone, applied again";
  EXPECT_EQ(std::system((realNft_ + " list table ip sluice > /dev/null").c_str()), 0) << "the table is back";
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 8) << "after applying, the next check lists again";
  ASSERT_TRUE(m.ensure(cidrs, "sluice_vxlan", nodes).ok());
  EXPECT_EQ(nftRuns(), 8);
}

}  // namespace
}  // namespace sluice::agent
