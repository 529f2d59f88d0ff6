// SPDX-License-Identifier: Apache-2.0
#include "cli.h"

#include <net/if.h>
#include <sys/stat.h>

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "conflist.h"
#include "instance_lock.h"
#include "reconcile.h"
#include "sluice/bpf/datapath.h"
#include "sluice/bpf/maps.h"
#include "sluice/bpf/tc.h"
#include "sluice/cni/endpoint.h"
#include "state_file.h"

namespace sluice::agent {
namespace {

using nlohmann::ordered_json;

// A plain text table: columns padded to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const {
    std::vector<size_t> w;
    for (const auto& r : rows_)
      for (size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], r[i].size());
      }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
      }
      out << line << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string ifName(uint32_t ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (ifindex == 0 || if_indextoname(ifindex, buf) == nullptr) return "-";
  return buf;
}

std::string ipv4(uint32_t netOrder) {
  return net::IpAddr::fromBytes(4, reinterpret_cast<const uint8_t*>(&netOrder)).str();
}

int fail(std::ostream& err, const Error& e) {
  err << "sluice-agent: " << e.describe() << "\n";
  return 1;
}

uint32_t pinnedProgId(const std::string& root, const char* name) {
  auto fd = bpf::openPinned(bpf::pinPath(root, name));
  if (!fd.ok()) return 0;
  auto id = bpf::progId(fd->get());
  return id.ok() ? *id : 0;
}

const char* modeText(uint32_t mode) { return mode == SL_MODE_NATIVE ? "native" : "vxlan"; }

int status(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto maps = bpf::PinnedMaps::open(o.bpfRoot);
  auto state = readAgentState(o.stateDir);
  ordered_json j;
  j["bpfRoot"] = o.bpfRoot;
  j["datapathLoaded"] = maps.ok();
  if (!maps.ok()) j["datapathError"] = maps.error().describe();
  // Whether an agent runs: one holds the state dir's lock. Its pid, like the state file's, is
  // the one it has in its own PID namespace, whatever this one's; the state file is its own
  // once it has written it (until then a new agent finds its predecessor's).
  const auto holder = InstanceLock::holder(o.stateDir);
  const bool agentRunning = holder.has_value();
  const int agentPid = agentRunning ? *holder : (state.ok() ? state->pid : 0);
  const bool agentReady = state.ok() && state->ready && agentRunning && state->pid == *holder;
  if (state.ok()) {
    j["node"] = {{"name", state->nodeName}, {"ip", state->nodeIp}, {"podCIDRs", state->podCIDRs},
                 {"underlay", state->underlay}, {"mtu", state->mtu}};
    j["agent"] = {{"pid", agentPid}, {"running", agentRunning}, {"ready", agentReady},
                  {"version", state->version}, {"nodes", state->nodes.size()}};
  }
  const std::string conflist = o.cniConfDir + "/" + kConflistName;
  struct stat st {};
  j["conflist"] = {{"path", conflist}, {"present", ::stat(conflist.c_str(), &st) == 0}};
  if (maps.ok()) {
    auto cfg = maps->config.lookup(0);
    if (cfg.ok() && *cfg) {
      const sl_config& c = **cfg;
      j["config"] = {{"layoutVersion", c.layout_version}, {"mode", modeText(c.mode)},
                     {"nodeIP", ipv4(c.node_ip4)}, {"vni", c.vni},
                     {"overlayIfindex", c.overlay_ifindex}, {"overlay", ifName(c.overlay_ifindex)},
                     {"overlayMtu", c.overlay_mtu}, {"underlayIfindex", c.underlay_ifindex},
                     {"underlay", ifName(c.underlay_ifindex)},
                     {"natDetection", bpf::natDetectionName(c.flags, bpf::conntrackKfuncAvailable())}};
      if (c.overlay_ifindex != 0) {
        auto in = bpf::tcIngressProgId(static_cast<int>(c.overlay_ifindex));
        auto eg = bpf::tcEgressProgId(static_cast<int>(c.overlay_ifindex));
        j["overlayAttached"] = {{"ingress", in.ok() ? *in : 0}, {"egress", eg.ok() ? *eg : 0}};
      }
      if (c.underlay_ifindex != 0) {  // vxlan mode: sl_from_tunnel at ingress, nothing at egress
        auto in = bpf::tcIngressProgId(static_cast<int>(c.underlay_ifindex));
        auto eg = bpf::tcEgressProgId(static_cast<int>(c.underlay_ifindex));
        j["underlayAttached"] = {{"ingress", in.ok() ? *in : 0}, {"egress", eg.ok() ? *eg : 0}};
      }
    }
    j["programs"] = {{SL_PROG_FROM_POD, pinnedProgId(o.bpfRoot, SL_PROG_FROM_POD)},
                     {SL_PROG_TO_POD, pinnedProgId(o.bpfRoot, SL_PROG_TO_POD)},
                     {SL_PROG_FROM_OVERLAY, pinnedProgId(o.bpfRoot, SL_PROG_FROM_OVERLAY)},
                     {SL_PROG_TO_OVERLAY, pinnedProgId(o.bpfRoot, SL_PROG_TO_OVERLAY)},
                     {SL_PROG_FROM_NATIVE, pinnedProgId(o.bpfRoot, SL_PROG_FROM_NATIVE)},
                     {SL_PROG_TO_NATIVE, pinnedProgId(o.bpfRoot, SL_PROG_TO_NATIVE)},
                     {SL_PROG_FROM_TUNNEL, pinnedProgId(o.bpfRoot, SL_PROG_FROM_TUNNEL)}};
    auto eps = maps->endpoints.entries();
    auto ifs = maps->ifaces.entries();
    auto rts = maps->routes.entries();
    j["counts"] = {{"endpoints", eps.ok() ? static_cast<int64_t>(eps->size()) : -1},
                   {"ifaces", ifs.ok() ? static_cast<int64_t>(ifs->size()) : -1},
                   {"routes", rts.ok() ? static_cast<int64_t>(rts->size()) : -1}};
  }
  if (o.json) {
    out << j.dump(2) << "\n";
    return maps.ok() ? 0 : 1;
  }
  out << "Datapath:   " << (maps.ok() ? "loaded" : "NOT LOADED") << " (" << o.bpfRoot << ")\n";
  if (!maps.ok()) out << "            " << maps.error().describe() << "\n";
  if (state.ok()) {
    out << "Agent:      " << (agentRunning ? "running" : "not running") << " (pid " << agentPid << ", "
        << state->version << ")" << (agentReady ? ", ready" : "") << "\n";
    out << "Node:       " << state->nodeName << " " << state->nodeIp << " pod CIDRs ";
    for (size_t i = 0; i < state->podCIDRs.size(); ++i) out << (i ? "," : "") << state->podCIDRs[i];
    out << " (" << state->nodes.size() << " nodes known)\n";
  } else {
    out << "Agent:      no state under " << o.stateDir << "\n";
  }
  if (j.contains("config")) {
    const auto& c = j["config"];
    out << "Mode:       " << c["mode"].get<std::string>() << ", VNI " << c["vni"] << ", node IP "
        << c["nodeIP"].get<std::string>() << ", layout v" << c["layoutVersion"] << ", NAT detection "
        << c["natDetection"].get<std::string>() << "\n";
    if (c["mode"] == "native") {
      out << "Underlay:   " << c["underlay"].get<std::string>() << " (ifindex " << c["underlayIfindex"]
          << ", pod mtu " << c["overlayMtu"] << ", no encapsulation)";
      if (j.contains("underlayAttached"))
        out << " ingress prog " << j["underlayAttached"]["ingress"] << ", egress prog "
            << j["underlayAttached"]["egress"];
    } else {
      out << "Overlay:    " << c["overlay"].get<std::string>() << " (ifindex " << c["overlayIfindex"] << ", mtu "
          << c["overlayMtu"] << ")";
      if (j.contains("overlayAttached"))
        out << " tc ingress prog " << j["overlayAttached"]["ingress"] << ", egress prog "
            << j["overlayAttached"]["egress"];
      if (j.contains("underlayAttached"))
        out << "\nUnderlay:   " << c["underlay"].get<std::string>() << " (ifindex " << c["underlayIfindex"]
            << ") ingress prog " << j["underlayAttached"]["ingress"];
    }
    out << "\n";
  }
  if (j.contains("programs")) {
    out << "Programs:  ";
    for (const auto& [k, v] : j["programs"].items()) out << " " << k << "=" << v;
    out << "\n";
  }
  if (j.contains("counts"))
    out << "Maps:       " << j["counts"]["endpoints"] << " endpoints, " << j["counts"]["ifaces"] << " ifaces, "
        << j["counts"]["routes"] << " routes\n";
  out << "Conflist:   " << conflist << (j["conflist"]["present"].get<bool>() ? "" : " (missing)") << "\n";
  (void)err;
  return maps.ok() ? 0 : 1;
}

int endpoints(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto maps = bpf::PinnedMaps::open(o.bpfRoot);
  if (!maps.ok()) return fail(err, maps.error());
  auto eps = maps->endpoints.entries();
  if (!eps.ok()) return fail(err, eps.error());
  auto records = cni::listEndpointRecords(o.stateDir);
  if (!records.ok()) return fail(err, records.error());
  std::map<std::pair<net::IpAddr, int>, const cni::EndpointRecord*> byRef;
  for (const auto& r : *records)
    for (const auto& c : r.ips) byRef[{c.addr(), r.hostIfindex}] = &r;
  std::sort(eps->begin(), eps->end(), [](const auto& a, const auto& b) {
    return net::IpAddr::fromSl(a.first.ip) < net::IpAddr::fromSl(b.first.ip);
  });
  ordered_json arr = ordered_json::array();
  Table t({"IP", "IFINDEX", "VETH", "POD MAC", "HOST MAC", "POD", "CONTAINER"});
  for (const auto& [k, v] : *eps) {
    auto ip = net::IpAddr::fromSl(k.ip);
    auto it = byRef.find({ip, static_cast<int>(v.ifindex)});
    const cni::EndpointRecord* r = it == byRef.end() ? nullptr : it->second;
    std::string pod = r && !r->podName.empty() ? r->podNamespace + "/" + r->podName : "-";
    ordered_json e = {{"ip", ip.str()},
                      {"ifindex", v.ifindex},
                      {"hostVeth", ifName(v.ifindex)},
                      {"podMac", net::formatMac(v.pod_mac)},
                      {"hostMac", net::formatMac(v.host_mac)},
                      {"flags", v.flags},
                      {"record", r != nullptr}};
    if (r) {
      e["containerID"] = r->containerId;
      e["ifName"] = r->ifName;
      e["netns"] = r->netns;
      e["podNamespace"] = r->podNamespace;
      e["podName"] = r->podName;
    }
    arr.push_back(e);
    t.add({ip.str(), std::to_string(v.ifindex), ifName(v.ifindex), net::formatMac(v.pod_mac),
           net::formatMac(v.host_mac), pod, r ? r->containerId.substr(0, 12) : "(no record)"});
  }
  if (o.json) out << ordered_json{{"endpoints", arr}}.dump(2) << "\n";
  else t.print(out);
  return 0;
}

int routes(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto maps = bpf::PinnedMaps::open(o.bpfRoot);
  if (!maps.ok()) return fail(err, maps.error());
  auto rts = maps->routes.entries();
  if (!rts.ok()) return fail(err, rts.error());
  std::map<net::IpAddr, std::string> nodeByIp;
  if (auto st = readAgentState(o.stateDir); st.ok())
    for (const auto& n : st->nodes) nodeByIp[n.internalIP] = n.name;
  std::vector<std::pair<net::Cidr, sl_route>> sorted;
  for (const auto& [k, v] : *rts) sorted.emplace_back(cidrOfKey(k), v);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  ordered_json arr = ordered_json::array();
  Table t({"POD CIDR", "NODE IP", "NODE"});
  for (const auto& [cidr, v] : sorted) {
    net::IpAddr nodeIp = v.node_ip4 != 0 ? net::IpAddr::fromBytes(4, reinterpret_cast<const uint8_t*>(&v.node_ip4))
                                         : net::IpAddr::fromBytes(6, reinterpret_cast<const uint8_t*>(v.node_ip6));
    auto it = nodeByIp.find(nodeIp);
    std::string node = it == nodeByIp.end() ? "-" : it->second;
    ordered_json e = {{"podCIDR", cidr.str()}, {"nodeIP", nodeIp.str()}, {"node", node}, {"flags", v.flags}};
    std::string shown = nodeIp.str();
    // native routing: an IPv6 pod CIDR's next hop, the node's IPv6 address
    const bool hasIp6 = std::any_of(std::begin(v.node_ip6), std::end(v.node_ip6), [](uint32_t w) { return w != 0; });
    if (v.node_ip4 != 0 && hasIp6) {
      const auto ip6 = net::IpAddr::fromBytes(6, reinterpret_cast<const uint8_t*>(v.node_ip6));
      e["nodeIP6"] = ip6.str();
      shown += "," + ip6.str();
    }
    arr.push_back(e);
    t.add({cidr.str(), shown, node});
  }
  if (o.json) out << ordered_json{{"routes", arr}}.dump(2) << "\n";
  else t.print(out);
  return 0;
}

int nodes(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto st = readAgentState(o.stateDir);
  if (!st.ok()) return fail(err, std::move(st).error().context("no node snapshot (is the agent running?)"));
  ordered_json arr = ordered_json::array();
  Table t({"NAME", "INTERNAL IP", "POD CIDRS", ""});
  for (const auto& n : st->nodes) {
    std::string cidrs;
    ordered_json jc = ordered_json::array();
    for (const auto& c : n.podCIDRs) {
      cidrs += (cidrs.empty() ? "" : ",") + c.str();
      jc.push_back(c.str());
    }
    bool self = n.name == st->nodeName;
    std::string ip = n.internalIP.valid() ? n.internalIP.str() : "-";
    ordered_json e = {{"name", n.name}, {"internalIP", ip}};
    if (n.internalIP6.valid()) e["internalIP6"] = n.internalIP6.str();
    e["podCIDRs"] = jc;
    e["self"] = self;
    arr.push_back(e);
    t.add({n.name, n.internalIP6.valid() ? ip + "," + n.internalIP6.str() : ip, cidrs.empty() ? "-" : cidrs,
           self ? "(this node)" : ""});
  }
  if (o.json) out << ordered_json{{"nodes", arr}}.dump(2) << "\n";
  else t.print(out);
  return 0;
}

int counters(const AgentOptions& o, std::ostream& out, std::ostream& err) {
  auto m = bpf::MetricsMap::openPinned(o.bpfRoot);
  if (!m.ok()) return fail(err, m.error());
  auto c = m->read();
  if (!c.ok()) return fail(err, c.error());
  ordered_json verdicts = ordered_json::object(), drops = ordered_json::object();
  Table t({"COUNTER", "PACKETS", "BYTES"});
  for (int i = 0; i < SL_CNT_DROP_BASE && i < static_cast<int>(c->size()); ++i) {
    const char* n = bpf::counterName(i);
    if (n == nullptr) continue;
    verdicts[n] = {{"packets", (*c)[i].packets}, {"bytes", (*c)[i].bytes}};
    t.add({n, std::to_string((*c)[i].packets), std::to_string((*c)[i].bytes)});
  }
  for (int r = 1; r <= static_cast<int>(SL_DROP_MAX_REASON); ++r) {
    int idx = SL_CNT_DROP_BASE + r;
    const char* n = bpf::dropReasonName(-r);
    if (n == nullptr || idx >= static_cast<int>(c->size())) continue;
    drops[n] = {{"packets", (*c)[idx].packets}, {"bytes", (*c)[idx].bytes}};
    t.add({std::string("drop:") + n, std::to_string((*c)[idx].packets), std::to_string((*c)[idx].bytes)});
  }
  if (o.json) out << ordered_json{{"verdicts", verdicts}, {"drops", drops}}.dump(2) << "\n";
  else t.print(out);
  return 0;
}

}  // namespace

int runCli(const AgentOptions& opts, std::ostream& out, std::ostream& err) {
  switch (opts.command) {
    case Command::kStatus: return status(opts, out, err);
    case Command::kEndpoints: return endpoints(opts, out, err);
    case Command::kRoutes: return routes(opts, out, err);
    case Command::kNodes: return nodes(opts, out, err);
    case Command::kCounters: return counters(opts, out, err);
    default:
      err << "sluice-agent: not an inspection command\n";
      return 2;
  }
}

}  // namespace sluice::agent
