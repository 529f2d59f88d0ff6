// SPDX-License-Identifier: Apache-2.0
#include "harness.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <thread>

extern char** environ;

namespace sluice::itest {
namespace fs = std::filesystem;

namespace {

// Writing a verb's stdin must not kill the test when the child exits early.
const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

std::string envKey(const std::string& kv) { return kv.substr(0, kv.find('=')); }

std::string shorten(const std::string& s, size_t max = 4000) {
  if (s.size() <= max) return s;
  return s.substr(0, max / 2) + "\n...[" + std::to_string(s.size() - max) + " bytes]...\n" +
         s.substr(s.size() - max / 2);
}

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<json> parseJson(const std::string& s) {
  try {
    return json::parse(s);
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

uint32_t parseV4(const std::string& ip) {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) return 0;
  return ntohl(a.s_addr);
}

std::string fmtV4NetOrder(uint32_t netOrder) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{};
  a.s_addr = netOrder;
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

std::string fmtV6(const uint32_t* addr) {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return buf;
}

// serverIp:port as a socket address of its family; false when it is no address.
bool socketAddress(const std::string& ip, uint16_t port, sockaddr_storage& out, socklen_t& len) {
  std::memset(&out, 0, sizeof(out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(*v4);
    return true;
  }
  if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(*v6);
    return true;
  }
  return false;
}

// Enters the netns at /run/netns/<name> on the calling thread only.
bool enterNetns(const std::string& name, std::string* why) {
  int fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = "open netns " + name + ": " + std::strerror(errno);
    return false;
  }
  int rc = ::setns(fd, CLONE_NEWNET);
  int e = errno;
  ::close(fd);
  if (rc != 0) {
    *why = "setns " + name + ": " + std::strerror(e);
    return false;
  }
  return true;
}

struct Digest {
  uint64_t count = 0;
  uint64_t fnv = 1469598103934665603ull;
  void feed(const uint8_t* p, size_t n) {
    count += n;
    for (size_t i = 0; i < n; ++i) {
      fnv ^= p[i];
      fnv *= 1099511628211ull;
    }
  }
};

bool writeAll(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Processes

std::string ProcResult::describe() const {
  std::string s = "exit=" + std::to_string(exitCode);
  if (termSignal) s += " signal=" + std::to_string(termSignal);
  if (timedOut) s += " (hung: killed by the harness)";
  s += "\n--- stdout ---\n" + shorten(out) + "\n--- stderr ---\n" + shorten(err);
  return s;
}

ProcResult runProcess(const std::vector<std::string>& argv, const ProcOptions& opts) {
  (void)kSigpipeIgnored;
  ProcResult res;
  if (argv.empty()) return res;

  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed (the test process is multi-threaded).
  std::vector<std::string> envStrings;
  if (opts.inheritEnv) {
    std::set<std::string> overridden;
    for (const auto& kv : opts.env) overridden.insert(envKey(kv));
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      if (!overridden.count(envKey(kv))) envStrings.push_back(kv);
    }
  }
  envStrings.insert(envStrings.end(), opts.env.begin(), opts.env.end());
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argStrings = argv;
  std::vector<char*> args;
  for (auto& s : argStrings) args.push_back(s.data());
  args.push_back(nullptr);
  // execvpe semantics with our env: resolve the program through the test's PATH.
  std::string prog = argv[0];
  if (prog.find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    std::string dir;
    while (std::getline(ss, dir, ':')) {
      std::string cand = dir + "/" + prog;
      if (::access(cand.c_str(), X_OK) == 0) {
        prog = cand;
        break;
      }
    }
  }

  int inPipe[2], outPipe[2], errPipe[2];
  if (::pipe2(inPipe, O_CLOEXEC) || ::pipe2(outPipe, O_CLOEXEC) || ::pipe2(errPipe, O_CLOEXEC)) {
    res.err = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    res.err = std::string("fork: ") + std::strerror(errno);
    for (int fd : {inPipe[0], inPipe[1], outPipe[0], outPipe[1], errPipe[0], errPipe[1]}) ::close(fd);
    return res;
  }
  if (pid == 0) {
    ::dup2(inPipe[0], 0);
    ::dup2(outPipe[1], 1);
    ::dup2(errPipe[1], 2);
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(prog.c_str(), args.data(), envp.data());
    static const char msg[] = "harness: exec failed\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::close(inPipe[0]);
  ::close(outPipe[1]);
  ::close(errPipe[1]);
  int inFd = inPipe[1], outFd = outPipe[0], errFd = errPipe[0];
  setNonBlocking(inFd);
  setNonBlocking(outFd);
  setNonBlocking(errFd);
  size_t inOff = 0;
  if (opts.input.empty()) {
    ::close(inFd);
    inFd = -1;
  }

  const auto started = std::chrono::steady_clock::now();
  auto deadline = started + std::chrono::seconds(opts.hangGuardSeconds);
  std::optional<std::chrono::steady_clock::time_point> killAt;
  if (opts.killAfterMicros > 0) killAt = started + std::chrono::microseconds(opts.killAfterMicros);
  char buf[65536];
  while (outFd >= 0 || errFd >= 0) {
    if (killAt && std::chrono::steady_clock::now() >= *killAt) {
      ::kill(pid, SIGKILL);  // still a zombie until waitpid below: the pid cannot be reused
      killAt.reset();
    }
    std::vector<pollfd> pfds;
    if (inFd >= 0) pfds.push_back({inFd, POLLOUT, 0});
    if (outFd >= 0) pfds.push_back({outFd, POLLIN, 0});
    if (errFd >= 0) pfds.push_back({errFd, POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      res.timedOut = true;
      break;
    }
    int64_t waitMs = std::min<int64_t>(left.count(), 1000);
    if (killAt) {
      auto k = std::chrono::duration_cast<std::chrono::milliseconds>(*killAt - std::chrono::steady_clock::now());
      waitMs = std::clamp<int64_t>(k.count(), 0, waitMs);
    }
    int n = ::poll(pfds.data(), pfds.size(), static_cast<int>(waitMs));
    if (n < 0 && errno != EINTR) break;
    for (auto& p : pfds) {
      if (!p.revents) continue;
      if (p.fd == inFd) {
        ssize_t w = ::write(inFd, opts.input.data() + inOff, opts.input.size() - inOff);
        if (w > 0) inOff += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) inOff = opts.input.size();
        if (inOff >= opts.input.size() || (p.revents & (POLLERR | POLLHUP))) {
          ::close(inFd);
          inFd = -1;
        }
        continue;
      }
      std::string& dst = p.fd == outFd ? res.out : res.err;
      ssize_t r = ::read(p.fd, buf, sizeof(buf));
      if (r > 0) {
        dst.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(p.fd);
        (p.fd == outFd ? outFd : errFd) = -1;
      }
    }
  }
  for (int fd : {inFd, outFd, errFd})
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    res.exitCode = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    res.termSignal = WTERMSIG(status);
    res.exitCode = -1;
  }
  return res;
}

std::string mustRun(const std::vector<std::string>& argv) {
  ProcResult r = runProcess(argv);
  if (!r.ok()) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    ADD_FAILURE() << "command failed: " << cmd << "\n" << r.describe();
  }
  return r.out;
}

// ---------------------------------------------------------------------------------------------
// Names

Binaries Binaries::fromEnvironment() {
  auto get = [](const char* k, const char* def) {
    const char* v = std::getenv(k);
    return std::string(v && *v ? v : def);
  };
  Binaries b;
  // The environment wins (to test other builds); the defaults are this build tree's.
  b.plugin = get("SLUICE_PLUGIN", SLUICE_BUILT_PLUGIN);
  b.agent = get("SLUICE_AGENT", SLUICE_BUILT_AGENT);
  b.gocni = get("SLUICE_GOCNI", SLUICE_BUILT_GOCNI);
  b.refCniDir = get("SLUICE_REF_CNI_DIR", "/usr/lib/cni");
  return b;
}

std::string hostVethName(const std::string& containerId, const std::string& ifname) {
  std::string in = containerId + "/" + ifname;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string h;
  for (unsigned i = 0; i < len; ++i) {
    h += hex[md[i] >> 4];
    h += hex[md[i] & 0xf];
  }
  return "sl" + h.substr(0, 11);
}

std::string makeContainerId() {
  static std::atomic<uint64_t> seq{0};
  static const uint64_t seed = std::random_device{}() ^ (static_cast<uint64_t>(::getpid()) << 32);
  std::mt19937_64 rng(seed + seq.fetch_add(1) * 0x9e3779b97f4a7c15ull);
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 64; ++i) id += hex[rng() & 0xf];
  return id;
}

std::string stripPrefix(const std::string& cidr) { return cidr.substr(0, cidr.find('/')); }

bool inSubnet(const std::string& ip, const std::string& subnet) {
  auto slash = subnet.find('/');
  if (slash == std::string::npos) return false;
  int len = std::stoi(subnet.substr(slash + 1));
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  uint32_t a = parseV4(ip), n = parseV4(subnet.substr(0, slash));
  return a != 0 && (a & mask) == (n & mask);
}

std::optional<CniError> parseCniError(const std::string& out, std::string* why) {
  auto fail = [&](const std::string& w) -> std::optional<CniError> {
    if (why) *why = w;
    return std::nullopt;
  };
  auto j = parseJson(out);
  if (!j) return fail("stdout is not JSON");
  if (!j->is_object()) return fail("stdout is not a JSON object");
  if (!j->contains("code") || !(*j)["code"].is_number_unsigned()) return fail("no unsigned integer \"code\"");
  if (!j->contains("msg") || !(*j)["msg"].is_string()) return fail("no string \"msg\"");
  CniError e;
  e.code = (*j)["code"].get<uint32_t>();
  e.msg = (*j)["msg"].get<std::string>();
  if (j->contains("details")) {
    if (!(*j)["details"].is_string()) return fail("\"details\" is not a string");
    e.details = (*j)["details"].get<std::string>();
  }
  if (e.msg.empty()) return fail("empty \"msg\"");
  return e;
}

::testing::AssertionResult isCniError(const ProcResult& r, uint32_t code) {
  if (r.timedOut) return ::testing::AssertionFailure() << "plugin hung\n" << r.describe();
  if (r.exitCode == 0) return ::testing::AssertionFailure() << "expected failure, plugin exited 0\n" << r.describe();
  std::string why;
  auto e = parseCniError(r.out, &why);
  if (!e) return ::testing::AssertionFailure() << "stdout is not a CNI error (" << why << ")\n" << r.describe();
  if (code != 0 && e->code != code)
    return ::testing::AssertionFailure() << "CNI error code " << e->code << ", expected " << code << "\n"
                                         << r.describe();
  return ::testing::AssertionSuccess() << "code " << e->code << ": " << e->msg;
}

// ---------------------------------------------------------------------------------------------
// Node

void Node::create(const Binaries& bins, bool withDatapath) {
  bins_ = bins;
  prefix_ = "slt" + std::to_string(::getpid());
  char tmpl[] = "/tmp/sluice-itest-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
  tmpDir_ = tmpl;
  bpfRoot_ = tmpDir_ + "/bpf";
  stateDir_ = tmpDir_ + "/state";
  fs::create_directories(bpfRoot_);
  fs::create_directories(stateDir_);
  ASSERT_EQ(::mount("bpf", bpfRoot_.c_str(), "bpf", 0, "mode=0700"), 0)
      << "mount bpffs at " << bpfRoot_ << ": " << std::strerror(errno);
  bpfMounted_ = true;

  hostNs_ = createNetns("host");
  ASSERT_FALSE(hostNs_.empty());
  // The node's own address (on lo: this kernel has no dummy driver); a real node has one,
  // and forwards IPv4.
  mustRun({"ip", "-n", hostNs_, "addr", "add", std::string(kNodeIp) + "/32", "dev", "lo"});
  mustRun({"ip", "netns", "exec", hostNs_, "sysctl", "-qw", "net.ipv4.ip_forward=1"});
  // IPv6 forwarding too, as the agent sets it on a dual-stack node.
  mustRun({"ip", "netns", "exec", hostNs_, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"});
  ASSERT_FALSE(::testing::Test::HasFailure()) << "host netns setup failed";

  if (withDatapath) {
    ProcResult r = loadDatapath();
    ASSERT_TRUE(r.ok()) << "sluice-agent --load-only failed\n" << r.describe();
    for (const char* pin : {SL_MAP_ENDPOINTS, SL_MAP_IFACES, SL_MAP_ROUTES, SL_MAP_CONFIG, SL_MAP_METRICS,
                            SL_PROG_FROM_POD}) {
      ASSERT_TRUE(fs::exists(bpfRoot_ + "/" + pin)) << "agent --load-only did not pin " << pin;
    }
  }
  baselineLinks_ = linkNames(hostNs_);
  baselineRoutes_ = routeLines(hostNs_);
}

void Node::destroy() {
  extraCniPath_.clear();
  for (auto it = netns_.rbegin(); it != netns_.rend(); ++it) {
    runProcess({"ip", "netns", "del", *it});
  }
  netns_.clear();
  if (bpfMounted_) {
    ::umount2(bpfRoot_.c_str(), MNT_DETACH);
    bpfMounted_ = false;
  }
  if (!tmpDir_.empty()) {
    std::error_code ec;
    fs::remove_all(tmpDir_, ec);
    tmpDir_.clear();
  }
}

std::string Node::pluginDir() const { return fs::path(bins_.plugin).parent_path().string(); }

ProcResult Node::loadDatapath() {
  return runIn(hostNs_, {bins_.agent, "--load-only", "--bpf-root", bpfRoot_, "--state-dir", stateDir_,
                         "--log-level", "debug"});
}

std::string Node::createNetns(const std::string& suffix) {
  std::string name = prefix_ + "-" + suffix;
  ProcResult r = runProcess({"ip", "netns", "add", name});
  if (!r.ok()) {
    ADD_FAILURE() << "ip netns add " << name << "\n" << r.describe();
    return "";
  }
  netns_.push_back(name);
  mustRun({"ip", "-n", name, "link", "set", "lo", "up"});
  return name;
}

void Node::deleteNetns(const std::string& name) {
  ProcResult r = runProcess({"ip", "netns", "del", name});
  EXPECT_TRUE(r.ok()) << "ip netns del " << name << "\n" << r.describe();
  netns_.erase(std::remove(netns_.begin(), netns_.end(), name), netns_.end());
}

Pod Node::makePod(const std::string& suffix) {
  Pod p;
  p.netnsName = createNetns(suffix.empty() ? "p" + std::to_string(podSeq_++) : suffix);
  p.netnsPath = "/run/netns/" + p.netnsName;
  p.containerId = makeContainerId();
  return p;
}

ProcResult Node::runIn(const std::string& ns, std::vector<std::string> argv, const ProcOptions& opts) {
  argv.insert(argv.begin(), {"ip", "netns", "exec", ns});
  return runProcess(argv, opts);
}

json Node::sluiceIpam(const std::string& subnet) const {
  return json{{"type", "sluice-ipam"}, {"ranges", json::array({json::array({json{{"subnet", subnet}}})})}};
}

json Node::sluiceIpam(const std::vector<std::string>& subnets) const {
  json ranges = json::array();
  for (const auto& s : subnets) ranges.push_back(json::array({json{{"subnet", s}}}));
  return json{{"type", "sluice-ipam"}, {"ranges", ranges}};
}

json Node::pluginConf(const std::string& cniVersion, const std::string& netName, const json& ipam, int mtu) const {
  return json{{"cniVersion", cniVersion}, {"name", netName},       {"type", "sluice"},
              {"mtu", mtu},               {"bpfRoot", bpfRoot_},   {"stateDir", stateDir_},
              {"logFile", logFile()},     {"logLevel", "debug"},   {"ipam", ipam}};
}

json Node::conflist(const std::string& cniVersion, const std::string& netName, const json& ipam, int mtu) const {
  json entry = pluginConf(cniVersion, netName, ipam, mtu);
  entry.erase("cniVersion");
  entry.erase("name");
  return json{{"cniVersion", cniVersion}, {"name", netName}, {"plugins", json::array({entry})}};
}

ProcResult Node::cni(const CniRequest& req) {
  ProcOptions o;
  o.inheritEnv = false;  // a runtime's environment, not the test's
  const char* path = std::getenv("PATH");
  o.env.push_back(std::string("PATH=") + (path ? path : "/usr/sbin:/usr/bin:/sbin:/bin"));
  if (req.command) o.env.push_back("CNI_COMMAND=" + *req.command);
  if (req.containerId) o.env.push_back("CNI_CONTAINERID=" + *req.containerId);
  if (req.netns) o.env.push_back("CNI_NETNS=" + *req.netns);
  if (req.ifname) o.env.push_back("CNI_IFNAME=" + *req.ifname);
  if (req.args) o.env.push_back("CNI_ARGS=" + *req.args);
  if (!req.unsetPath)
    o.env.push_back("CNI_PATH=" + req.path.value_or((extraCniPath_.empty() ? "" : extraCniPath_ + ":") +
                                                    pluginDir() + ":" + bins_.refCniDir));
  o.env.insert(o.env.end(), req.extraEnv.begin(), req.extraEnv.end());
  o.input = req.config;
  o.killAfterMicros = req.killAfterMicros;
  return runIn(hostNs_, {bins_.plugin}, o);
}

ProcResult Node::add(const Pod& pod, const json& conf, const std::vector<std::string>& extraEnv) {
  CniRequest r;
  r.command = "ADD";
  r.containerId = pod.containerId;
  r.netns = pod.netnsPath;
  r.ifname = pod.ifname;
  if (!pod.args.empty()) r.args = pod.args;
  r.config = conf.dump();
  r.extraEnv = extraEnv;
  return cni(r);
}

ProcResult Node::check(const Pod& pod, const json& conf) {
  CniRequest r;
  r.command = "CHECK";
  r.containerId = pod.containerId;
  r.netns = pod.netnsPath;
  r.ifname = pod.ifname;
  if (!pod.args.empty()) r.args = pod.args;
  json c = conf;
  if (!pod.result.is_null()) c["prevResult"] = pod.result;
  r.config = c.dump();
  return cni(r);
}

ProcResult Node::gc(const json& conf, const std::vector<const Pod*>& valid,
                    const std::vector<std::string>& extraEnv) {
  json c = conf;
  c["cniVersion"] = "1.1.0";
  json list = json::array();
  for (const Pod* p : valid) list.push_back({{"containerID", p->containerId}, {"ifname", p->ifname}});
  c["cni.dev/valid-attachments"] = list;
  return networkVerb("GC", c, extraEnv);
}

ProcResult Node::status(const json& conf) { return networkVerb("STATUS", conf); }

ProcResult Node::networkVerb(const std::string& command, const json& conf,
                             const std::vector<std::string>& extraEnv) {
  CniRequest r;
  r.command = command;
  r.containerId.reset();
  r.ifname.reset();
  r.config = conf.dump();
  r.extraEnv = extraEnv;
  return cni(r);
}

ProcResult Node::del(const Pod& pod, const json& conf, std::optional<std::string> netnsOverride) {
  CniRequest r;
  r.command = "DEL";
  r.containerId = pod.containerId;
  r.netns = netnsOverride.value_or(pod.netnsPath);
  r.ifname = pod.ifname;
  if (!pod.args.empty()) r.args = pod.args;
  json c = conf;
  if (!pod.result.is_null()) c["prevResult"] = pod.result;
  r.config = c.dump();
  return cni(r);
}

void Node::addOk(Pod& pod, const json& conf) {
  ProcResult r = add(pod, conf);
  ASSERT_TRUE(r.ok()) << "ADD " << pod.netnsName << " failed\n" << r.describe();
  auto j = parseJson(r.out);
  ASSERT_TRUE(j && j->is_object()) << "ADD result is not a JSON object\n" << r.describe();
  pod.result = *j;
  ASSERT_TRUE(j->contains("ips") && (*j)["ips"].is_array() && !(*j)["ips"].empty())
      << "ADD result has no ips\n" << r.out;
  pod.ip.clear();
  pod.ip6.clear();
  for (const json& ip : (*j)["ips"]) {
    ASSERT_TRUE(ip.contains("address") && ip["address"].is_string()) << r.out;
    const std::string a = stripPrefix(ip["address"].get<std::string>());
    std::string& slot = a.find(':') == std::string::npos ? pod.ip : pod.ip6;
    if (slot.empty()) slot = a;
  }
  if (pod.ip.empty()) pod.ip = pod.ip6;
}

// --- inspection

std::vector<json> Node::links(const std::string& ns) {
  ProcResult r = runProcess({"ip", "-n", ns, "-j", "-d", "link", "show"});
  std::vector<json> out;
  if (!r.ok()) return out;
  auto j = parseJson(r.out);
  if (j && j->is_array())
    for (auto& l : *j) out.push_back(l);
  return out;
}

std::set<std::string> Node::linkNames(const std::string& ns) {
  std::set<std::string> names;
  for (auto& l : links(ns)) names.insert(l.value("ifname", "?"));
  return names;
}

std::optional<json> Node::link(const std::string& ns, const std::string& dev) {
  for (auto& l : links(ns))
    if (l.value("ifname", "") == dev) return l;
  return std::nullopt;
}

std::vector<json> Node::addrs(const std::string& ns, const std::string& dev) {
  ProcResult r = runProcess({"ip", "-n", ns, "-j", "addr", "show", "dev", dev});
  std::vector<json> out;
  auto j = r.ok() ? parseJson(r.out) : std::nullopt;
  if (j && j->is_array())
    for (auto& l : *j)
      if (l.contains("addr_info"))
        for (auto& a : l["addr_info"]) out.push_back(a);
  return out;
}

std::set<std::string> Node::routeLines(const std::string& ns) {
  std::set<std::string> out;
  for (const char* fam : {"-4", "-6"}) {
    ProcResult r = runProcess({"ip", "-n", ns, "-j", fam, "route", "show", "table", "all"});
    auto j = r.ok() ? parseJson(r.out) : std::nullopt;
    if (!j || !j->is_array()) {
      out.insert(std::string("<cannot list routes: ") + r.err + ">");
      continue;
    }
    for (auto& rt : *j) {
      std::string dst = rt.value("dst", "");
      // The kernel's own IPv6 link-local and multicast routes come and go with links
      // asynchronously (DAD); they are not something the plugin creates.
      if (std::string(fam) == "-6" &&
          (dst.rfind("fe80", 0) == 0 || dst.rfind("ff", 0) == 0 || rt.value("type", "") == "multicast"))
        continue;
      std::string line = std::string(fam) + " " + rt.value("type", "unicast") + " " + dst;
      for (const char* k : {"gateway", "dev", "table", "protocol", "scope", "prefsrc"})
        if (rt.contains(k) && rt[k].is_string()) line += std::string(" ") + k + "=" + rt[k].get<std::string>();
      out.insert(line);
    }
  }
  return out;
}

std::vector<json> Node::routes(const std::string& ns, const std::string& table) {
  ProcResult r = runProcess({"ip", "-n", ns, "-j", "-4", "route", "show", "table", table});
  std::vector<json> out;
  auto j = r.ok() ? parseJson(r.out) : std::nullopt;
  if (j && j->is_array())
    for (auto& l : *j) out.push_back(l);
  return out;
}

std::vector<json> Node::routes6(const std::string& ns) {
  ProcResult r = runProcess({"ip", "-n", ns, "-j", "-6", "route", "show", "table", "main"});
  std::vector<json> out;
  auto j = r.ok() ? parseJson(r.out) : std::nullopt;
  if (j && j->is_array())
    for (auto& l : *j) out.push_back(l);
  return out;
}

std::vector<json> Node::neighbours(const std::string& ns, const std::string& dev) {
  ProcResult r = runProcess({"ip", "-n", ns, "-j", "neigh", "show", "dev", dev});
  std::vector<json> out;
  auto j = r.ok() ? parseJson(r.out) : std::nullopt;
  if (j && j->is_array())
    for (auto& l : *j) out.push_back(l);
  return out;
}

namespace {
// The names in an IPAM directory other than `lock` and `last_reserved_ip.*`: the index
// entries (`.att.*`) when `index`, everything else (reservations, stray files) otherwise.
std::vector<std::string> ipamFiles(const fs::path& dir, bool index) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n == "lock" || n.rfind("last_reserved_ip", 0) == 0) continue;
    if ((n.rfind(".att.", 0) == 0) == index) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

std::vector<std::string> Node::ipamReservations(const std::string& netName) const {
  return ipamFiles(fs::path(stateDir_) / "ipam" / netName, false);
}

std::vector<std::string> Node::ipamIndexEntries(const std::string& netName) const {
  return ipamFiles(fs::path(stateDir_) / "ipam" / netName, true);
}

std::vector<std::string> Node::endpointRecordFiles() const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path dir = fs::path(stateDir_) / "endpoints";
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<json> Node::endpointRecord(const std::string& hostVeth) const {
  fs::path p = fs::path(stateDir_) / "endpoints" / (hostVeth + ".json");
  if (!fs::exists(p)) return std::nullopt;
  return parseJson(readFile(p.string()));
}

int Node::openPinned(const std::string& name) const {
  return ::bpf_obj_get((bpfRoot_ + "/" + name).c_str());
}

namespace {
template <typename K, typename V>
std::vector<std::pair<K, V>> dumpMap(int fd) {
  std::vector<std::pair<K, V>> out;
  if (fd < 0) return out;
  K key{}, next{};
  const K* prev = nullptr;
  while (::bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (::bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    key = next;
    prev = &key;
  }
  ::close(fd);
  return out;
}
}  // namespace

std::vector<std::pair<sl_endpoint_key, sl_endpoint>> Node::endpointEntries() const {
  return dumpMap<sl_endpoint_key, sl_endpoint>(openPinned(SL_MAP_ENDPOINTS));
}

std::vector<std::pair<uint32_t, sl_iface>> Node::ifaceEntries() const {
  return dumpMap<uint32_t, sl_iface>(openPinned(SL_MAP_IFACES));
}

sl_counter Node::counter(int id) const {
  sl_counter sum{};
  int fd = openPinned(SL_MAP_METRICS);
  if (fd < 0) {
    ADD_FAILURE() << "cannot open " << bpfRoot_ << "/" SL_MAP_METRICS ": " << std::strerror(errno);
    return sum;
  }
  int ncpu = ::libbpf_num_possible_cpus();
  std::vector<sl_counter> vals(static_cast<size_t>(std::max(ncpu, 1)));
  uint32_t key = static_cast<uint32_t>(id);
  if (::bpf_map_lookup_elem(fd, &key, vals.data()) != 0) {
    ADD_FAILURE() << "lookup " SL_MAP_METRICS "[" << id << "]: " << std::strerror(errno);
  } else {
    for (auto& v : vals) {
      sum.packets += v.packets;
      sum.bytes += v.bytes;
    }
  }
  ::close(fd);
  return sum;
}

::testing::AssertionResult Node::nothingLeft(const std::string& netName, const std::vector<Pod>& pods) {
  std::ostringstream bad;
  for (const auto& l : linkNames(hostNs_))
    if (!baselineLinks_.count(l)) bad << "  host link left: " << l << "\n";
  for (const auto& l : baselineLinks_)
    if (!linkNames(hostNs_).count(l)) bad << "  host link vanished: " << l << "\n";
  auto routesNow = routeLines(hostNs_);
  for (const auto& r : routesNow)
    if (!baselineRoutes_.count(r)) bad << "  host route left: " << r << "\n";
  for (const auto& r : baselineRoutes_)
    if (!routesNow.count(r)) bad << "  host route vanished: " << r << "\n";
  for (const auto& f : ipamReservations(netName)) bad << "  IPAM reservation left: ipam/" << netName << "/" << f << "\n";
  for (const auto& f : ipamIndexEntries(netName)) bad << "  IPAM index entry left: ipam/" << netName << "/" << f << "\n";
  for (const auto& f : endpointRecordFiles()) bad << "  endpoint record left: endpoints/" << f << "\n";
  for (const auto& [k, v] : endpointEntries())
    bad << "  sl_endpoints entry left: " << (k.ip.family == SL_AF_INET ? fmtV4NetOrder(k.ip.addr[0]) : fmtV6(k.ip.addr))
        << " -> ifindex " << v.ifindex << "\n";
  for (const auto& [k, v] : ifaceEntries())
    bad << "  sl_ifaces entry left: ifindex " << k << " -> " << fmtV4NetOrder(v.ip4) << "\n";
  for (const auto& p : pods) {
    if (!fs::exists(p.netnsPath)) continue;
    for (const auto& l : linkNames(p.netnsName))
      if (l != "lo") bad << "  link left in pod netns " << p.netnsName << ": " << l << "\n";
  }
  std::string s = bad.str();
  if (s.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "leftovers:\n" << s;
}

// --- traffic

bool Node::ping(const std::string& fromNs, const std::string& ip, int count) {
  ProcResult r = runIn(fromNs, {"ping", "-n", "-q", "-c", std::to_string(count), "-i", "0.2", "-W", "2", ip});
  return r.ok();
}

::testing::AssertionResult Node::tcpExchange(const std::string& serverNs, const std::string& serverIp,
                                             const std::string& clientNs, size_t bytes, uint16_t port) {
  constexpr int kGuardMs = 30000;  // hang guard only
  std::promise<std::string> ready;  // "" when listening, else the error
  auto readyF = ready.get_future();
  std::string serverErr;
  Digest serverDigest;
  // Written when the client gave up, so the server stops waiting for a connection.
  int cancel[2];
  if (::pipe2(cancel, O_CLOEXEC) != 0) return ::testing::AssertionFailure() << "pipe: " << std::strerror(errno);

  std::thread server([&] {
    std::string why;
    if (!enterNetns(serverNs, &why)) {
      ready.set_value(why);
      return;
    }
    sockaddr_storage sa{};
    socklen_t saLen = 0;
    if (!socketAddress(serverIp, port, sa, saLen)) {
      ready.set_value("not an address: " + serverIp);
      return;
    }
    int ls = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(ls, reinterpret_cast<sockaddr*>(&sa), saLen) != 0 || ::listen(ls, 4) != 0) {
      ready.set_value(std::string("bind/listen ") + serverIp + ": " + std::strerror(errno));
      ::close(ls);
      return;
    }
    ready.set_value("");
    pollfd p[2] = {{ls, POLLIN, 0}, {cancel[0], POLLIN, 0}};
    if (::poll(p, 2, kGuardMs) < 1 || !(p[0].revents & POLLIN)) {
      serverErr = "no connection arrived";
      ::close(ls);
      return;
    }
    int cs = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(ls);
    if (cs < 0) {
      serverErr = std::string("accept: ") + std::strerror(errno);
      return;
    }
    timeval tv{kGuardMs / 1000, 0};
    ::setsockopt(cs, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::vector<uint8_t> buf(65536);
    for (;;) {
      ssize_t r = ::recv(cs, buf.data(), buf.size(), 0);
      if (r == 0) break;
      if (r < 0) {
        if (errno == EINTR) continue;
        serverErr = std::string("recv: ") + std::strerror(errno);
        ::close(cs);
        return;
      }
      serverDigest.feed(buf.data(), static_cast<size_t>(r));
    }
    uint64_t reply[2] = {serverDigest.count, serverDigest.fnv};
    if (!writeAll(cs, reply, sizeof(reply))) serverErr = std::string("send reply: ") + std::strerror(errno);
    ::close(cs);
  });

  std::string readyErr = readyF.get();
  std::string clientErr;
  Digest sent;
  uint64_t reply[2] = {0, 0};
  if (readyErr.empty()) {
    std::thread client([&] {
      std::string why;
      if (!enterNetns(clientNs, &why)) {
        clientErr = why;
        return;
      }
      sockaddr_storage sa{};
      socklen_t saLen = 0;
      socketAddress(serverIp, port, sa, saLen);  // the server checked it
      int s = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{kGuardMs / 1000, 0};
      ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      if (::connect(s, reinterpret_cast<sockaddr*>(&sa), saLen) != 0) {
        clientErr = std::string("connect ") + serverIp + ": " + std::strerror(errno);
        ::close(s);
        return;
      }
      std::mt19937 rng(static_cast<uint32_t>(bytes));
      std::vector<uint8_t> chunk(65536);
      size_t left = bytes;
      while (left > 0) {
        size_t n = std::min(left, chunk.size());
        for (size_t i = 0; i < n; ++i) chunk[i] = static_cast<uint8_t>(rng());
        if (!writeAll(s, chunk.data(), n)) {
          clientErr = std::string("send: ") + std::strerror(errno);
          ::close(s);
          return;
        }
        sent.feed(chunk.data(), n);
        left -= n;
      }
      ::shutdown(s, SHUT_WR);
      size_t got = 0;
      auto* rp = reinterpret_cast<uint8_t*>(reply);
      while (got < sizeof(reply)) {
        ssize_t r = ::recv(s, rp + got, sizeof(reply) - got, 0);
        if (r <= 0) {
          if (r < 0 && errno == EINTR) continue;
          clientErr = "reply: " + std::string(r == 0 ? "EOF" : std::strerror(errno));
          break;
        }
        got += static_cast<size_t>(r);
      }
      ::close(s);
    });
    client.join();
    if (!clientErr.empty()) (void)!::write(cancel[1], "x", 1);
  }
  server.join();
  ::close(cancel[0]);
  ::close(cancel[1]);
  if (!readyErr.empty()) return ::testing::AssertionFailure() << "server: " << readyErr;
  if (!clientErr.empty() || !serverErr.empty())
    return ::testing::AssertionFailure() << "client: " << clientErr << " server: " << serverErr;
  if (reply[0] != sent.count || reply[1] != sent.fnv)
    return ::testing::AssertionFailure() << "server saw " << reply[0] << " bytes (hash " << reply[1] << "), client sent "
                                         << sent.count << " (hash " << sent.fnv << ")";
  return ::testing::AssertionSuccess() << bytes << " bytes " << clientNs << " -> " << serverNs;
}

// ---------------------------------------------------------------------------------------------
// Fixture

void NodeTest::SetUp() {
  ASSERT_EQ(::geteuid(), 0u) << "integration tests create network namespaces and mount bpffs: run them as root";
  Binaries bins = Binaries::fromEnvironment();
  ASSERT_FALSE(bins.plugin.empty()) << "no plugin binary: set SLUICE_PLUGIN";
  ASSERT_FALSE(bins.agent.empty()) << "no agent binary: set SLUICE_AGENT";
  ASSERT_EQ(::access(bins.plugin.c_str(), X_OK), 0) << bins.plugin << " is not executable";
  ASSERT_EQ(::access(bins.agent.c_str(), X_OK), 0) << bins.agent << " is not executable";
  node_.create(bins, wantDatapath());
}

void NodeTest::TearDown() {
  if (HasFailure() && !node_.stateDir().empty()) {
    std::string log = readFile(node_.logFile());
    if (!log.empty()) std::cerr << "---- plugin log (" << node_.logFile() << ") ----\n" << shorten(log, 12000) << "\n";
  }
  node_.destroy();
}

}  // namespace sluice::itest
