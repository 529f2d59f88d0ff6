// SPDX-License-Identifier: Apache-2.0
// Logging: spdlog to stderr plus an optional file; never stdout (the CNI result lives there).
// Every plugin line carries the container ID, netns and ifname through the logger pattern.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace sluice {

struct LogOptions {
  std::string file;            // empty: stderr only
  std::string level = "info";  // trace|debug|info|warn|error|off
  std::string context;         // e.g. "cid=abc123 netns=/run/netns/x if=eth0"
  bool toStderr = true;
};

// Installs the default logger and routes libbpf's own output through it, one level quieter.
// A log file that cannot be opened falls back to stderr only (logging never fails a verb).
void setupLogging(const LogOptions& opts);

// Replaces the per-line context (e.g. once the CNI environment is parsed).
void setLogContext(const std::string& context);

// While one lives on the calling thread, libbpf's messages are logged at debug level: for calls
// whose failure is an answer, not an error (asking a link without a clsact qdisc for its tc
// filter makes the kernel, and libbpf after it, say "Parent Qdisc doesn't exists").
class QuietLibbpf {
 public:
  QuietLibbpf();
  ~QuietLibbpf();
  QuietLibbpf(const QuietLibbpf&) = delete;
  QuietLibbpf& operator=(const QuietLibbpf&) = delete;
};

}  // namespace sluice
