// SPDX-License-Identifier: Apache-2.0
#include "instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace sluice::agent {
namespace {

Result<Fd> openLockFile(const std::string& stateDir) {
  const std::string dir = stateDir + "/agent";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error::fromErrno(ec.value(), "create " + dir, CniCode::kIoFailure);
  const std::string p = InstanceLock::path(stateDir);
  Fd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return Error::fromErrno(errno, "open " + p, CniCode::kIoFailure);
  return fd;
}

// Whether this descriptor now holds the lock in `mode` (LOCK_EX or LOCK_SH); false: another
// descriptor holds it exclusively.
Result<bool> lockNonBlocking(const Fd& fd, int mode, const std::string& what) {
  while (::flock(fd.get(), mode | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) return Error::fromErrno(errno, "flock " + what, CniCode::kIoFailure);
  }
  return true;
}

void recordPid(const Fd& fd) {
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    spdlog::debug("recording the pid in the instance lock: {}", std::strerror(errno));
}

int recordedPid(const Fd& fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::atoi(buf) : 0;
}

}  // namespace

std::string InstanceLock::path(const std::string& stateDir) { return stateDir + "/agent/agent.lock"; }

std::optional<int> InstanceLock::holder(const std::string& stateDir) {
  Fd fd(::open(path(stateDir).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  // A shared lock is refused only while someone holds the exclusive one; taken, it goes with
  // the descriptor (an agent starting in this instant waits one round, 200 ms).
  auto free = lockNonBlocking(fd, LOCK_SH, path(stateDir));
  if (!free.ok() || *free) return std::nullopt;
  return recordedPid(fd);
}

Result<std::optional<InstanceLock>> InstanceLock::tryAcquire(const std::string& stateDir, int* holder) {
  SL_ASSIGN_OR_RETURN(Fd fd, openLockFile(stateDir));
  SL_ASSIGN_OR_RETURN(bool mine, lockNonBlocking(fd, LOCK_EX, path(stateDir)));
  if (!mine) {
    if (holder) *holder = recordedPid(fd);
    return std::optional<InstanceLock>();
  }
  recordPid(fd);
  return std::optional<InstanceLock>(InstanceLock(std::move(fd)));
}

Result<std::optional<InstanceLock>> InstanceLock::acquire(const std::string& stateDir,
                                                          const std::function<bool()>& waitOnce) {
  const auto start = std::chrono::steady_clock::now();
  int holder = 0;
  for (bool said = false;;) {
    SL_ASSIGN_OR_RETURN(auto lock, tryAcquire(stateDir, &holder));
    if (lock) {
      if (said)
        spdlog::info("took over {} after {:.1f} s", path(stateDir),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      return lock;
    }
    if (!said) {
      spdlog::warn("another sluice-agent (pid {}) holds {}: waiting for it to exit", holder, path(stateDir));
      said = true;
    }
    if (!waitOnce()) return std::optional<InstanceLock>();
  }
}

}  // namespace sluice::agent
