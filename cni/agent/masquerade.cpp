// SPDX-License-Identifier: Apache-2.0
#include "masquerade.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "sluice/fd.h"

extern char** environ;

namespace sluice::agent {
namespace {

Result<std::pair<int, std::string>> runWithInput(const std::vector<std::string>& argv,
                                                 const std::string& input) {
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
  if (rc != 0)
    return Error::fromErrno(rc, "run " + argv[0],
                            rc == ENOENT ? CniCode::kPluginNotAvailable : CniCode::kInternal);
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

std::string nftError(const std::pair<int, std::string>& r) {
  std::string out = r.second;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return "nft exited with " + std::to_string(r.first) + (out.empty() ? "" : ": " + out);
}

// runWithInput, retried from /usr/sbin and /sbin: service accounts and minimal images often
// lack them in PATH.
Result<std::pair<int, std::string>> runTool(const std::vector<std::string>& argv,
                                            const std::string& input) {
  auto r = runWithInput(argv, input);
  if (argv.empty() || argv[0].find('/') != std::string::npos) return r;
  for (const char* dir : {"/usr/sbin/", "/sbin/"}) {
    if (r.ok() || r.error().code() != CniCode::kPluginNotAvailable) break;
    std::vector<std::string> alt = argv;
    alt[0] = dir + argv[0];
    r = runWithInput(alt, input);
  }
  return r;
}

// The IPv4 node addresses, sorted and unique, as nft prints them.
std::vector<std::string> nodeAddresses(const std::vector<net::IpAddr>& nodeIps) {
  std::vector<std::string> nodes;
  for (const auto& ip : nodeIps)
    if (ip.isV4()) nodes.push_back(ip.str());
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

// Whether table ip sluice still holds exactly one masquerade rule and the wanted node set.
// Read-only (`nft -j list`): no transaction, so other ruleset users (iptables-nft, kube-proxy)
// never see the generation change a rewrite would cause.
bool masqueradeIntact(const std::vector<std::string>& nodes) {
  auto r = runTool({"nft", "-j", "list", "table", "ip", "sluice"}, "");
  if (!r.ok() || r->first != 0) return false;
  auto doc = nlohmann::json::parse(r->second, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) return false;
  int rules = 0;
  std::vector<std::string> have;
  for (const auto& o : doc["nftables"]) {
    if (o.contains("set") && o["set"].value("name", "") == "nodes" && o["set"].contains("elem"))
      for (const auto& e : o["set"]["elem"])
        if (e.is_string()) have.push_back(e.get<std::string>());
    if (o.contains("rule") && o["rule"].contains("expr"))
      for (const auto& e : o["rule"]["expr"])
        if (e.is_object() && e.contains("masquerade")) ++rules;
  }
  std::sort(have.begin(), have.end());
  return rules == 1 && have == nodes;
}

}  // namespace

std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev,
                              const std::vector<net::IpAddr>& nodeIps) {
  const std::string c = clusterCidr.network().str();
  const std::vector<std::string> nodes = nodeAddresses(nodeIps);
  std::string elements;
  for (const auto& n : nodes) elements += (elements.empty() ? "" : ", ") + n;
  // "table; delete table; table {...}" in one file is one transaction: the old rules are
  // replaced without a moment with no masquerade, and never duplicated.
  std::string s =
      "table ip sluice\n"
      "delete table ip sluice\n"
      "table ip sluice {\n"
      "  set nodes {\n"
      "    type ipv4_addr\n";
  if (!elements.empty()) s += "    elements = { " + elements + " }\n";
  s += "  }\n"
       "  chain postrouting {\n"
       "    type nat hook postrouting priority srcnat; policy accept;\n"
       "    ip saddr " +
       c + " ip daddr != " + c + " ip daddr != @nodes" +
       (overlayDev.empty() ? std::string() : " oifname != \"" + overlayDev + "\"") +
       " masquerade\n"
       "  }\n"
       "}\n";
  return s;
}

Status applyMasquerade(const net::Cidr& clusterCidr, const std::string& overlayDev,
                       const std::vector<net::IpAddr>& nodeIps) {
  if (!clusterCidr.addr().isV4()) return okStatus();
  auto r = runTool({"nft", "-f", "-"}, masqueradeRuleset(clusterCidr, overlayDev, nodeIps));
  if (!r.ok()) return std::move(r).error().context("masquerade");
  if (r->first != 0) return Error(CniCode::kInternal, "masquerade: " + nftError(*r));
  return okStatus();
}

Status removeMasquerade() {
  // Declaring the table first makes the delete succeed whether or not it exists.
  auto r = runTool({"nft", "-f", "-"}, "table ip sluice\ndelete table ip sluice\n");
  if (!r.ok()) {
    if (r.error().code() == CniCode::kPluginNotAvailable) return okStatus();  // no nft: no table
    return std::move(r).error().context("remove masquerade");
  }
  if (r->first != 0) return Error(CniCode::kInternal, "remove masquerade: " + nftError(*r));
  return okStatus();
}

Status Masquerade::ensure(const net::Cidr& clusterCidr, const std::string& overlayDev,
                          std::vector<net::IpAddr> nodeIps) {
  const std::string want = masqueradeRuleset(clusterCidr, overlayDev, nodeIps);
  const auto now = std::chrono::steady_clock::now();
  if (want == applied_) {
    if (now - checkedAt_ < refresh_) return okStatus();
    checkedAt_ = now;
    if (masqueradeIntact(nodeAddresses(nodeIps))) return okStatus();
    spdlog::warn("nft table ip {} was changed or removed under us: putting it back", kNftTable);
  }
  auto st = applyMasquerade(clusterCidr, overlayDev, nodeIps);
  if (!st.ok()) {
    if (st.error().code() != CniCode::kPluginNotAvailable) return st;
    if (!warnedMissingNft_)
      spdlog::warn("no masquerade for traffic leaving {}: {}", clusterCidr.str(),
                   st.error().describe());
    warnedMissingNft_ = true;
    return okStatus();
  }
  if (want != applied_)
    spdlog::info(
        "masquerade for {} leaving the cluster installed (nft table ip {}, {} node addresses "
        "exempt)",
        clusterCidr.str(), kNftTable, nodeIps.size());
  applied_ = want;
  checkedAt_ = now;
  return okStatus();
}

}  // namespace sluice::agent
