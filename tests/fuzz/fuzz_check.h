// SPDX-License-Identifier: Apache-2.0
// Invariant checks for the fuzz targets: a violated invariant is reported like a crash (abort),
// so libFuzzer saves the input and the corpus replay under ctest fails.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>

#include "sluice/result.h"

namespace sluice::fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n  %s\n", file, line, what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// The bytes as a printable, bounded string for messages.
inline std::string show(std::string_view s, size_t max = 300) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// Whether s survives JSON serialisation (nlohmann throws on invalid UTF-8).
inline bool jsonSerialisable(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace sluice::fuzz

#define SL_FUZZ_CHECK(cond, detail)                                          \
  do {                                                                       \
    if (!(cond)) ::sluice::fuzz::fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

// An error must carry one of the codes its parser documents, and a message that says something.
#define SL_FUZZ_CHECK_ERROR(err, ...)                                                            \
  do {                                                                                           \
    const ::sluice::Error& sl_e_ = (err);                                                        \
    bool sl_ok_ = false;                                                                         \
    for (::sluice::CniCode sl_c_ : std::initializer_list<::sluice::CniCode>{__VA_ARGS__})        \
      sl_ok_ = sl_ok_ || sl_e_.code() == sl_c_;                                                  \
    SL_FUZZ_CHECK(sl_ok_, "unexpected CNI code " + std::to_string(static_cast<uint32_t>(sl_e_.code())) + \
                              ": " + ::sluice::fuzz::show(sl_e_.message()));                    \
    SL_FUZZ_CHECK(!sl_e_.message().empty(), "an error without a message");                      \
  } while (0)
