// SPDX-License-Identifier: Apache-2.0
#include "sluice/log.h"

#include <bpf/libbpf.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <vector>

namespace sluice {
namespace {

std::string g_context;
thread_local int g_quietLibbpf = 0;

void applyPattern() {
  std::string pat = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%P]";
  if (!g_context.empty()) pat += " " + g_context;
  pat += " %v";
  spdlog::set_pattern(pat);
}

int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Verifier logs arrive as one long message: size the buffer to it.
  va_list copy;
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(line.data(), line.size(), fmt, args);
  line.resize(static_cast<size_t>(n));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  // One level quieter than libbpf's own idea of the message; debug under QuietLibbpf.
  switch (level) {
    case LIBBPF_WARN:
      if (g_quietLibbpf > 0) spdlog::debug("libbpf: {}", line);
      else spdlog::info("libbpf: {}", line);
      break;
    case LIBBPF_INFO: spdlog::debug("libbpf: {}", line); break;
    default: spdlog::trace("libbpf: {}", line); break;
  }
  return n;
}

}  // namespace

void setupLogging(const LogOptions& opts) {
  std::vector<spdlog::sink_ptr> sinks;
  if (opts.toStderr) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!opts.file.empty()) {
    try {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(opts.file).parent_path(), ec);
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(opts.file));
    } catch (const spdlog::spdlog_ex&) {
      // Fall through: stderr still carries the lines.
    }
  }
  auto logger = std::make_shared<spdlog::logger>("sluice", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::from_str(opts.level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  g_context = opts.context;
  applyPattern();
  libbpf_set_print(libbpfPrint);
}

QuietLibbpf::QuietLibbpf() { ++g_quietLibbpf; }
QuietLibbpf::~QuietLibbpf() { --g_quietLibbpf; }

void setLogContext(const std::string& context) {
  g_context = context;
  applyPattern();
}

}  // namespace sluice
