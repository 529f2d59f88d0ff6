// SPDX-License-Identifier: Apache-2.0
#include "masquerade.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kernel_routes.h"
#include "nl.h"
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

// nft's table family for a CIDR's addresses.
const char* nftFamily(int family) { return family == 6 ? "ip6" : "ip"; }

// The node addresses of one family (4 or 6), sorted and unique, as nft prints them.
std::vector<std::string> nodeAddresses(const std::vector<net::IpAddr>& nodeIps, int family) {
  std::vector<std::string> nodes;
  for (const auto& ip : nodeIps)
    if (ip.family() == family) nodes.push_back(ip.str());
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  return nodes;
}

// Whether table <family> sluice still holds exactly one masquerade rule, `marks` mark rules and
// the wanted node set. Read-only (`nft -j list`): no transaction, so other ruleset users
// (iptables-nft, kube-proxy) never see the generation change a rewrite would cause.
bool masqueradeIntact(int family, const std::vector<std::string>& nodes, int marks) {
  auto r = runTool({"nft", "-j", "list", "table", nftFamily(family), "sluice"}, "");
  if (!r.ok() || r->first != 0) return false;
  auto doc = nlohmann::json::parse(r->second, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) return false;
  int rules = 0, marked = 0;
  std::vector<std::string> have;
  for (const auto& o : doc["nftables"]) {
    if (o.contains("set") && o["set"].value("name", "") == "nodes" && o["set"].contains("elem"))
      for (const auto& e : o["set"]["elem"])
        if (e.is_string()) have.push_back(e.get<std::string>());
    if (o.contains("rule") && o["rule"].contains("expr"))
      for (const auto& e : o["rule"]["expr"])
        if (e.is_object()) {
          rules += e.contains("masquerade");
          marked += e.contains("mangle");
        }
  }
  std::sort(have.begin(), have.end());
  return rules == 1 && marked == marks && have == nodes;
}

}  // namespace

Result<uint32_t> nftRulesetGeneration() {
  SL_ASSIGN_OR_RETURN(nl::Sock sock, nl::connect(NETLINK_NETFILTER));
  std::unique_ptr<nl_msg, decltype(&nlmsg_free)> msg(
      nlmsg_alloc_simple((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, NLM_F_REQUEST), nlmsg_free);
  if (!msg) return Error(CniCode::kNetlink, "allocate nfnetlink message");
  nfgenmsg hdr{};
  hdr.nfgen_family = AF_UNSPEC;
  hdr.version = NFNETLINK_V0;
  if (int err = nlmsg_append(msg.get(), &hdr, sizeof(hdr), NLMSG_ALIGNTO); err < 0)
    return nl::error(err, "build NFT_MSG_GETGEN");
  if (int err = nl_send_auto(sock.get(), msg.get()); err < 0) return nl::error(err, "send NFT_MSG_GETGEN");
  struct Reply {
    std::optional<uint32_t> gen;
  } reply;
  auto onValid = [](nl_msg* m, void* arg) -> int {
    nlmsghdr* h = nlmsg_hdr(m);
    if ((h->nlmsg_type & 0xff) != NFT_MSG_NEWGEN) return NL_SKIP;
    nlattr* tb[NFTA_GEN_MAX + 1];
    if (nlmsg_parse(h, sizeof(nfgenmsg), tb, NFTA_GEN_MAX, nullptr) < 0 || !tb[NFTA_GEN_ID] ||
        nla_len(tb[NFTA_GEN_ID]) != sizeof(uint32_t))
      return NL_SKIP;
    static_cast<Reply*>(arg)->gen = ntohl(nla_get_u32(tb[NFTA_GEN_ID]));
    return NL_STOP;
  };
  if (int err = nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, onValid, &reply); err < 0)
    return nl::error(err, "nfnetlink callback");
  if (int err = nl_recvmsgs_default(sock.get()); err < 0) return nl::error(err, "NFT_MSG_GETGEN");
  if (!reply.gen) return Error(CniCode::kNetlink, "NFT_MSG_GETGEN: no generation in the answer");
  return *reply.gen;
}

std::string masqueradeRuleset(const net::Cidr& clusterCidr, const std::string& overlayDev,
                              const std::vector<net::IpAddr>& nodeIps) {
  const int family = clusterCidr.addr().family();
  const std::string table = std::string("table ") + nftFamily(family) + " sluice";
  const std::string addr = nftFamily(family);  // the address match keyword: ip / ip6
  const std::string c = clusterCidr.network().str();
  const std::vector<std::string> nodes = nodeAddresses(nodeIps, family);
  std::string elements;
  for (const auto& n : nodes) elements += (elements.empty() ? "" : ", ") + n;
  // "table; delete table; table {...}" in one file is one transaction: the old rules are
  // replaced without a moment with no masquerade, and never duplicated.
  std::string s = table + "\ndelete " + table + "\n" + table +
                  " {\n"
                  "  set nodes {\n"
                  "    type " +
                  (family == 6 ? "ipv6_addr" : "ipv4_addr") + "\n";
  if (!elements.empty()) s += "    elements = { " + elements + " }\n";
  s += "  }\n"
       "  chain postrouting {\n"
       "    type nat hook postrouting priority srcnat; policy accept;\n"
       "    " + addr + " saddr " +
       c + " " + addr + " daddr != " + c + " " + addr + " daddr != @nodes" +
       (overlayDev.empty() ? std::string() : " oifname != \"" + overlayDev + "\"") +
       " masquerade\n"
       "  }\n";
  if (family == 4 && !overlayDev.empty()) {
    // vxlan mode: what the stack forwards from pods to a node takes the pod-source rule's route
    // through the overlay (kernel_routes.h), but for pods' replies in flows this node DNATed
    // (a node's client at a NodePort or hostPort came in on the underlay: back out there). A
    // reply to what the overlay brought in by redirect is untracked here: it goes back that way.
    s += "  chain podtonode {\n"
         "    type filter hook prerouting priority mangle; policy accept;\n"
         "    ct status dnat return\n"
         "    ip saddr " + c + " ip daddr @nodes meta mark set mark or " +
         fmt::format("{:#010x}", kPodToNodeMark) + "\n"
         "  }\n";
  }
  s += "}\n";
  return s;
}

std::string masqueradeScript(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                             const std::vector<net::IpAddr>& nodeIps) {
  std::string s;
  for (const auto& c : clusterCidrs) s += masqueradeRuleset(c, overlayDev, nodeIps);
  return s;
}

Status applyMasquerade(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                       const std::vector<net::IpAddr>& nodeIps) {
  auto r = runTool({"nft", "-f", "-"}, masqueradeScript(clusterCidrs, overlayDev, nodeIps));
  if (!r.ok()) return std::move(r).error().context("masquerade");
  if (r->first != 0) return Error(CniCode::kInternal, "masquerade: " + nftError(*r));
  return okStatus();
}

Status removeMasquerade() {
  // Declaring a table first makes its delete succeed whether or not it exists.
  auto r = runTool({"nft", "-f", "-"},
                   "table ip sluice\ndelete table ip sluice\ntable ip6 sluice\ndelete table ip6 sluice\n");
  if (!r.ok()) {
    if (r.error().code() == CniCode::kPluginNotAvailable) return okStatus();  // no nft: no table
    return std::move(r).error().context("remove masquerade");
  }
  if (r->first != 0) return Error(CniCode::kInternal, "remove masquerade: " + nftError(*r));
  return okStatus();
}

Status Masquerade::ensure(const std::vector<net::Cidr>& clusterCidrs, const std::string& overlayDev,
                          std::vector<net::IpAddr> nodeIps) {
  const std::string want = masqueradeScript(clusterCidrs, overlayDev, nodeIps);
  const auto now = std::chrono::steady_clock::now();
  if (want == applied_) {
    if (now - checkedAt_ < refresh_) return okStatus();
    checkedAt_ = now;
    // Read before the listing: a change made while nft lists is a new generation next time.
    auto generation = nftRulesetGeneration();
    if (generation.ok() && intactAt_ == *generation) return okStatus();  // nothing changed anywhere
    const bool intact = std::all_of(clusterCidrs.begin(), clusterCidrs.end(), [&](const net::Cidr& c) {
      const int family = c.addr().family();
      return masqueradeIntact(family, nodeAddresses(nodeIps, family), family == 4 && !overlayDev.empty() ? 1 : 0);
    });
    if (intact) {
      intactAt_ = generation.ok() ? std::optional<uint32_t>(*generation) : std::nullopt;
      return okStatus();
    }
    spdlog::warn("an nft table {} was changed or removed under us: putting it back", kNftTable);
  }
  intactAt_.reset();  // the next check lists what was applied
  auto st = applyMasquerade(clusterCidrs, overlayDev, nodeIps);
  if (!st.ok()) {
    if (st.error().code() != CniCode::kPluginNotAvailable) return st;
    if (!warnedMissingNft_)
      spdlog::warn("no masquerade for traffic leaving the cluster: {}", st.error().describe());
    warnedMissingNft_ = true;
    return okStatus();
  }
  if (want != applied_) {
    std::string cidrs;
    for (const auto& c : clusterCidrs) cidrs += (cidrs.empty() ? "" : ", ") + c.str();
    spdlog::info("masquerade for {} leaving the cluster installed (nft tables {}, {} node addresses exempt)",
                 cidrs, kNftTable, nodeIps.size());
  }
  applied_ = want;
  checkedAt_ = now;
  return okStatus();
}

}  // namespace sluice::agent
