// SPDX-License-Identifier: Apache-2.0
// The agent's kernel tests run in network and mount namespaces of their own: the links,
// programs, routes and nftables tables they make vanish with the process, even when it crashes.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "sluice/log.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::fprintf(stderr, "unshare(CLONE_NEWNET|CLONE_NEWNS): %s (the agent's kernel tests need root)\n",
                 std::strerror(errno));
    return 1;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("make / private");
    return 1;
  }
  std::system("ip link set lo up");
  const char* level = std::getenv("SLUICE_TEST_LOG");
  sluice::setupLogging({.file = "", .level = level ? level : "warn", .context = "agent-kernel-test", .toStderr = true});
  return RUN_ALL_TESTS();
}
