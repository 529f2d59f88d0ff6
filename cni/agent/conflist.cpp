// SPDX-License-Identifier: Apache-2.0
#include "conflist.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "sluice/cni/exec.h"
#include "sluice/fd.h"
#include "sluice/file.h"

namespace sluice::agent {
namespace {

Status writeAll(int fd, const char* data, size_t len, const std::string& what) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno(errno, "write " + what, CniCode::kIoFailure);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return okStatus();
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

Status writeDurably(const std::string& path, const std::string& content, mode_t mode) {
  const std::string name = std::filesystem::path(path).filename().string();
  return writeFileAtomic(path, "." + name + ".tmp-", content, mode, Durability::kDurable);
}

nlohmann::ordered_json chainedCapabilities(const std::string& type) {
  if (type == "portmap") return {{"portMappings", true}};
  if (type == "bandwidth") return {{"bandwidth", true}};
  return nlohmann::ordered_json::object();
}

std::string renderConflist(const ConflistParams& p) {
  using nlohmann::ordered_json;
  ordered_json range = ordered_json::array({ordered_json::array({{{"subnet", p.podCidr.network().str()}}})});
  if (p.podCidr6) range.push_back(ordered_json::array({{{"subnet", p.podCidr6->network().str()}}}));
  ordered_json plugin = {{"type", "sluice"},
                         {"mtu", p.mtu},
                         {"bpfRoot", p.bpfRoot},
                         {"stateDir", p.stateDir},
                         {"logFile", p.stateDir + "/cni.log"},
                         {"logLevel", p.logLevel},
                         {"ipam", {{"type", "sluice-ipam"}, {"ranges", range}}}};
  // With bandwidth chained, sluice takes the pod's limits too: a shaped pod's veth is set up
  // so that the qdiscs bandwidth installs see its traffic (docs/internals.md, chaining).
  if (std::find(p.chain.begin(), p.chain.end(), "bandwidth") != p.chain.end())
    plugin["capabilities"] = {{"bandwidth", true}};
  ordered_json plugins = ordered_json::array({plugin});
  for (const auto& type : p.chain) {
    ordered_json entry = {{"type", type}};
    if (auto caps = chainedCapabilities(type); !caps.empty()) entry["capabilities"] = caps;
    plugins.push_back(entry);
  }
  ordered_json doc = {{"cniVersion", "1.0.0"}};
  // CNI 1.1 (GC, STATUS) for runtimes that read cniVersions and pick the newest they speak;
  // older ones keep to cniVersion. A runtime picks one version for the whole list without
  // asking the plugins, so a list with chained plugins offers 1.1.0 only when the agent found
  // that each speaks it (Debian's reference plugins stop at 1.0.0).
  if (p.chain.empty() || p.chainSpeaks11) doc["cniVersions"] = ordered_json::array({"1.0.0", "1.1.0"});
  doc["name"] = "sluice";
  doc["plugins"] = plugins;
  return doc.dump(2) + "\n";
}

const std::vector<std::string>& ChainVersions::versionsOf(const std::string& path,
                                                          const std::string& binDir) {
  static const std::vector<std::string> kNone;
  const FileSig sig = fileSig(path);
  if (!sig.exists || !sig.regular) {
    seen_.erase(path);
    return kNone;
  }
  auto it = seen_.find(path);
  if (it != seen_.end() && it->second.sig == sig) return it->second.versions;
  Seen seen;
  seen.sig = sig;
  // Asked with 1.0.0, the version every conflist of ours carries, which any plugin we chain speaks.
  auto versions = cni::pluginVersions(path, binDir, "1.0.0", timeoutMs_);
  if (versions.ok()) {
    seen.versions = *versions;
    spdlog::info("chained plugin {} speaks CNI {}", path, fmt::join(seen.versions, " "));
  } else {
    spdlog::warn("chained plugin {}: VERSION failed ({}): the conflist offers it CNI 1.0.0 only", path,
                 versions.error().describe());
  }
  return seen_.insert_or_assign(path, std::move(seen)).first->second.versions;
}

bool ChainVersions::allSpeak(const std::vector<std::string>& chain, const std::string& binDir,
                             const std::string& version) {
  bool all = true;
  for (const auto& type : chain) {
    const auto& versions = versionsOf(binDir + "/" + type, binDir);
    all = all && std::find(versions.begin(), versions.end(), version) != versions.end();
  }
  return all;
}

Result<bool> writeConflist(const std::string& dir, const ConflistParams& p) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error::fromErrno(ec.value(), "create " + dir, CniCode::kIoFailure);
  const std::string path = dir + "/" + kConflistName;
  const std::string text = renderConflist(p);
  struct stat st {};
  if (auto cur = readFile(path); cur && *cur == text && ::stat(path.c_str(), &st) == 0 &&
                                 (st.st_mode & 07777) == 0644)
    return false;
  SL_TRY(writeDurably(path, text, 0644));
  std::string chain;
  for (const auto& c : p.chain) chain += ", " + c;
  spdlog::info("wrote {} (pod CIDR {}{}, mtu {}, plugins sluice{})", path, p.podCidr.network().str(),
               p.podCidr6 ? " and " + p.podCidr6->network().str() : std::string(), p.mtu, chain);
  return true;
}

Status installCniBinary(const std::string& src, const std::string& binDir) {
  std::error_code ec;
  std::filesystem::create_directories(binDir, ec);
  if (ec) return Error::fromErrno(ec.value(), "create " + binDir, CniCode::kIoFailure);
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return Error::fromErrno(errno, "open " + src, CniCode::kIoFailure);
  const std::string tmp = binDir + "/sluice.tmp";
  const std::string dst = binDir + "/sluice";
  // A fresh inode, not an in-place write: a running plugin keeps executing the old one.
  ::unlink(tmp.c_str());
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
  if (!out.valid()) return Error::fromErrno(errno, "create " + tmp, CniCode::kIoFailure);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Error::fromErrno(err, "read " + src, CniCode::kIoFailure);
    }
    if (n == 0) break;
    if (auto st = writeAll(out.get(), buf, static_cast<size_t>(n), tmp); !st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  if (::fchmod(out.get(), 0755) != 0 || ::fsync(out.get()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno(err, "finish " + tmp, CniCode::kIoFailure);
  }
  out.reset();
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno(err, "rename " + tmp + " to " + dst, CniCode::kIoFailure);
  }
  spdlog::info("installed {} as {}", src, dst);
  return okStatus();
}

}  // namespace sluice::agent
