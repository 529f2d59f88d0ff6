// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
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
// On an index entry that is the attachment's reservation file itself: the addresses it lists.
constexpr const char* kAddressesXattr = "user.sluice.addresses";
// In the lock file once every reservation of the directory is in the index.
constexpr std::string_view kIndexedMark = "sluice-ipam index 2\n";

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

// Every entry of the directory: reservations (named by an address), index entries, and
// leftovers of a process killed mid-write (temporaries, an index entry's replacement).
struct DirScan {
  std::vector<Reservation> reservations;
  std::vector<std::string> index;
  std::vector<std::string> leftovers;
};

Result<DirScan> scan(const std::string& dir) {
  DirScan out;
  SL_ASSIGN_OR_RETURN(auto names, entries(dir));
  for (const auto& name : names) {
    if (name.rfind(kTmpPrefix, 0) == 0 || (name.rfind(kIndexPrefix, 0) == 0 && name.back() == '~')) {
      out.leftovers.push_back(name);
      continue;
    }
    if (name.rfind(kIndexPrefix, 0) == 0) {
      out.index.push_back(name);
      continue;
    }
    auto ip = net::IpAddr::parse(name);
    if (!ip) continue;
    SL_ASSIGN_OR_RETURN(auto r, readReservation(dir, *ip));
    if (r) out.reservations.push_back(std::move(*r));  // else released meanwhile (only without the lock)
  }
  return out;
}

// The index: one entry per attachment, ".att.<key>", key = 32 hex digits of
// SHA-256(containerID NUL ifname), listing its addresses "<address>[,<address>...]": ADD, DEL
// and CHECK find an attachment's addresses with one system call instead of reading every
// reservation (ADD costs the same with 100 pods on the node as with one). The entry is written
// by allocate() as one more name of the attachment's reservation file, the list in the extended
// attribute user.sluice.addresses: one file (inode) per attachment, however many addresses and
// names it has; creating and freeing files is what ADD and DEL pay most for on the filesystem.
// Where the filesystem keeps no user extended attributes, and when listing repairs an entry,
// the entry is a symlink whose target is the list (the form older plugins wrote; both are read).
// The entry is written before the reservations it lists, so it never misses one; an address it
// lists whose reservation is gone or another's (a crash in between) is simply not the
// attachment's. A directory whose lock file lacks the mark (an older plugin's) is indexed on
// first use; listing (GC) repairs what an older plugin added since.
std::string attachmentKey(const std::string& containerId, const std::string& ifname) {
  std::string k = containerId;
  k.push_back('\0');
  k += ifname;
  return sha256Hex(k).substr(0, 32);
}

std::string indexPath(const std::string& dir, const std::string& key) { return dir + "/" + kIndexPrefix + key; }

std::string addressList(const std::vector<net::IpAddr>& ips) {
  std::string list;
  for (const auto& ip : ips) list += (list.empty() ? "" : ",") + ip.str();
  return list;
}

std::vector<net::IpAddr> readIndex(const std::string& dir, const std::string& key) {
  char buf[4096];
  const std::string path = indexPath(dir, key);
  ssize_t n = ::lgetxattr(path.c_str(), kAddressesXattr, buf, sizeof(buf));
  if (n < 0 && errno != ENOENT) n = ::readlink(path.c_str(), buf, sizeof(buf));  // the symlink form
  std::vector<net::IpAddr> out;
  if (n <= 0) return out;
  std::string_view list(buf, static_cast<size_t>(n));
  while (!list.empty()) {
    const size_t comma = list.find(',');
    if (auto ip = net::IpAddr::parse(std::string(list.substr(0, comma)))) out.push_back(*ip);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

// Creates an index entry at `path` with `make(at)` (0 or an errno): directly when there is none,
// else atomically through "<path>~" renamed over it.
template <typename Make>
Status placeEntry(const std::string& path, Make&& make) {
  int err = make(path);
  if (err == 0) return okStatus();
  if (err != EEXIST) return ioError(err, "index " + path);
  const std::string next = path + "~";
  ::unlink(next.c_str());
  if ((err = make(next)) != 0) return ioError(err, "index " + next);
  if (::rename(next.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(next.c_str());
    return ioError(err, "index " + path);
  }
  return okStatus();
}

// Replaces the attachment's entry with a symlink (none when `ips` is empty).
Status writeIndex(const std::string& dir, const std::string& key, const std::vector<net::IpAddr>& ips) {
  const std::string path = indexPath(dir, key);
  if (ips.empty()) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError(errno, "remove " + path);
    return okStatus();
  }
  const std::string target = addressList(ips);
  return placeEntry(path, [&](const std::string& at) { return ::symlink(target.c_str(), at.c_str()) == 0 ? 0 : errno; });
}

// The whole directory read: leftovers removed, and every attachment's entry made to list
// exactly its reservations (entries of attachments without any removed).
Result<DirScan> repairIndex(const std::string& dir) {
  SL_ASSIGN_OR_RETURN(DirScan st, scan(dir));
  for (const auto& l : st.leftovers) ::unlink((dir + "/" + l).c_str());
  std::map<std::string, std::vector<net::IpAddr>> byKey;
  for (const auto& r : st.reservations) byKey[attachmentKey(r.containerId, r.ifname)].push_back(r.ip);
  for (const auto& name : st.index) {
    const std::string key = name.substr(std::strlen(kIndexPrefix));
    if (!byKey.count(key)) ::unlink((dir + "/" + name).c_str());
  }
  for (auto& [key, ips] : byKey) {
    std::sort(ips.begin(), ips.end());
    auto listed = readIndex(dir, key);
    std::sort(listed.begin(), listed.end());
    if (listed != ips) SL_TRY(writeIndex(dir, key, ips));
  }
  return st;
}

// Under the lock: the addresses the attachment holds (the index built first if the directory
// has none).
Result<std::vector<net::IpAddr>> attachmentAddresses(const std::string& dir, const DirLock& lock,
                                                     const std::string& containerId,
                                                     const std::string& ifname) {
  if (!lock.indexed()) {
    SL_TRY(repairIndex(dir));
    lock.markIndexed();
  }
  std::vector<net::IpAddr> held;
  for (const auto& ip : readIndex(dir, attachmentKey(containerId, ifname))) {
    SL_ASSIGN_OR_RETURN(auto r, readReservation(dir, ip));
    if (r && r->containerId == containerId && r->ifname == ifname) held.push_back(ip);
  }
  return held;
}

// A reservation's content, ready to be linked under any number of addresses: an unnamed file
// (O_TMPFILE), so that a process killed meanwhile leaves nothing behind; a named temporary on
// filesystems without O_TMPFILE (removed when this goes; a killed process's, by the next
// listing).
class ReservationFile {
 public:
  static Result<ReservationFile> create(const std::string& dir, const std::string& content) {
    ReservationFile f;
    f.fd_ = Fd(::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644));
    if (!f.fd_.valid()) {
      if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return ioError(errno, "create a file in " + dir);
      SL_ASSIGN_OR_RETURN(f.tmp_, writeTempFile(dir, kTmpPrefix, content, 0644, Durability::kAtomic));
      return f;
    }
    if (::fchmod(f.fd_.get(), 0644) != 0) return ioError(errno, "chmod a file in " + dir);
    for (size_t off = 0; off < content.size();) {
      const ssize_t n = ::write(f.fd_.get(), content.data() + off, content.size() - off);
      if (n < 0 && errno != EINTR) return ioError(errno, "write a file in " + dir);
      if (n > 0) off += static_cast<size_t>(n);
    }
    return f;
  }
  ReservationFile(ReservationFile&&) = default;
  ReservationFile& operator=(ReservationFile&&) = delete;
  ~ReservationFile() {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }

  // Stores the index entry's address list on the file; false where the filesystem keeps no user
  // extended attributes.
  Result<bool> listAddresses(const std::string& list) const {
    const int r = tmp_.empty() ? ::fsetxattr(fd_.get(), kAddressesXattr, list.data(), list.size(), 0)
                               : ::setxattr(tmp_.c_str(), kAddressesXattr, list.data(), list.size(), 0);
    if (r == 0) return true;
    if (errno == EOPNOTSUPP) return false;
    return ioError(errno, "list the addresses on a reservation");
  }

  // link(2) under `path`: 0 or the errno.
  int linkTo(const std::string& path) const {
    const std::string from = tmp_.empty() ? "/proc/self/fd/" + std::to_string(fd_.get()) : tmp_;
    const int flags = tmp_.empty() ? AT_SYMLINK_FOLLOW : 0;
    return ::linkat(AT_FDCWD, from.c_str(), AT_FDCWD, path.c_str(), flags) == 0 ? 0 : errno;
  }

 private:
  ReservationFile() = default;
  Fd fd_;
  std::string tmp_;
};

// Makes the attachment's reservation file its index entry, listing `ips`; a symlink entry where
// the file cannot carry the list.
Status indexAttachment(const std::string& dir, const std::string& key, const ReservationFile& file,
                       const std::vector<net::IpAddr>& ips) {
  SL_ASSIGN_OR_RETURN(bool listed, file.listAddresses(addressList(ips)));
  if (!listed) return writeIndex(dir, key, ips);
  return placeEntry(indexPath(dir, key), [&](const std::string& at) { return file.linkTo(at); });
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
  SL_ASSIGN_OR_RETURN(auto held, attachmentAddresses(dir_, lock, containerId, ifname));

  // Under the lock the directory says which addresses are free: each range set's address is
  // chosen first (all or nothing: an exhausted set reserves nothing), then indexed, then reserved.
  std::vector<Allocation> out;
  std::vector<net::IpAddr> fresh;
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

    std::optional<Allocation> got;
    const net::IpAddr first = cur;
    const size_t firstRange = ri;
    for (;;) {
      const IpRange& range = set[ri];
      if (!excluded(range, cur)) {
        const std::string path = dir_ + "/" + cur.str();
        if (::faccessat(AT_FDCWD, path.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno != ENOENT) return ioError(errno, "look up " + path);
          got = Allocation{cur, range, static_cast<int>(si), false};
          break;
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
    if (!got) {
      std::string desc;
      for (const auto& range : set) {
        if (!desc.empty()) desc += ", ";
        desc += range.subnet.str() + " (" + range.start.str() + "-" + range.end.str() + ")";
      }
      return Error(CniCode::kIpamExhausted,
                   "ipam: no free address in range set " + std::to_string(si) + ": " + desc);
    }
    fresh.push_back(got->ip);
    out.push_back(*got);
  }
  if (fresh.empty()) return out;

  const std::string key = attachmentKey(containerId, ifname);
  std::vector<net::IpAddr> indexed = held;
  indexed.insert(indexed.end(), fresh.begin(), fresh.end());
  SL_ASSIGN_OR_RETURN(auto file, ReservationFile::create(dir_, containerId + "\n" + ifname + "\n"));
  SL_TRY(indexAttachment(dir_, key, file, indexed));
  auto undo = [&](size_t reserved) {
    for (size_t i = 0; i < reserved; ++i) ::unlink((dir_ + "/" + fresh[i].str()).c_str());
    (void)writeIndex(dir_, key, held);
  };
  for (size_t i = 0; i < fresh.size(); ++i) {
    const std::string path = dir_ + "/" + fresh[i].str();
    if (int err = file.linkTo(path)) {
      undo(i);
      return ioError(err, "reserve " + path);
    }
  }
  for (const auto& a : out)
    if (!a.reused) writeHint(dir_ + "/" + kLastReservedPrefix + std::to_string(a.rangeSet), a.ip.str() + "\n");
  return out;
}

Result<std::vector<net::IpAddr>> LocalIpam::find(const std::string& containerId,
                                                 const std::string& ifname) const {
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return std::vector<net::IpAddr>();
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  return attachmentAddresses(dir_, lock, containerId, ifname);
}

Result<std::vector<net::IpAddr>> LocalIpam::release(const std::string& containerId,
                                                    const std::string& ifname) {
  std::vector<net::IpAddr> out;
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return out;  // nothing ever reserved
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  SL_ASSIGN_OR_RETURN(auto held, attachmentAddresses(dir_, lock, containerId, ifname));
  for (const auto& ip : held) {
    const std::string path = dir_ + "/" + ip.str();
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError(errno, "unlink " + path);
    out.push_back(ip);
  }
  SL_TRY(writeIndex(dir_, attachmentKey(containerId, ifname), {}));
  return out;
}

Result<std::vector<Reservation>> LocalIpam::list() const {
  struct stat sb;
  if (::stat(dir_.c_str(), &sb) != 0 && errno == ENOENT) return std::vector<Reservation>();
  SL_ASSIGN_OR_RETURN(DirLock lock, DirLock::acquire(dir_));
  // Repaired on the way: what GC then releases is found through the index.
  SL_ASSIGN_OR_RETURN(DirScan st, repairIndex(dir_));
  lock.markIndexed();
  return st.reservations;
}

}  // namespace sluice::cni
