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

#include "sluice/cni/hash.h"
#include "sluice/fd.h"
#include "sluice/file.h"

namespace sluice::cni {
namespace {

constexpr const char* kLockName = "lock";
constexpr const char* kLastReservedPrefix = "last_reserved_ip.";
constexpr const char* kTmpPrefix = ".tmp-";
constexpr const char* kIndexPrefix = ".att.";
// In the lock file once every reservation of the directory has its index entry.
constexpr std::string_view kIndexedMark = "sluice-ipam index 1\n";

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
  // Whether the directory's index is complete (see attachmentAddresses).
  bool indexed() const {
    char buf[64];
    const ssize_t n = ::pread(fd_.get(), buf, sizeof(buf), 0);
    return n >= 0 && std::string_view(buf, static_cast<size_t>(n)) == kIndexedMark;
  }
  void markIndexed() const {
    const auto n = static_cast<ssize_t>(kIndexedMark.size());
    if (::pwrite(fd_.get(), kIndexedMark.data(), kIndexedMark.size(), 0) == n) (void)::ftruncate(fd_.get(), n);
  }

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

// The names in the directory (without . and ..).
Result<std::vector<std::string>> entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return names;
    return ioError(errno, "open directory " + dir);
  }
  while (dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}

// The reservation of an address, nullopt when the address is free.
Result<std::optional<Reservation>> readReservation(const std::string& dir, const net::IpAddr& ip) {
  SL_ASSIGN_OR_RETURN(auto content, readFileIfExists(dir + "/" + ip.str(), 4096));
  if (!content) return std::optional<Reservation>();
  Reservation r;
  r.ip = ip;
  size_t nl = content->find('\n');
  r.containerId = trim(std::string_view(*content).substr(0, nl));
  if (nl != std::string::npos) r.ifname = trim(std::string_view(*content).substr(nl + 1));
  return std::optional<Reservation>(std::move(r));
}

// Every entry of the directory, reservations (named by an address) and temporaries apart.
struct DirScan {
  std::vector<Reservation> reservations;
  std::vector<std::string> temps;
};

Result<DirScan> scan(const std::string& dir) {
  DirScan out;
  SL_ASSIGN_OR_RETURN(auto names, entries(dir));
  for (const auto& name : names) {
    if (name.rfind(kTmpPrefix, 0) == 0) {
      out.temps.push_back(name);
      continue;
    }
    auto ip = net::IpAddr::parse(name);
    if (!ip) continue;
    SL_ASSIGN_OR_RETURN(auto r, readReservation(dir, *ip));
    if (r) out.reservations.push_back(std::move(*r));  // else released meanwhile (only without the lock)
  }
  return out;
}

// The index: a symlink ".att.<key>.<address>" -> "<address>" beside each reservation, key =
// 32 hex digits of SHA-256(containerID NUL ifname). An attachment's addresses are then found
// from the directory's names alone, without reading every reservation (ADD stays as fast with
// 100 pods on the node as with one). An entry is created before its reservation, so none is
// ever missing; one whose reservation is gone or another's (a crash in between) is stale and
// removed when seen.
std::string attachmentKey(const std::string& containerId, const std::string& ifname) {
  std::string k = containerId;
  k.push_back('\0');
  k += ifname;
  return sha256Hex(k).substr(0, 32);
}

std::string indexPath(const std::string& dir, const std::string& key, const net::IpAddr& ip) {
  return dir + "/" + kIndexPrefix + key + "." + ip.str();
}

// Entries for reservations that have none: made before the index existed, or by an older
// plugin (which ignores the entries and leaves the mark in place).
Status repairIndex(const std::string& dir, const DirScan& st) {
  for (const auto& r : st.reservations) {
    const std::string link = indexPath(dir, attachmentKey(r.containerId, r.ifname), r.ip);
    if (::symlink(r.ip.str().c_str(), link.c_str()) != 0 && errno != EEXIST) return ioError(errno, "index " + link);
  }
  return okStatus();
}

// Under the lock: the addresses the attachment holds, through its index entries (the index is
// built first if the directory has none). Stale entries go; temporaries too when `sweep`.
Result<std::vector<net::IpAddr>> attachmentAddresses(const std::string& dir, const DirLock& lock,
                                                     const std::string& containerId,
                                                     const std::string& ifname, bool sweep) {
  if (!lock.indexed()) {
    SL_ASSIGN_OR_RETURN(DirScan st, scan(dir));
    SL_TRY(repairIndex(dir, st));
    lock.markIndexed();
  }
  const std::string prefix = kIndexPrefix + attachmentKey(containerId, ifname) + ".";
  std::vector<net::IpAddr> held;
  SL_ASSIGN_OR_RETURN(auto names, entries(dir));
  for (const auto& name : names) {
    const std::string path = dir + "/" + name;
    if (name.rfind(kTmpPrefix, 0) == 0) {
      if (sweep) ::unlink(path.c_str());
      continue;
    }
    if (name.rfind(prefix, 0) != 0) continue;
    auto ip = net::IpAddr::parse(name.substr(prefix.size()));
    std::optional<Reservation> r;
    if (ip) {
      SL_ASSIGN_OR_RETURN(r, readReservation(dir, *ip));
    }
    if (r && r->containerId == containerId && r->ifname == ifname) held.push_back(*ip);
    else ::unlink(path.c_str());
  }
  return held;
}

bool excluded(const IpRange& r, const net::IpAddr& ip) {
  if (ip == r.subnet.addr()) return true;
  if (ip.isV4() && ip == r.subnet.broadcast()) return true;
  return r.gateway && *r.gateway == ip;
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
  // Only a process killed while holding the lock can have left temporaries behind: every
  // writer sweeps them, so a DEL or GC after a killed ADD leaves the directory clean.
  SL_ASSIGN_OR_RETURN(auto held, attachmentAddresses(dir_, lock, containerId, ifname, true));
  const std::string key = attachmentKey(containerId, ifname);

  std::vector<Allocation> out;
  std::vector<std::string> created;  // reservations and index entries, released again if a
                                     // later range set is exhausted
  auto rollback = [&] {
    for (const auto& p : created) ::unlink(p.c_str());
  };
  const std::string content = containerId + "\n" + ifname + "\n";

  for (size_t si = 0; si < ranges_.size(); ++si) {
    const RangeSet& set = ranges_[si];
    bool done = false;
    for (const auto& ip : held) {
      for (const auto& range : set) {
        if (range.contains(ip)) {
          out.push_back({ip, range, static_cast<int>(si), true});
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
        const std::string path = dir_ + "/" + cur.str();
        const std::string link = indexPath(dir_, key, cur);
        int err = 0;
        if (::symlink(cur.str().c_str(), link.c_str()) != 0 && errno != EEXIST) err = errno;
        else if (::link(tmp.c_str(), path.c_str()) == 0) {
          created.push_back(path);
          created.push_back(link);
          got = Allocation{cur, range, static_cast<int>(si), false};
          break;
        } else {
          err = errno;
          ::unlink(link.c_str());
        }
        if (err != EEXIST) {
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
  return attachmentAddresses(dir_, lock, containerId, ifname, false);
}

Result<std::vector<net::IpAddr>> LocalIpam::release(const std::string& containerId,
                                                    const std::string& ifname) {
  std::vector<net::IpAddr> out;
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return out;  // nothing ever reserved
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(auto held, attachmentAddresses(dir_, lock, containerId, ifname, true));
  const std::string key = attachmentKey(containerId, ifname);
  for (const auto& ip : held) {
    const std::string path = dir_ + "/" + ip.str();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError(errno, "unlink " + path);
    ::unlink(indexPath(dir_, key, ip).c_str());
    out.push_back(ip);
  }
  return out;
}

Result<std::vector<Reservation>> LocalIpam::list() const {
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return std::vector<Reservation>();
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir_));
  SL_TRY(repairIndex(dir_, st));  // what GC then releases is found through the index
  return st.reservations;
}

}  // namespace sluice::cni
