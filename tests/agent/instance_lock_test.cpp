// SPDX-License-Identifier: Apache-2.0
// The agent's instance lock (instance_lock.h): one holder per state dir, the holder's pid for
// those refused, waiting until the holder is gone however it goes, giving up when told.
#include "instance_lock.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::agent {
namespace {

class InstanceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-lock-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/state";  // not there yet: the lock creates it
  }
  void TearDown() override {
    while (!children_.empty()) killChild(children_.back());
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }

  std::string recorded() const {
    std::ifstream f(InstanceLock::path(dir_));
    std::string s;
    std::getline(f, s);
    return s;
  }

  // A child process that takes the lock, says so on a pipe, then waits to be killed (by the test,
  // else by TearDown, else with this process).
  pid_t holdInChild() {
    int ready[2];
    EXPECT_EQ(::pipe(ready), 0);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::close(ready[0]);
      auto lock = InstanceLock::tryAcquire(dir_);
      const char ok = lock.ok() && *lock ? '1' : '0';
      (void)!::write(ready[1], &ok, 1);
      for (;;) ::pause();
    }
    children_.push_back(pid);
    ::close(ready[1]);
    char ok = 0;
    EXPECT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    EXPECT_EQ(ok, '1');
    return pid;
  }

  // SIGKILL, reaped: no clean-up of the child's runs.
  void killChild(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::erase(children_, pid);
  }

  std::string dir_;
  std::vector<pid_t> children_;
};

TEST_F(InstanceLockTest, AFreeLockIsTakenAndTheHoldersPidRecorded) {
  auto lock = InstanceLock::tryAcquire(dir_);
  ASSERT_TRUE(lock.ok()) << lock.error().describe();
  ASSERT_TRUE(lock->has_value());
  EXPECT_EQ(InstanceLock::path(dir_), dir_ + "/agent/agent.lock");
  EXPECT_EQ(recorded(), std::to_string(::getpid()));
}

TEST_F(InstanceLockTest, AnotherProcessIsRefusedWithTheHoldersPid) {
  const pid_t holder = holdInChild();
  int seen = -1;
  auto lock = InstanceLock::tryAcquire(dir_, &seen);
  ASSERT_TRUE(lock.ok()) << lock.error().describe();
  EXPECT_FALSE(lock->has_value());
  EXPECT_EQ(seen, holder);
}

TEST_F(InstanceLockTest, HolderSaysWhoHoldsItAndCreatesNothing) {
  EXPECT_EQ(InstanceLock::holder(dir_), std::nullopt);
  EXPECT_FALSE(std::filesystem::exists(dir_));  // the inspection CLI only reads
  const pid_t pid = holdInChild();
  EXPECT_EQ(InstanceLock::holder(dir_), std::optional<int>(pid));
  killChild(pid);
  EXPECT_EQ(InstanceLock::holder(dir_), std::nullopt);  // the file stays, nobody holds it
  auto lock = InstanceLock::tryAcquire(dir_);  // and holder() took nothing
  ASSERT_TRUE(lock.ok());
  EXPECT_TRUE(lock->has_value());
}

TEST_F(InstanceLockTest, ASecondHolderInTheSameProcessIsRefusedToo) {
  // flock belongs to the open file: the daemon's lock also stops a second start from within.
  auto first = InstanceLock::tryAcquire(dir_);
  ASSERT_TRUE(first.ok() && first->has_value());
  auto second = InstanceLock::tryAcquire(dir_);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value());
  first->reset();  // released with the descriptor
  auto third = InstanceLock::tryAcquire(dir_);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->has_value());
}

TEST_F(InstanceLockTest, WaitsUntilTheHolderIsKilledThenTakesOver) {
  const pid_t holder = holdInChild();
  int waits = 0;
  auto lock = InstanceLock::acquire(dir_, [&] {
    // The first wait ends the holder the hard way (no clean-up runs): the kernel releases it.
    if (++waits == 1) killChild(holder);
    return waits < 10;
  });
  ASSERT_TRUE(lock.ok()) << lock.error().describe();
  EXPECT_TRUE(lock->has_value());
  EXPECT_EQ(waits, 1);
  EXPECT_EQ(recorded(), std::to_string(::getpid()));
}

TEST_F(InstanceLockTest, GivesUpWhenTheWaitSaysSoAndTakesNothing) {
  const pid_t holder = holdInChild();
  int waits = 0;
  auto lock = InstanceLock::acquire(dir_, [&] { return ++waits < 3; });
  ASSERT_TRUE(lock.ok()) << lock.error().describe();
  EXPECT_FALSE(lock->has_value());
  EXPECT_EQ(waits, 3);
  EXPECT_EQ(recorded(), std::to_string(holder));  // the waiter wrote nothing
}

TEST_F(InstanceLockTest, AnUnusableStateDirIsAClearError) {
  std::filesystem::create_directories(std::filesystem::path(dir_).parent_path());
  std::ofstream(dir_) << "a file where the state dir should be";
  auto lock = InstanceLock::tryAcquire(dir_);
  ASSERT_FALSE(lock.ok());
  EXPECT_NE(lock.error().describe().find(dir_ + "/agent"), std::string::npos) << lock.error().describe();
}

}  // namespace
}  // namespace sluice::agent
