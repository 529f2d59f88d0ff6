// SPDX-License-Identifier: Apache-2.0
// Errors are values: Result<T> carries either a T or an Error (errno, CNI error code, and a
// context chain, outermost first). Only plugin/main.cpp turns an Error into CNI JSON.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sluice {

// CNI spec error codes (SPEC.md "Error"), plus Sluice's own (>= 100).
enum class CniCode : uint32_t {
  kNone = 0,
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kContainerUnknown = 3,
  kInvalidEnv = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kLimitedConnectivity = 51,
  kInternal = 100,        // any unexpected kernel or library failure
  kIpamExhausted = 101,   // no free address in the configured ranges
  kDatapathMissing = 102, // pinned maps/programs not found: the agent has not started
  kNetlink = 103,
  kBpf = 104,
  kMapFull = 105,
};

class Error {
 public:
  Error() = default;
  Error(CniCode code, std::string msg, int errnum = 0)
      : code_(code), errno_(errnum), msg_(std::move(msg)) {}

  // Builds an error from errno-style failures: `what` is the failed operation.
  static Error fromErrno(int errnum, std::string what, CniCode code = CniCode::kInternal) {
    return Error(code, std::move(what), errnum < 0 ? -errnum : errnum);
  }

  // Prepends a higher-level context ("ADD eth0: ") to the message.
  Error& context(const std::string& ctx) & {
    msg_ = ctx + ": " + msg_;
    return *this;
  }
  Error&& context(const std::string& ctx) && {
    msg_ = ctx + ": " + msg_;
    return std::move(*this);
  }
  Error& details(std::string d) & { details_ = std::move(d); return *this; }
  Error&& details(std::string d) && { details_ = std::move(d); return std::move(*this); }

  CniCode code() const { return code_; }
  int errnum() const { return errno_; }
  const std::string& message() const { return msg_; }
  // Free-form details for the CNI "details" field; defaults to strerror(errno) if set.
  std::string detailText() const;
  // "msg: strerror" for logs.
  std::string describe() const;

 private:
  CniCode code_ = CniCode::kInternal;
  int errno_ = 0;
  std::string msg_;
  std::string details_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status okStatus() { return {}; }

}  // namespace sluice

// Propagates an error from an expression yielding Result<...>, adding no context.
#define SL_TRY(expr)                                   \
  do {                                                 \
    auto sl_try_r_ = (expr);                           \
    if (!sl_try_r_.ok()) return std::move(sl_try_r_).error(); \
  } while (0)

#define SL_CONCAT_INNER_(a, b) a##b
#define SL_CONCAT_(a, b) SL_CONCAT_INNER_(a, b)
// SL_ASSIGN_OR_RETURN(auto x, expr): binds the value or propagates the error.
#define SL_ASSIGN_OR_RETURN(decl, expr) SL_ASSIGN_OR_RETURN_IMPL_(SL_CONCAT_(sl_r_, __LINE__), decl, expr)
#define SL_ASSIGN_OR_RETURN_IMPL_(tmp, decl, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).error();    \
  decl = std::move(tmp).value()
