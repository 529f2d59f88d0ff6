// SPDX-License-Identifier: Apache-2.0
// Helpers the agent test files share: literal addresses and shell commands that must succeed.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "sluice/net/ip.h"

namespace sluice::agent::testutil {

// A literal the test knows to be valid.
inline net::Cidr cidr(const char* s) { return *net::Cidr::parse(s); }
inline net::IpAddr ip(const char* s) { return *net::IpAddr::parse(s); }

// Runs `cmd` through the shell; the test fails unless it exits 0.
inline void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

}  // namespace sluice::agent::testutil
