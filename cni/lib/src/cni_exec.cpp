// SPDX-License-Identifier: Apache-2.0
#include "sluice/cni/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/cni/types.h"
#include "sluice/fd.h"

extern char** environ;

namespace sluice::cni {

Result<std::string> findPlugin(const std::string& type, const std::string& cniPath) {
  if (type.empty() || type.find('/') != std::string::npos)
    return Error(CniCode::kInvalidConfig, "\"" + type + "\" is not a plugin name");
  if (cniPath.empty())
    return Error(CniCode::kInvalidEnv, "CNI_PATH is not set: cannot find plugin \"" + type + "\"");
  size_t pos = 0;
  while (pos <= cniPath.size()) {
    size_t colon = cniPath.find(':', pos);
    std::string dir = cniPath.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + type;
      struct stat sb;
      if (::stat(candidate.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) &&
          ::access(candidate.c_str(), X_OK) == 0)
        return candidate;
    }
    if (colon == std::string::npos) break;
    pos = colon + 1;
  }
  return Error(CniCode::kInvalidConfig,
               "plugin \"" + type + "\" not found in CNI_PATH (" + cniPath + ")");
}

Result<std::string> execPlugin(const std::string& binary, const PluginCall& call,
                               std::string_view config) {
  // Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
  std::vector<std::string> envStrings;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, "CNI_", 4) != 0) envStrings.emplace_back(*e);
  envStrings.push_back("CNI_COMMAND=" + call.command);
  envStrings.push_back("CNI_CONTAINERID=" + call.containerId);
  envStrings.push_back("CNI_NETNS=" + call.netns);
  envStrings.push_back("CNI_IFNAME=" + call.ifname);
  envStrings.push_back("CNI_ARGS=" + call.args);
  envStrings.push_back("CNI_PATH=" + call.path);
  std::vector<char*> envp;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string argv0 = binary;
  char* argv[] = {argv0.data(), nullptr};

  // stdin is a socket so that writing to a child that exits early fails with EPIPE
  // (MSG_NOSIGNAL) instead of killing us with SIGPIPE.
  int in[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    return Error::fromErrno(errno, "socketpair for " + binary);
  Fd inParent(in[0]), inChild(in[1]);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::fromErrno(errno, "pipe for " + binary);
  Fd outParent(out[0]), outChild(out[1]);

  const bool limited = call.timeoutMs >= 0;
  pid_t pid = ::fork();
  if (pid < 0) return Error::fromErrno(errno, "fork for " + binary);
  if (pid == 0) {
    // A plugin that can time out gets a process group of its own, killed whole.
    if (limited) ::setpgid(0, 0);
    if (::dup2(inChild.get(), 0) < 0 || ::dup2(outChild.get(), 1) < 0) ::_exit(127);
    ::execve(argv0.c_str(), argv, envp.data());
    ::_exit(127);
  }
  inChild.reset();
  outChild.reset();

  std::string stdoutText;
  size_t written = 0;
  bool inOpen = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(call.timeoutMs);
  bool timedOut = false;
  auto expire = [&] {
    timedOut = true;
    ::kill(-pid, SIGKILL);  // with whatever it started
    ::kill(pid, SIGKILL);   // had it not made its group yet
  };
  while (true) {
    pollfd fds[2];
    int n = 0;
    fds[n++] = {outParent.get(), POLLIN, 0};
    if (inOpen) fds[n++] = {inParent.get(), POLLOUT, 0};
    int waitMs = -1;
    if (limited) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        expire();
        break;
      }
      waitMs = static_cast<int>(left.count());
    }
    if (::poll(fds, static_cast<nfds_t>(n), waitMs) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (inOpen && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = written < config.size()
                      ? ::send(inParent.get(), config.data() + written, config.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT)
                      : 0;
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = config.size();  // child gone
      if (written >= config.size()) {
        ::shutdown(inParent.get(), SHUT_WR);
        inParent.reset();
        inOpen = false;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t r = ::read(outParent.get(), buf, sizeof(buf));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      stdoutText.append(buf, static_cast<size_t>(r));
    }
  }
  inParent.reset();
  int status = 0;
  // A plugin with a deadline that closed its stdout but goes on is held to the deadline too:
  // polled until then, killed at it, and waited for once killed.
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, limited && !timedOut ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno(errno, "wait for " + binary);
    }
    if (std::chrono::steady_clock::now() >= deadline) expire();
    else ::usleep(2000);
  }
  if (timedOut)
    return Error(CniCode::kInternal, binary + " " + call.command + " did not finish within " +
                                         std::to_string(call.timeoutMs) + " ms: killed");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return stdoutText;

  const std::string what = WIFEXITED(status)
                               ? "exited with status " + std::to_string(WEXITSTATUS(status))
                               : "killed by signal " + std::to_string(WTERMSIG(status));
  if (auto e = errorFromJson(stdoutText)) {
    Error err = *e;
    return std::move(err).context(binary + " " + call.command);
  }
  return Error(CniCode::kInternal, binary + " " + call.command + " " + what)
      .details(stdoutText.substr(0, 512));
}

Result<std::vector<std::string>> pluginVersions(const std::string& binary, const std::string& cniPath,
                                                const std::string& cniVersion, int timeoutMs) {
  PluginCall call;
  call.command = "VERSION";
  call.path = cniPath;
  call.timeoutMs = timeoutMs;
  SL_ASSIGN_OR_RETURN(std::string out,
                      execPlugin(binary, call, nlohmann::json{{"cniVersion", cniVersion}}.dump()));
  auto info = nlohmann::json::parse(out, nullptr, false);
  std::vector<std::string> versions;
  if (info.is_object() && info.contains("supportedVersions") && info["supportedVersions"].is_array())
    for (const auto& v : info["supportedVersions"])
      if (v.is_string()) versions.push_back(v.get<std::string>());
  return versions;
}

}  // namespace sluice::cni
