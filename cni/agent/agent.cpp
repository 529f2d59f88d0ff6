// SPDX-License-Identifier: Apache-2.0
#include "agent.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

#include "conflist.h"
#include "datapath_setup.h"
#include "gc.h"
#include "instance_lock.h"
#include "metrics.h"
#include "source_factory.h"
#include "state_file.h"
#include "sysctl.h"

namespace sluice::agent {
namespace {

std::optional<net::Cidr> podCidrFor(const NodeInfo& self) {
  for (const auto& c : self.podCIDRs)
    if (c.addr().isV4()) return c;
  if (!self.podCIDRs.empty()) return self.podCIDRs.front();
  return std::nullopt;
}

std::optional<net::Cidr> ipv6PodCidrFor(const NodeInfo& self) {
  for (const auto& c : self.podCIDRs)
    if (c.addr().isV6()) return c;
  return std::nullopt;
}

}  // namespace

Agent::Agent(AgentOptions opts) : opts_(std::move(opts)) {}
Agent::~Agent() = default;

void Agent::countError(const Error& e) {
  reconcileErrors_.fetch_add(1);
  (void)e;
}

Status Agent::start() {
  if (!opts_.installCniBin.empty()) SL_TRY(installCniBinary(opts_.installCniBin, opts_.cniBinDir));
  SL_ASSIGN_OR_RETURN(auto dp, loadDatapath(opts_.bpfRoot, opts_.vxlanPort));
  dp_.emplace(std::move(dp));
  ConfigUpdate cfg;
  cfg.mode = opts_.mode == DatapathMode::kNative ? SL_MODE_NATIVE : SL_MODE_VXLAN;
  cfg.vni = opts_.vni;
  auto written = updateConfig(dp_->maps().config, cfg);
  if (!written.ok()) return std::move(written).error();
  datapathLoaded_ = true;
  SL_ASSIGN_OR_RETURN(source_, makeNodeSource(opts_));
  SL_ASSIGN_OR_RETURN(auto srv, HttpServer::listen(opts_.metricsAddr, [this](const std::string& m, const std::string& p) {
                        return handleHttp(m, p);
                      }));
  http_.emplace(std::move(srv));
  spdlog::info("sluice-agent {} on node {}: bpf root {}, state {}, metrics on {}", SLUICE_VERSION, opts_.nodeName,
               opts_.bpfRoot, opts_.stateDir, opts_.metricsAddr);
  return okStatus();
}

int Agent::run() {
  // Signals are taken synchronously by this thread only; the workers never see them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // A second agent beside a running one waits for it to exit before it touches anything
  // (instance_lock.h); SIGTERM/SIGINT while it waits end it, untouched.
  bool stopped = false;
  auto lock = InstanceLock::acquire(opts_.stateDir, [&] {
    timespec wait{0, 200'000'000};
    const int sig = sigtimedwait(&sigs, nullptr, &wait);
    stopped = sig == SIGTERM || sig == SIGINT;
    return !stopped;
  });
  if (!lock.ok()) {
    spdlog::error("start-up failed: {}", lock.error().describe());
    return 1;
  }
  if (stopped) {
    spdlog::info("stopped while waiting for the other agent: nothing was touched");
    return 0;
  }

  if (auto st = start(); !st.ok()) {
    spdlog::error("start-up failed: {}", st.error().describe());
    return 1;
  }

  std::jthread httpThread([this](std::stop_token s) { http_->serve(s); });
  std::jthread workThread([this](std::stop_token s) { workLoop(s); });
  std::jthread sourceThread([this](std::stop_token s) {
    auto st = source_->run(
        s,
        [this](const std::vector<NodeInfo>& nodes) {
          std::lock_guard lk(mu_);
          pending_ = nodes;
          cv_.notify_all();
        },
        [this](const Error& e) { countError(e); });
    if (!st.ok()) {
      spdlog::error("node source failed: {}", st.error().describe());
      std::lock_guard lk(mu_);
      fatal_ = true;
    }
  });

  int code = 0;
  for (;;) {
    timespec wait{0, 200'000'000};
    int sig = sigtimedwait(&sigs, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("{}: shutting down; the datapath, routes and pins stay in place",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    std::lock_guard lk(mu_);
    if (fatal_) {
      code = 1;
      break;
    }
  }
  sourceThread.request_stop();
  workThread.request_stop();
  httpThread.request_stop();
  cv_.notify_all();
  sourceThread.join();
  workThread.join();
  httpThread.join();
  return code;
}

void Agent::workLoop(std::stop_token stop) {
  const auto interval = std::chrono::milliseconds(opts_.gcIntervalMs);
  auto nextMaintain = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    std::optional<std::vector<NodeInfo>> snap;
    {
      std::unique_lock lk(mu_);
      cv_.wait_until(lk, stop, nextMaintain, [&] { return pending_.has_value(); });
      snap = std::move(pending_);
      pending_.reset();
    }
    if (stop.stop_requested()) break;
    if (snap) applySnapshot(*snap);
    if (std::chrono::steady_clock::now() >= nextMaintain) {
      maintain();
      nextMaintain = std::chrono::steady_clock::now() + interval;
    }
  }
}

void Agent::applySnapshot(const std::vector<NodeInfo>& nodes) {
  nodes_ = nodes;
  nodeCount_ = static_cast<int64_t>(nodes.size());
  plan_ = planFor(nodes, opts_.nodeName, opts_.mode == DatapathMode::kNative);
  unroutable_ = plan_.unroutable;
  for (const auto& p : plan_.problems) spdlog::warn("nodes: {}", p);
  spdlog::info("node snapshot: {} nodes, {} remote pod CIDRs", nodes.size(), plan_.remote.size());
  auto st = reconcile();
  if (!st.ok()) {
    countError(st.error());
    spdlog::error("reconcile: {}", st.error().describe());
  }
  needResync_ = !st.ok();
  writeState();
}

Status Agent::reconcile() {
  if (!plan_.self)
    return Error(CniCode::kInvalidConfig, "node " + opts_.nodeName + " is not in the node source's snapshot");
  const NodeInfo& self = *plan_.self;
  if (!net_ || net_->nodeIp != self.internalIP) {
    SL_ASSIGN_OR_RETURN(auto n, setupNodeNetwork(opts_, *dp_, self));
    net_ = n;
  }
  if (!upgraded_) {
    SL_TRY(upgradePodPrograms(*dp_));
    upgraded_ = true;
  }
  auto mapCounts = syncRoutesMap(dp_->maps().routes, plan_.remote);
  if (!mapCounts.ok()) return std::move(mapCounts).error();
  KernelRouteOptions ko;
  ko.native = opts_.mode == DatapathMode::kNative;
  ko.overlayIfindex = net_->overlayIfindex;
  ko.underlayIfindex = net_->underlay.ifindex;
  ko.mtu = ko.native ? 0 : net_->podMtu;
  ko.nodeIp = net_->nodeIp;
  // Dual stack: IPv6 forwarding, and (vxlan mode) this node's IPv6 address on sluice_vxlan,
  // before the routes that prefer it as their source. Native routing uses the node's own IPv6
  // InternalIP on the underlay instead.
  const auto podCidr6 = ipv6PodCidrFor(self);
  std::optional<net::IpAddr> nodeIp6;
  if (podCidr6) {
    SL_TRY(applyIpv6Sysctls());
    if (!ko.native) nodeIp6 = nodeIp6Of(*podCidr6);
  }
  if (!ko.native) SL_TRY(ensureOverlayIp6(net_->overlayIfindex, nodeIp6));
  if (nodeIp6) ko.nodeIp6 = *nodeIp6;
  auto routeCounts = syncKernelRoutes(kernelRoutesFor(plan_.remote, ko));
  if (!routeCounts.ok()) return std::move(routeCounts).error();
  std::optional<net::Cidr> podSource;
  if (auto c = podCidrFor(self); c && c->addr().isV4() && !ko.native) podSource = c->network();
  SL_TRY(syncPodSourceRule(podSource));
  SL_TRY(masquerade_.ensure(opts_.clusterCidrs, ko.native ? std::string() : std::string(kVxlanName),
                            plan_.nodeIps));

  auto podCidr = podCidrFor(self);
  if (!podCidr) return Error(CniCode::kInvalidConfig, "node " + self.name + " has no pod CIDR yet");
  ConflistParams cp;
  cp.podCidr = *podCidr;
  if (podCidr->addr().isV4()) cp.podCidr6 = podCidr6;
  cp.mtu = net_->podMtu;
  cp.bpfRoot = opts_.bpfRoot;
  cp.stateDir = opts_.stateDir;
  cp.logLevel = opts_.logLevel;
  cp.chain = opts_.chain;
  cp.chainSpeaks11 = !opts_.chain.empty() && chainVersions_.allSpeak(opts_.chain, opts_.cniBinDir, "1.1.0");
  auto wrote = writeConflist(opts_.cniConfDir, cp);
  if (!wrote.ok()) return std::move(wrote).error();
  if (!conflistWritten_.exchange(true)) spdlog::info("node {} ready", self.name);
  return okStatus();
}

void Agent::maintain() {
  if (net_) {
    auto ok = checkNodeNetwork(opts_, *dp_, *net_);
    if (!ok.ok()) {
      countError(ok.error());
      spdlog::warn("datapath check: {}", ok.error().describe());
    } else if (!*ok) {
      spdlog::warn("{} or the underlay changed under us: setting the node up again", kVxlanName);
      net_.reset();
      needResync_ = true;
    }
  }
  // A diff against the desired state: free when nothing drifted, heals what did.
  if (!nodes_.empty() || needResync_) {
    auto st = reconcile();
    if (!st.ok()) {
      countError(st.error());
      spdlog::warn("resync: {}", st.error().describe());
    } else if (needResync_) {
      writeState();
    }
    needResync_ = !st.ok();
  }
  GcOptions go;
  go.stateDir = opts_.stateDir;
  auto gc = collectEndpoints(dp_->maps(), go);
  if (!gc.ok()) {
    countError(gc.error());
    spdlog::warn("gc: {}", gc.error().describe());
  } else {
    gcRemoved_ += static_cast<uint64_t>(gc->endpoints);
    gcReleased_ += static_cast<uint64_t>(gc->addresses);
  }
}

void Agent::writeState() {
  AgentState s;
  s.nodeName = opts_.nodeName;
  if (plan_.self)
    for (const auto& c : plan_.self->podCIDRs) s.podCIDRs.push_back(c.str());
  if (net_) {
    s.nodeIp = net_->nodeIp.str();
    s.underlay = net_->underlay.name;
    s.overlayIfindex = net_->overlayIfindex;
    s.mtu = net_->podMtu;
  }
  s.mode = modeName(opts_.mode);
  s.ready = datapathLoaded_ && conflistWritten_;
  s.pid = static_cast<int>(::getpid());
  s.version = SLUICE_VERSION;
  s.nodes = nodes_;
  if (auto st = writeAgentState(opts_.stateDir, s); !st.ok())
    spdlog::warn("agent state file: {}", st.error().describe());
}

HttpResponse Agent::handleHttp(const std::string& method, const std::string& path) {
  (void)method;
  if (path == "/healthz") {
    if (datapathLoaded_ && conflistWritten_) return {200, "text/plain; charset=utf-8", "ok\n"};
    return {503, "text/plain; charset=utf-8",
            datapathLoaded_ ? "not ready: waiting for this node's entry and the conflist\n"
                            : "not ready: datapath not loaded\n"};
  }
  if (path == "/metrics") {
    MetricsSnapshot m;
    const auto& maps = dp_->maps();
    if (auto c = maps.metrics.read(); c.ok()) m.counters = std::move(c).value();
    if (auto e = maps.endpoints.entries(); e.ok()) {
      m.endpoints = static_cast<int64_t>(e->size());
      m.mapEntries.emplace_back("sl_endpoints", m.endpoints);
    }
    if (auto i = maps.ifaces.entries(); i.ok()) m.mapEntries.emplace_back("sl_ifaces", static_cast<int64_t>(i->size()));
    if (auto r = maps.routes.entries(); r.ok()) {  // pod CIDRs; node-address routes not counted
      m.routes = std::count_if(r->begin(), r->end(),
                               [](const auto& e) { return !isNodeAddressRoute(e.first, e.second); });
      m.mapEntries.emplace_back("sl_routes", static_cast<int64_t>(r->size()));
    }
    m.nodes = nodeCount_;
    m.reconcileErrors = reconcileErrors_;
    m.unroutablePodCidrs = unroutable_;
    m.gcRemoved = gcRemoved_;
    m.gcReleased = gcReleased_;
    m.ready = datapathLoaded_ && conflistWritten_;
    m.version = SLUICE_VERSION;
    return {200, "text/plain; version=0.0.4; charset=utf-8", renderMetrics(m)};
  }
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

}  // namespace sluice::agent
