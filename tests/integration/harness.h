// SPDX-License-Identifier: Apache-2.0
// Integration-test harness: drives the real `sluice` binary the way a container runtime does
// (environment + stdin, result or error JSON on stdout) against a simulated node that lives
// entirely in network namespaces of our own:
//   - a "host" netns (the node) with only lo, carrying the node's address;
//   - one netns per pod;
//   - a private bpffs mounted under a temp dir (never under /sys) into which
//     `sluice-agent --load-only` pins the datapath;
//   - a temp stateDir (IPAM reservations, endpoint records, the plugin's log file).
// Everything is named with the per-run prefix `slt<pid>` and removed by Node::destroy(), which
// the fixtures call from TearDown so that a failed assertion still cleans up.
//
// The state inspection helpers read the kernel and the disk directly (ip -j, raw libbpf on the
// pins, the files under stateDir) rather than going through libsluice, so the tests are an
// independent oracle for the plugin.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/maps.h"

namespace sluice::itest {

using json = nlohmann::json;

// The network name the test configurations give the plugin.
constexpr const char* kNet = "sltnet";

// ---------------------------------------------------------------------------------------------
// Processes

struct ProcResult {
  int exitCode = -1;  // -1 when the process died from a signal or could not be started
  int termSignal = 0;
  bool timedOut = false;
  std::string out;
  std::string err;

  bool ok() const { return exitCode == 0; }
  // "exit=1 stdout=... stderr=..." for assertion messages.
  std::string describe() const;
};

struct ProcOptions {
  // The complete environment of the child ("K=V"), unless inheritEnv, in which case these
  // entries are added to (and override) the test's own environment.
  std::vector<std::string> env;
  bool inheritEnv = true;
  std::string input;  // written to the child's stdin, which is then closed
  // A guard against hangs only (the child is SIGKILLed and timedOut set); tests never assert
  // on how long something took.
  int hangGuardSeconds = 180;
  // > 0: the child is SIGKILLed this many microseconds after it started (a runtime or node
  // dying mid-verb); a child that finished earlier is left alone.
  int killAfterMicros = 0;
};

// Runs argv[0] (looked up in PATH) to completion, capturing stdout and stderr separately.
ProcResult runProcess(const std::vector<std::string>& argv, const ProcOptions& opts = {});

// Runs a command that must succeed (ADD_FAILURE otherwise) and returns its stdout.
std::string mustRun(const std::vector<std::string>& argv);

// ---------------------------------------------------------------------------------------------
// Paths and names

struct Binaries {
  std::string plugin;    // build/bin/sluice
  std::string agent;     // build/bin/sluice-agent
  std::string gocni;     // the go-cni driver (may be empty when not built)
  std::string refCniDir; // Debian's containernetworking-plugins (/usr/lib/cni)
  // Reads SLUICE_PLUGIN, SLUICE_AGENT, SLUICE_GOCNI, SLUICE_REF_CNI_DIR.
  static Binaries fromEnvironment();
};

// "sl" + the first 11 hex characters of SHA-256("<containerID>/<ifname>") (docs/internals.md).
std::string hostVethName(const std::string& containerId, const std::string& ifname);

// ---------------------------------------------------------------------------------------------
// CNI invocation

struct CniRequest {
  // Each optional is left out of the environment when nullopt (to test missing variables);
  // an engaged empty string sets the variable to "".
  std::optional<std::string> command;
  std::optional<std::string> containerId;
  std::optional<std::string> netns;
  std::optional<std::string> ifname = std::string("eth0");
  std::optional<std::string> args;
  std::optional<std::string> path;  // default (nullopt): <plugin dir>:<reference plugin dir>
  bool unsetPath = false;           // leave CNI_PATH out entirely
  std::string config;               // stdin
  std::vector<std::string> extraEnv;
  int killAfterMicros = 0;  // see ProcOptions
};

// A pod: its netns and the identity a runtime would use for it.
struct Pod {
  std::string netnsName;  // e.g. slt1234-p3
  std::string netnsPath;  // /run/netns/slt1234-p3
  std::string containerId;
  std::string ifname = "eth0";
  std::string args;       // CNI_ARGS used for it
  json result;            // the ADD result once added
  std::string ip;         // the pod's IPv4 address (no prefix) once added (IPv6-only pod: its IPv6)
  std::string ip6;        // the pod's IPv6 address (no prefix) once added, if it has one
};

// A parsed CNI error (stdout of a failed verb).
struct CniError {
  uint32_t code = 0;
  std::string msg;
  std::string details;
};

// ---------------------------------------------------------------------------------------------
// The simulated node

class Node {
 public:
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() { destroy(); }

  // Creates the host netns, the temp dirs, mounts bpffs and (if loadDatapath) runs
  // `sluice-agent --load-only`. Reports problems through gtest assertions; check
  // ::testing::Test::HasFatalFailure() afterwards.
  void create(const Binaries& bins, bool loadDatapath = true);
  // Deletes every netns, unmounts bpffs, removes temp dirs. Idempotent, never throws.
  void destroy();

  const Binaries& bins() const { return bins_; }
  const std::string& prefix() const { return prefix_; }  // slt<pid>
  const std::string& hostNs() const { return hostNs_; }
  const std::string& bpfRoot() const { return bpfRoot_; }
  const std::string& stateDir() const { return stateDir_; }
  const std::string& tmpDir() const { return tmpDir_; }
  std::string logFile() const { return stateDir_ + "/cni.log"; }
  std::string pluginDir() const;
  // The node's address, on lo in the host netns.
  static constexpr const char* kNodeIp = "198.18.0.1";
  static constexpr const char* kGateway = "169.254.1.1";

  // Runs the agent's --load-only against this node's bpffs (inside the host netns).
  ProcResult loadDatapath();
  // Puts dir first in the CNI_PATH of every later request that leaves its path to the default.
  void prependCniPath(const std::string& dir) { extraCniPath_ = dir; }

  // --- netns
  // Creates <prefix>-<suffix> with lo up; tracked for cleanup.
  std::string createNetns(const std::string& suffix);
  void deleteNetns(const std::string& name);
  Pod makePod(const std::string& suffix);
  // Runs argv inside netns `ns` (ip netns exec).
  ProcResult runIn(const std::string& ns, std::vector<std::string> argv, const ProcOptions& opts = {});

  // --- configuration (what the runtime hands the plugin on stdin for the sluice entry)
  json sluiceIpam(const std::string& subnet) const;
  // Dual stack: one range set per subnet (an IPv4 and an IPv6 one give a pod one of each).
  json sluiceIpam(const std::vector<std::string>& subnets) const;
  json pluginConf(const std::string& cniVersion, const std::string& netName, const json& ipam,
                  int mtu = 1450) const;
  // A conflist (runtime's view) whose only plugin is that entry.
  json conflist(const std::string& cniVersion, const std::string& netName, const json& ipam,
                int mtu = 1450) const;

  // --- invoking the plugin like a runtime does (in the host netns)
  ProcResult cni(const CniRequest& req);
  ProcResult add(const Pod& pod, const json& conf, const std::vector<std::string>& extraEnv = {});
  // CHECK and DEL carry prevResult (the runtime's cached ADD result) like libcni does.
  ProcResult check(const Pod& pod, const json& conf);
  ProcResult del(const Pod& pod, const json& conf, std::optional<std::string> netnsOverride = {});
  // ADD that must succeed; fills pod.result and pod.ip.
  void addOk(Pod& pod, const json& conf);
  // GC as a runtime sends it: the configuration at cniVersion 1.1.0 with the attachments it
  // still knows in cni.dev/valid-attachments, no container or interface.
  ProcResult gc(const json& conf, const std::vector<const Pod*>& valid,
                const std::vector<std::string>& extraEnv = {});
  // STATUS as a runtime sends it: the configuration as given, no container or interface.
  ProcResult status(const json& conf);

  // --- state inspection
  std::vector<json> links(const std::string& ns);
  std::set<std::string> linkNames(const std::string& ns);
  std::optional<json> link(const std::string& ns, const std::string& dev);
  std::vector<json> addrs(const std::string& ns, const std::string& dev);
  // Every route of every table, normalised to one line each.
  std::set<std::string> routeLines(const std::string& ns);
  std::vector<json> routes(const std::string& ns, const std::string& table = "main");
  std::vector<json> routes6(const std::string& ns);  // the main table's IPv6 routes
  std::vector<json> neighbours(const std::string& ns, const std::string& dev);
  // Reserved addresses of the built-in allocator: file names under stateDir/ipam/<net>/
  // other than `lock`, `last_reserved_ip.*` and the index entries `.att.*`, which
  // ipamIndexEntries lists (each reservation has one; nothingLeft checks both).
  std::vector<std::string> ipamReservations(const std::string& netName) const;
  std::vector<std::string> ipamIndexEntries(const std::string& netName) const;
  std::vector<std::string> endpointRecordFiles() const;
  std::optional<json> endpointRecord(const std::string& hostVeth) const;
  std::vector<std::pair<sl_endpoint_key, sl_endpoint>> endpointEntries() const;
  std::vector<std::pair<uint32_t, sl_iface>> ifaceEntries() const;
  // SL_CNT_* summed over all possible CPUs.
  sl_counter counter(int id) const;

  // Snapshot of the host netns right after create().
  const std::set<std::string>& baselineLinks() const { return baselineLinks_; }
  const std::set<std::string>& baselineRoutes() const { return baselineRoutes_; }
  // Everything ADD creates is gone: host links and routes equal the baseline, no IPAM
  // reservation for netName, no endpoint record, no sl_endpoints/sl_ifaces entry, and each
  // still-existing pod netns holds only lo. The message lists every leftover.
  ::testing::AssertionResult nothingLeft(const std::string& netName, const std::vector<Pod>& pods = {});

  // --- traffic
  // ping from pod netns `fromNs` to ip (IPv4 or IPv6); true when replies came back.
  bool ping(const std::string& fromNs, const std::string& ip, int count = 3);
  // TCP: a server in serverNs on serverIp:port reads everything the client in clientNs sends
  // and answers with its byte count and FNV-1a hash, which the client compares. serverIp may be
  // IPv4 or IPv6.
  ::testing::AssertionResult tcpExchange(const std::string& serverNs, const std::string& serverIp,
                                         const std::string& clientNs, size_t bytes, uint16_t port = 5201);

  // A new fd of the pinned object `name` under the bpf root (-1 on failure); the caller closes it.
  int openPinned(const std::string& name) const;

 private:
  // A verb of the whole network (GC, STATUS): no CNI_CONTAINERID, CNI_IFNAME or CNI_NETNS.
  ProcResult networkVerb(const std::string& command, const json& conf,
                         const std::vector<std::string>& extraEnv = {});

  Binaries bins_;
  std::string extraCniPath_;
  std::string prefix_;
  std::string hostNs_;
  std::string tmpDir_;
  std::string bpfRoot_;
  std::string stateDir_;
  bool bpfMounted_ = false;
  std::vector<std::string> netns_;  // created by us, deleted in destroy()
  std::set<std::string> baselineLinks_;
  std::set<std::string> baselineRoutes_;
  int podSeq_ = 0;
};

// Parses a CNI error from a verb's stdout; nullopt (and the reason in *why) if it is not one.
std::optional<CniError> parseCniError(const std::string& out, std::string* why = nullptr);

// A failed verb: non-zero exit, spec error JSON on stdout with that code (0 = any code).
::testing::AssertionResult isCniError(const ProcResult& r, uint32_t code = 0);

// A random-looking 64-hex-digit container ID, unique per call within the run.
std::string makeContainerId();

// The IPv4 address part of "a.b.c.d/len".
std::string stripPrefix(const std::string& cidr);
// Whether an IPv4 address lies in the subnet "a.b.c.d/len".
bool inSubnet(const std::string& ip, const std::string& subnet);

// The fixture every integration test uses: one Node per test, torn down even after failures.
class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Override to false for tests that need a node without a datapath.
  virtual bool wantDatapath() const { return true; }
  Node node_;
};

template <typename P>
class NodeTestP : public NodeTest, public ::testing::WithParamInterface<P> {};

}  // namespace sluice::itest
