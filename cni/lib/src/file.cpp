// SPDX-License-Identifier: Apache-2.0
#include "sluice/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "sluice/fd.h"

namespace sluice {
namespace {

Error ioError(int err, const std::string& what) {
  return Error::fromErrno(err, what, CniCode::kIoFailure);
}

// fsync of a directory (after a rename in it); best effort.
void syncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) ::fsync(fd.get());
}

}  // namespace

Result<std::optional<std::string>> readFileIfExists(const std::string& path, size_t maxBytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<std::string>();
    return ioError(errno, "open " + path);
  }
  std::string out;
  char buf[4096];
  while (out.size() < maxBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ioError(errno, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  if (out.size() > maxBytes) out.resize(maxBytes);
  return std::optional<std::string>(std::move(out));
}

Result<std::string> writeTempFile(const std::string& dir, const std::string& prefix,
                                  std::string_view content, mode_t mode, Durability d) {
  static std::atomic<uint64_t> counter{0};
  const std::string path = dir + "/" + prefix + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return ioError(errno, "create " + path);
  auto failed = [&](int err, const std::string& what) {
    ::unlink(path.c_str());
    return ioError(err, what + " " + path);
  };
  if (::fchmod(fd.get(), mode) != 0) return failed(errno, "chmod");
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed(errno, "write");
    }
    off += static_cast<size_t>(n);
  }
  if (d == Durability::kDurable && ::fsync(fd.get()) != 0) return failed(errno, "fsync");
  return path;
}

Status writeFileAtomic(const std::string& path, const std::string& tmpPrefix,
                       std::string_view content, mode_t mode, Durability d) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  SL_ASSIGN_OR_RETURN(std::string tmp, writeTempFile(dir, tmpPrefix, content, mode, d));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ioError(err, "rename to " + path);
  }
  if (d == Durability::kDurable) syncDir(dir);
  return okStatus();
}


FileSig fileSig(const std::string& path) {
  struct stat st {};
  FileSig s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.regular = S_ISREG(st.st_mode);
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  return s;
}

}  // namespace sluice
