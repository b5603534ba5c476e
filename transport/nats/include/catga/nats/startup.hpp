#pragma once
// Startup: a service's start-up steps (connect, streams, buckets, event
// store), each tried again with backoff while NATS is not there yet.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

#include "catga/nats/connection.hpp"
#include "catga/nats/options.hpp"
#include "catga/result.hpp"

namespace catga::nats {

namespace detail {
template <class T>
inline constexpr bool is_result = false;
template <class T>
inline constexpr bool is_result<Result<T>> = true;
}  // namespace detail

// A start-up step: called without arguments, returns a catga::Result (or
// Status) whose Error says with `retryable` whether trying again can help.
template <class F>
concept StartupStep = std::is_invocable_v<F&> && detail::is_result<std::remove_cvref_t<std::invoke_result_t<F&>>>;

// Runs the steps a service needs before it can serve, waiting for NATS
// instead of failing: a step that fails retryably (no server yet, timeout,
// no responders, JetStream not enabled, a stream leader being elected) is
// tried again after a pause that doubles up to StartupOptions::max_backoff;
// a step that fails otherwise (bad credentials, TLS, validation, a stream
// with other settings) ends start-up at once with its Error, as do
// StartupOptions::timeout (default: none) and cancel(). status() says what
// it is waiting for, for a readiness probe. Thread-safe: status() and
// cancel() may be called from any thread while the steps run on one.
//
//   catga::nats::Startup startup;                              // waits as long as it takes
//   // HTTP thread:  readyz → startup.status()  ("waiting for NATS at nats://nats:4222: ..., attempt 4")
//   // signal thread: startup.cancel();
//   auto conn = startup.connect(catga::nats::NatsOptions::from_env());
//   if (!conn) return fail(conn.error());                     // configuration error, timeout or cancelled
//   catga::nats::JetStreamOptions js;
//   js.startup_timeout = startup.options().attempt_timeout;
//   auto transport = startup.run("the JetStream streams", [&] { return JetStreamTransport::create(*conn, js); });
//   auto kv = startup.run("KV bucket 'orders'", [&] { return KvBucket::open(*conn, {.bucket = "orders"}); });
class Startup {
 public:
  explicit Startup(StartupOptions options = {});
  ~Startup();
  Startup(const Startup&) = delete;
  Startup& operator=(const Startup&) = delete;

  // Connection::connect, then waits until it is connected. While no server
  // answers, status() is "waiting for NATS at <urls>: <why>, attempt <n>"
  // (the connection logs the failures, at warn at most every 5 s). A server
  // that refuses us (credentials, TLS) fails here, also when it comes up
  // only later and the background retries meet the refusal.
  Result<std::shared_ptr<Connection>> connect(const NatsOptions& options);

  // Calls `step` until it succeeds, fails with a non-retryable Error, the
  // timeout passes or cancel() is called; `what` names it in status() and in
  // log lines ("waiting for <what>: <error>, attempt <n>"). One try is not
  // interrupted: give the step's own timeouts options().attempt_timeout.
  template <StartupStep F>
  std::invoke_result_t<F&> run(std::string_view what, F&& step) {
    for (int attempt = 1;; ++attempt) {
      if (auto s = begin(what, attempt); !s) return std::move(s).error();
      auto r = step();
      if (r) {
        succeeded(what, attempt);
        return r;
      }
      if (auto s = failed(what, r.error(), attempt); !s) return std::move(s).error();
    }
  }

  // Ends the wait: the step in flight finishes its try, then connect()/run()
  // return a `cancelled` Error. For a stop signal during start-up.
  void cancel() noexcept;
  bool cancelled() const noexcept;

  // What start-up is doing or waiting for ("waiting for NATS at
  // nats://nats:4222: ... (attempt 4)"); empty once a step has succeeded and
  // no other has begun.
  std::string status() const;

  const StartupOptions& options() const noexcept { return options_; }

 private:
  Status begin(std::string_view what, int attempt);
  void succeeded(std::string_view what, int attempt);
  // Records and logs the failure; sleeps the backoff. An Error when start-up
  // must end (not retryable, timeout, cancelled).
  Status failed(std::string_view what, const Error& error, int attempt);
  // Sleeps up to `pause`, less when cancelled or at the deadline. False when
  // cancelled.
  bool pause_for(std::chrono::milliseconds pause);
  Error cancelled_error(std::string_view what) const;
  void set_status(std::string text);

  StartupOptions options_;
  std::chrono::steady_clock::time_point started_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::string status_;
  std::chrono::steady_clock::time_point last_warn_{};
};

}  // namespace catga::nats
