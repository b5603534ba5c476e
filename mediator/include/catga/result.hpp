#pragma once
// Result<T>: the value of a dispatch, or the Error that stopped it.

#include <cassert>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace catga {

// Error codes used by the framework. Codes are strings on the wire
// (`{"ok":false,"error":{"code":"timeout",...}}`), so user code may add its own.
namespace errc {
inline constexpr std::string_view no_handler = "no_handler";
inline constexpr std::string_view duplicate_handler = "duplicate_handler";
inline constexpr std::string_view validation = "validation";
inline constexpr std::string_view timeout = "timeout";
inline constexpr std::string_view exception = "exception";
inline constexpr std::string_view handler_failed = "handler_failed";
inline constexpr std::string_view malformed = "malformed";
inline constexpr std::string_view unknown_type = "unknown_type";
inline constexpr std::string_view unavailable = "unavailable";
inline constexpr std::string_view conflict = "conflict";
// Retryable, but not a failure of this delivery: someone else holds the
// message's idempotency claim. Transports redeliver it after
// Error::retry_after and never dead-letter it for this.
inline constexpr std::string_view deferred = "deferred";
inline constexpr std::string_view cancelled = "cancelled";
// Retryable: the service already holds as many requests as it may (queued
// or running, JetStreamOptions::serve_max_in_flight) and refused this one at
// once instead of letting it wait past the caller's deadline. Nothing ran.
inline constexpr std::string_view overloaded = "overloaded";
inline constexpr std::string_view internal = "internal";
}  // namespace errc

// Why a dispatch failed. `retryable` tells the retry behavior and the
// transports (nak vs dead letter) whether trying again can help.
//
//   return catga::Error{"out_of_stock", "sku A-1 has 0 left", false};
struct Error {
  std::string code;
  std::string message;
  bool retryable = false;
  // For a retryable error: how long to wait before the next try, when the
  // failure knows (e.g. when another owner's lease runs out); 0: the retry
  // policy's backoff decides.
  std::chrono::milliseconds retry_after{0};

  friend bool operator==(const Error&, const Error&) = default;
};

// Thrown by registration mistakes (duplicate handler) and by Result::value()
// on an error. Handlers may also throw it to fail with a precise Error.
//
//   throw catga::Exception({"payment_declined", "limit exceeded", false});
class Exception : public std::runtime_error {
 public:
  explicit Exception(Error error)
      : std::runtime_error(error.code + ": " + error.message), error_(std::move(error)) {}
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

// A value of type T or an Error. Cheap to move; no allocation on success
// unless T allocates.
//
//   catga::Result<int> r = mediator.send(Add{1, 2});
//   if (r) use(*r); else log(r.error().message);
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}  // NOLINT implicit
  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT implicit

  bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { check(); return std::get<0>(data_); }
  const T& value() const& { check(); return std::get<0>(data_); }
  T&& value() && { check(); return std::get<0>(std::move(data_)); }
  T& operator*() & noexcept { assert(ok()); return *std::get_if<0>(&data_); }
  const T& operator*() const& noexcept { assert(ok()); return *std::get_if<0>(&data_); }
  T* operator->() noexcept { assert(ok()); return std::get_if<0>(&data_); }
  const T* operator->() const noexcept { assert(ok()); return std::get_if<0>(&data_); }

  const Error& error() const& noexcept { assert(!ok()); return *std::get_if<1>(&data_); }
  Error&& error() && noexcept { assert(!ok()); return std::move(*std::get_if<1>(&data_)); }

  template <class U>
  T value_or(U&& fallback) const& { return ok() ? **this : static_cast<T>(std::forward<U>(fallback)); }

 private:
  void check() const {
    if (!ok()) throw Exception(*std::get_if<1>(&data_));
  }
  std::variant<T, Error> data_;
};

// Result<void>: success, or an Error. Also spelled `Status`.
//
//   catga::Status s = mediator.send(Ship{42});
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() noexcept = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT implicit

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  void value() const {
    if (error_) throw Exception(*error_);
  }
  const Error& error() const& noexcept { assert(!ok()); return *error_; }
  Error&& error() && noexcept { assert(!ok()); return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

// Shorthand for building errors.
inline Error make_error(std::string_view code, std::string message, bool retryable = false) {
  return Error{std::string(code), std::move(message), retryable};
}

}  // namespace catga
