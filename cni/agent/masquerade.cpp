// SPDX-License-Identifier: Apache-2.0
#include "masquerade.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <spdlog/spdlog.h>

#include "sluice/fd.h"

extern char** environ;

namespace sluice::agent {
namespace {

// Runs argv with `input` on stdin; returns exit status and combined output.
Result<std::pair<int, std::string>> runWithInput(const std::vector<std::string>& argv, const std::string& input) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Error::fromErrno(errno, "pipe");
  Fd inR(in[0]), inW(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::fromErrno(errno, "pipe");
  Fd outR(out[0]), outW(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, inR.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, outW.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, outW.get(), 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::fromErrno(rc, "run " + argv[0], rc == ENOENT ? CniCode::kPluginNotAvailable : CniCode::kInternal);
  inR.reset();
  outW.reset();
  size_t off = 0;
  while (off < input.size()) {
    ssize_t n = ::write(inW.get(), input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  inW.reset();
  std::string output;
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::read(outR.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf.data(), static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), output);
}

}  // namespace

std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev) {
  const std::string c = clusterCidr.network().str();
  // "table; delete table; table {...}" in one file is one transaction: the old rules are
  // replaced without a moment with no masquerade.
  return "table ip sluice\n"
         "delete table ip sluice\n"
         "table ip sluice {\n"
         "  chain postrouting {\n"
         "    type nat hook postrouting priority srcnat; policy accept;\n"
         "    ip saddr " + c + " ip daddr != " + c +
         (overlayDev.empty() ? std::string() : " oifname != \"" + overlayDev + "\"") + " masquerade\n"
         "  }\n"
         "}\n";
}

Status applyMasquerade(const net::Cidr& clusterCidr, const std::string& overlayDev) {
  if (!clusterCidr.addr().isV4()) return okStatus();
  auto r = runWithInput({"nft", "-f", "-"}, masqueradeRuleset(clusterCidr, overlayDev));
  // Service accounts and minimal images often lack /usr/sbin in PATH.
  for (const char* alt : {"/usr/sbin/nft", "/sbin/nft"}) {
    if (r.ok() || r.error().code() != CniCode::kPluginNotAvailable) break;
    r = runWithInput({alt, "-f", "-"}, masqueradeRuleset(clusterCidr, overlayDev));
  }
  if (!r.ok()) return std::move(r).error().context("masquerade");
  if (r->first != 0)
    return Error(CniCode::kInternal, "nft exited with " + std::to_string(r->first) + ": " + r->second);
  spdlog::info("masquerade for {} leaving the cluster installed (nft table ip sluice)", clusterCidr.str());
  return okStatus();
}

}  // namespace sluice::agent
