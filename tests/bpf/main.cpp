// SPDX-License-Identifier: Apache-2.0
// The datapath tests run in network and mount namespaces of their own: the veths they
// create and the bpffs they mount vanish with the process, even when it crashes.
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
    std::fprintf(stderr, "unshare(CLONE_NEWNET|CLONE_NEWNS): %s (the datapath tests need root)\n",
                 std::strerror(errno));
    return 1;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::perror("make / private");
    return 1;
  }
  sluice::setupLogging({.file = "", .level = std::getenv("SLUICE_TEST_LOG") ? std::getenv("SLUICE_TEST_LOG") : "warn", .context = "bpf-test", .toStderr = true});
  return RUN_ALL_TESTS();
}
