// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstdlib>

namespace sluice::cni {

Result<Fd> openNetns(const std::string& path) {
  if (path.empty()) return Error(CniCode::kInvalidEnv, "CNI_NETNS is empty");
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return Error::fromErrno(errno, "open network namespace " + path, CniCode::kInvalidEnv);
  struct statfs sfs;
  if (::fstatfs(fd.get(), &sfs) != 0)
    return Error::fromErrno(errno, "statfs " + path, CniCode::kInvalidEnv);
  if (static_cast<unsigned long>(sfs.f_type) != NSFS_MAGIC)
    return Error(CniCode::kInvalidEnv, path + " is not a namespace (not on nsfs)");
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) return Error::fromErrno(errno, "NS_GET_NSTYPE on " + path, CniCode::kInvalidEnv);
  if (type != CLONE_NEWNET)
    return Error(CniCode::kInvalidEnv, path + " is a namespace but not a network namespace");
  return fd;
}

Result<Fd> currentNetns() {
  Fd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Error::fromErrno(errno, "open /proc/thread-self/ns/net");
  return fd;
}

Result<bool> sameNetns(int a, int b) {
  struct stat sa, sb;
  if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) return Error::fromErrno(errno, "fstat netns");
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Result<NetnsGuard> NetnsGuard::enter(int nsFd) {
  SL_ASSIGN_OR_RETURN(Fd origin, currentNetns());
  if (::setns(nsFd, CLONE_NEWNET) != 0) return Error::fromErrno(errno, "setns into the pod netns");
  return NetnsGuard(std::move(origin));
}

NetnsGuard::~NetnsGuard() {
  if (!origin_.valid()) return;  // moved from
  if (::setns(origin_.get(), CLONE_NEWNET) != 0) {
    spdlog::critical("cannot switch back to the original network namespace (errno {}): aborting",
                     errno);
    std::abort();
  }
}

}  // namespace sluice::cni
