// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <optional>

#include "sluice/fd.h"
#include "sluice/file.h"

namespace sluice::cni {
namespace {

constexpr const char* kLockName = "lock";
constexpr const char* kLastReservedPrefix = "last_reserved_ip.";
constexpr const char* kTmpPrefix = ".tmp-";

Error ioError(int err, const std::string& what) {
  return Error::fromErrno(err, "ipam: " + what, CniCode::kIoFailure);
}

Status mkdirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ioError(ec.value(), "create " + dir);
  return okStatus();
}

// last_reserved_ip.<n> is a hint (a torn one reads as no hint: the search starts at the range's
// start), rewritten under the lock on every reservation: in place, so that no file is created,
// replaced and freed per ADD (freeing blocks waits for a discard on filesystems mounted with
// `discard`). Failing to write it costs nothing but round-robin order.
void writeHint(const std::string& path, const std::string& content) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return;
  const auto n = static_cast<ssize_t>(content.size());
  if (::pwrite(fd.get(), content.data(), content.size(), 0) == n) (void)::ftruncate(fd.get(), n);
}

// flock(2) on <dir>/lock for the lifetime of the object.
class DirLock {
 public:
  static Result<DirLock> acquire(const std::string& dir) {
    SL_TRY(mkdirs(dir));
    std::string path = dir + "/" + kLockName;
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd.valid()) return ioError(errno, "open " + path);
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return ioError(errno, "flock " + path);
    }
    return DirLock(std::move(fd));
  }

 private:
  explicit DirLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing the descriptor releases the lock
};


std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == s.npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Every entry of the directory, reservations (named by an address) and others apart.
struct DirScan {
  std::vector<Reservation> reservations;
  std::vector<std::string> temps;
};

Result<DirScan> scan(const std::string& dir) {
  DirScan out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return ioError(errno, "open directory " + dir);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& name : names) {
    if (name.rfind(kTmpPrefix, 0) == 0) {
      out.temps.push_back(name);
      continue;
    }
    auto ip = net::IpAddr::parse(name);
    if (!ip) continue;
    SL_ASSIGN_OR_RETURN(auto content, readFileIfExists(dir + "/" + name, 4096));
    if (!content) continue;  // released meanwhile (only without the lock)
    Reservation r;
    r.ip = *ip;
    size_t nl = content->find('\n');
    r.containerId = trim(std::string_view(*content).substr(0, nl));
    if (nl != std::string::npos) r.ifname = trim(std::string_view(*content).substr(nl + 1));
    out.reservations.push_back(std::move(r));
  }
  return out;
}

bool excluded(const IpRange& r, const net::IpAddr& ip) {
  if (ip == r.subnet.addr()) return true;
  if (ip.isV4() && ip == r.subnet.broadcast()) return true;
  return r.gateway && *r.gateway == ip;
}

// Only a process killed while holding the lock can have left temporaries behind: every
// writer sweeps them, so a DEL or GC after a killed ADD leaves the directory clean.
void sweepTemporaries(const std::string& dir, const DirScan& st) {
  for (const auto& t : st.temps) ::unlink((dir + "/" + t).c_str());
}

}  // namespace

LocalIpam::LocalIpam(std::string dir, std::vector<RangeSet> ranges)
    : dir_(std::move(dir)), ranges_(std::move(ranges)) {}

std::string LocalIpam::directory(const std::string& stateDir, const std::string& network) {
  return stateDir + "/ipam/" + network;
}

Result<std::vector<Allocation>> LocalIpam::allocate(const std::string& containerId,
                                                    const std::string& ifname) {
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir_));
  sweepTemporaries(dir_, st);

  std::vector<Allocation> out;
  std::vector<std::string> created;  // released again if a later range set is exhausted
  auto rollback = [&] {
    for (const auto& p : created) ::unlink(p.c_str());
  };
  const std::string content = containerId + "\n" + ifname + "\n";

  for (size_t si = 0; si < ranges_.size(); ++si) {
    const RangeSet& set = ranges_[si];
    bool done = false;
    for (const auto& r : st.reservations) {
      if (r.containerId != containerId || r.ifname != ifname) continue;
      for (const auto& range : set) {
        if (range.contains(r.ip)) {
          out.push_back({r.ip, range, static_cast<int>(si), true});
          done = true;
          break;
        }
      }
      if (done) break;
    }
    if (done) continue;

    // Round robin: start right after the last address handed out from this range set.
    const std::string lastPath = dir_ + "/" + kLastReservedPrefix + std::to_string(si);
    auto lastContent = readFileIfExists(lastPath, 4096);
    size_t ri = 0;
    net::IpAddr cur = set[0].start;
    if (lastContent.ok() && lastContent->has_value()) {
      if (auto last = net::IpAddr::parse(trim(**lastContent))) {
        for (size_t k = 0; k < set.size(); ++k) {
          if (set[k].contains(*last)) {
            ri = k;
            cur = *last;
            if (cur == set[k].end) {
              ri = (k + 1) % set.size();
              cur = set[ri].start;
            } else {
              cur = cur.plus(1);
            }
            break;
          }
        }
      }
    }

    std::string tmp;
    std::optional<Allocation> got;
    const net::IpAddr first = cur;
    const size_t firstRange = ri;
    for (;;) {
      const IpRange& range = set[ri];
      if (!excluded(range, cur)) {
        if (tmp.empty()) {
          auto t = writeTempFile(dir_, kTmpPrefix, content, 0644, Durability::kAtomic);
          if (!t.ok()) {
            rollback();
            return std::move(t).error();
          }
          tmp = *t;
        }
        std::string path = dir_ + "/" + cur.str();
        if (::link(tmp.c_str(), path.c_str()) == 0) {
          created.push_back(path);
          got = Allocation{cur, range, static_cast<int>(si), false};
          break;
        }
        if (errno != EEXIST) {
          int err = errno;
          ::unlink(tmp.c_str());
          rollback();
          return ioError(err, "reserve " + path);
        }
      }
      if (cur == range.end) {
        ri = (ri + 1) % set.size();
        cur = set[ri].start;
      } else {
        cur = cur.plus(1);
      }
      if (ri == firstRange && cur == first) break;  // full circle
    }
    if (!tmp.empty()) ::unlink(tmp.c_str());
    if (!got) {
      rollback();
      std::string desc;
      for (const auto& range : set) {
        if (!desc.empty()) desc += ", ";
        desc += range.subnet.str() + " (" + range.start.str() + "-" + range.end.str() + ")";
      }
      return Error(CniCode::kIpamExhausted,
                   "ipam: no free address in range set " + std::to_string(si) + ": " + desc);
    }
    writeHint(lastPath, got->ip.str() + "\n");
    out.push_back(*got);
  }
  return out;
}

Result<std::vector<net::IpAddr>> LocalIpam::find(const std::string& containerId,
                                                 const std::string& ifname) const {
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return std::vector<net::IpAddr>();
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir_));
  std::vector<net::IpAddr> out;
  for (const auto& r : st.reservations)
    if (r.containerId == containerId && r.ifname == ifname) out.push_back(r.ip);
  return out;
}

Result<std::vector<net::IpAddr>> LocalIpam::release(const std::string& containerId,
                                                    const std::string& ifname) {
  std::vector<net::IpAddr> out;
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return out;  // nothing ever reserved
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir_));
  sweepTemporaries(dir_, st);
  for (const auto& r : st.reservations) {
    if (r.containerId != containerId || r.ifname != ifname) continue;
    std::string path = dir_ + "/" + r.ip.str();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError(errno, "unlink " + path);
    out.push_back(r.ip);
  }
  return out;
}

Result<std::vector<Reservation>> LocalIpam::list() const {
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return std::vector<Reservation>();
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir_));
  return st.reservations;
}

}  // namespace sluice::cni
