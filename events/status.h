// Status and Result<T>: errors as values, each with a typed code and a message.
//
// Every fallible call in shardledger returns one of these. Exceptions from third-party
// libraries (kj, cppzmq) are caught at the adapter that calls them and turned into a Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardledger {

enum class ErrorCode {
  kOk = 0,
  kWrongExpectedVersion,  // an append's expected stream version did not hold
  kRejected,              // a decider refused a command; the message names why
  kNotFound,
  kBadRequest,            // malformed or out-of-range input
  kCorruption,            // stored bytes that do not decode or do not verify
  kIoError,               // the storage engine failed
  kUnavailable,           // the service cannot take the request now (stopped, failed)
  kUnauthorized,
};

std::string_view ErrorCodeName(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CodeName: message", for logs and test failures.
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none. A Result is never built from an
// ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(value_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(value_);
  }
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace shardledger

// Returns the Status of `expr` from the enclosing function when it is not ok.
#define SL_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    ::shardledger::Status sl_status_ = (expr);   \
    if (!sl_status_.ok()) return sl_status_;     \
  } while (0)

#define SL_CONCAT_INNER(a, b) a##b
#define SL_CONCAT(a, b) SL_CONCAT_INNER(a, b)
// `SL_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result or returns its Status.
#define SL_ASSIGN_OR_RETURN(decl, expr)                                      \
  auto SL_CONCAT(sl_result_, __LINE__) = (expr);                             \
  if (!SL_CONCAT(sl_result_, __LINE__).ok())                                 \
    return SL_CONCAT(sl_result_, __LINE__).status();                         \
  decl = std::move(SL_CONCAT(sl_result_, __LINE__)).value()
