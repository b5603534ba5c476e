#pragma once
// AsyncPublisher: JetStream publishes with a bounded window of acks in flight.

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "catga/nats/publish_outcome.hpp"
#include "handle.hpp"
#include "pending_table.hpp"
#include "transport_state.hpp"

namespace catga::nats::detail {

// Owns a jsCtx of its own (its ack handler and MaxPending are per context).
// Every message handed to js_PublishMsgAsync is registered first under its
// natsMsg pointer, so the ack handler — which may run before
// js_PublishMsgAsync returns — finds its callback; the handler then owns and
// destroys the message (nats.c hands it back with the ack). A MaxWait on each
// publish turns a lost ack into a timeout outcome.
//
// The publishing thread and nats.c's ack thread meet on one short lock each
// per message (the table of pending callbacks); the window count is an
// atomic, and the condition variable is only touched when someone waits.
class AsyncPublisher {
 public:
  static Result<std::unique_ptr<AsyncPublisher>> create(std::shared_ptr<TransportState> state);
  ~AsyncPublisher();

  Status publish(const OutboundMessage& message, PublishCallback done);
  // Waits for every outcome so far.
  Status flush(std::chrono::milliseconds timeout);
  // flush(timeout), then fails what is still pending (done gets an
  // `unavailable` outcome) and refuses new publishes.
  void close(std::chrono::milliseconds timeout) noexcept;

 private:
  explicit AsyncPublisher(std::shared_ptr<TransportState> state)
      : state_(std::move(state)),
        window_(std::max<std::size_t>(state_->options.max_async_pending, 1)),
        pending_(window_) {}
  // A publisher blocked on a full window resumes once this many are left.
  std::size_t low_water() const noexcept { return window_ / 2; }
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) noexcept;
  void complete(natsMsg* msg, PublishOutcome outcome) noexcept;
  // Takes a window slot, waiting (until `deadline`) while the window is full.
  Status reserve(std::chrono::steady_clock::time_point deadline);
  // Gives a slot back; wakes waiters when what they wait for may hold.
  void release() noexcept;

  struct Pending {
    PublishCallback done;
    std::string message_id;
    const PublishMeters* meters = nullptr;  // null: no metrics
    std::string_view type;                   // MessageInfo::name (static)
    std::chrono::steady_clock::time_point started{};
  };

  std::shared_ptr<TransportState> state_;
  JsHandle js_;
  const std::size_t window_;
  std::mutex mu_;
  std::condition_variable cv_;
  PendingTable<Pending> pending_;  // guarded by mu_
  bool closed_ = false;            // guarded by mu_
  // Window slots taken (pending + being sent); a slot is given back after
  // the message's callback returned, so flush() means "every callback ran".
  std::atomic<std::size_t> reserved_{0};
  // Publishers and flush() callers waiting on cv_ (changed under mu_). Read
  // by release() after it changed reserved_ (both seq_cst): either it sees
  // the waiter, or the waiter sees the new count before it sleeps.
  std::atomic<std::size_t> waiters_{0};
};

}  // namespace catga::nats::detail
