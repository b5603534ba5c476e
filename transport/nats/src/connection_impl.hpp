#pragma once
// Connection::Impl: the nats.c connection and what its callbacks share.

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catga/nats/connection.hpp"
#include "handle.hpp"
#include "reply_inboxes.hpp"

namespace catga::nats {

namespace detail {

// What nats.c callbacks see through their closure pointer. It must outlive
// every callback, so Impl keeps it until the "closed" callback has run
// (the last one nats.c delivers); if that never comes, it is leaked on
// purpose rather than freed under a running callback.
struct CallbackState {
  std::string name;
  std::string urls;  // the server list, redacted (for log lines)
  std::int64_t reconnect_wait_ms = 100;
  std::int64_t max_reconnect_wait_ms = 2000;
  std::int64_t jitter_ms = 100;

  std::atomic<std::uint64_t> reconnects{0};
  // steady_clock nanoseconds of the last reconnect (0: none yet).
  std::atomic<std::int64_t> reconnected_at_ns{0};
  std::atomic<bool> ever_connected{false};
  // Connect rounds (each server tried once) that failed since the connection
  // was last up; `rounds_before_retry` of them were made before nats.c's
  // retry loop took over (connect()'s own attempts).
  std::atomic<std::uint64_t> failed_rounds{0};
  std::uint64_t rounds_before_retry = 0;  // written before the retry loop starts
  std::int64_t last_retry_warn_ns = 0;    // retry-loop thread only
  std::atomic<bool> closing{false};  // our own close: disconnects are expected
  mutable std::mutex mu;
  std::condition_variable cv;  // connected / closed
  std::optional<Error> last_error;
  bool closed = false;

  void set_error(Error e) {
    std::lock_guard lock(mu);
    last_error = std::move(e);
  }
};

}  // namespace detail

struct Connection::Impl {
  NatsOptions options;  // as given (credentials included: never log it)
  std::unique_ptr<detail::CallbackState> callbacks;
  detail::ConnectionHandle nc;
  detail::JsHandle js;  // for JetStream API calls and synchronous publishes
  std::mutex close_mu;
  bool close_started = false;
  // Subscriptions whose drain did not finish. nats.c before 3.10 may still
  // be delivering to one on its read thread when it is destroyed (nats.c
  // issue 637: a use after free), so they are destroyed in ~Impl, after the
  // connection has closed and its threads have ended.
  std::mutex parked_mu;
  std::vector<detail::SubscriptionHandle> parked;
  // Reply subscriptions of native::Request (destroyed in ~Impl, after the
  // close, like `parked`).
  detail::ReplyInboxes replies;

  ~Impl();

  void park(detail::SubscriptionHandle sub) {
    std::lock_guard lock(parked_mu);
    parked.push_back(std::move(sub));
  }

  // The one way to let go of a subscription the server may still send to
  // (nats.c before 3.10 can deliver to a destroyed one: issue 637).
  // Unsubscribes it (a no-op if drained), then waits for a PING/PONG round
  // trip: once the read thread has answered it, it is done with every
  // message that arrived before, so the subscription can be destroyed. If
  // the round trip fails (no server), it is parked until the connection
  // closes.
  void retire(detail::SubscriptionHandle sub, std::chrono::milliseconds wait) noexcept;

  // retire() off the caller's path: unsubscribes now; a thread of this
  // connection does the round trip, one for everything queued meanwhile,
  // then destroys them. For hot paths (an event-store read per command).
  void retire_later(detail::SubscriptionHandle sub) noexcept;
  std::mutex retiring_mu;
  std::condition_variable retiring_cv;
  std::vector<detail::SubscriptionHandle> retiring;
  bool retiring_stop = false;
  std::thread retirer;
  void retire_loop() noexcept;
  void stop_retirer() noexcept;

  // True while the last reconnect is less than `window` ago: other clients
  // (services) may not have resubscribed to the restarted server yet.
  bool reconnected_within(std::chrono::steady_clock::duration window) const noexcept {
    const std::int64_t at = callbacks->reconnected_at_ns.load(std::memory_order_relaxed);
    return at != 0 && std::chrono::steady_clock::now().time_since_epoch().count() - at <
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(window).count();
  }

  natsConnection* conn() const noexcept { return nc.get(); }
  jsCtx* jet() const noexcept { return js.get(); }
};

namespace detail {

// The private side of a Connection, for catga::nats's own code (the public
// API has no accessor; code outside uses catga/nats/native/connection.hpp).
//
//   natsConnection* nc = detail::impl_of(connection).conn();
struct ConnectionAccess {
  using Impl = Connection::Impl;
  static Impl& impl(const Connection& connection) noexcept { return *connection.impl_; }
};
using ConnectionImpl = ConnectionAccess::Impl;
inline ConnectionImpl& impl_of(const Connection& connection) noexcept { return ConnectionAccess::impl(connection); }

}  // namespace detail

}  // namespace catga::nats
